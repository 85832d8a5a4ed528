"""What stops or narrows a run: a failing dbt test blocks the push; a destination without credentials is skipped."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sandbox.environment import StandIns, run_job, running_stand_ins
from sandbox.stripe_account import generate_account


@pytest.fixture(scope="module")
def stand_ins() -> StandIns:
    with running_stand_ins(generate_account(seed=11, customers=25)) as servers:
        yield servers


def test_failing_dbt_test_blocks_the_push_then_a_destination_without_credentials_is_skipped(
    stand_ins: StandIns, dbt_manifest: Path, tmp_path: Path
) -> None:
    env = stand_ins.env(tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")
    extract = run_job("extract_stripe", env)
    assert extract.returncode == 0, extract.stderr[-5000:]
    con = duckdb.connect(env["WAREHOUSE_PATH"])
    # A charge whose currency is missing breaks the not_null test (error severity) on stg_stripe__charges.
    con.execute(
        "insert into stripe.charges (id, customer_id, amount, amount_captured, amount_refunded, currency, status, "
        "captured, raw, created) select 'ch_broken', id, 100, 100, 0, null, 'succeeded', true, '{}', now() "
        "from stripe.customers limit 1"
    )
    con.close()

    blocked = run_job("nightly_sync", env)

    assert blocked.returncode != 0
    output = blocked.stdout + blocked.stderr
    assert "not_null_stg_stripe__charges_currency" in output
    assert "Dependencies for step mailchimp__audience_members failed" in output or "STEP_SKIPPED" in output
    assert stand_ins.mailchimp.requests_to("PUT", "/members/") == []
    assert stand_ins.customerio.requests_to("POST", "/api/v2/batch") == []

    con = duckdb.connect(env["WAREHOUSE_PATH"])
    con.execute("delete from stripe.charges where id = 'ch_broken'")
    con.close()
    skipped = run_job("nightly_sync", env, drop=("MAILCHIMP_API_KEY", "MAILCHIMP_AUDIENCE_ID"))

    assert skipped.returncode == 0, skipped.stderr[-5000:]
    assert "Mailchimp is not configured (MAILCHIMP_API_KEY or MAILCHIMP_AUDIENCE_ID not set)" in skipped.stderr
    assert stand_ins.mailchimp.requests == []
    assert len(stand_ins.customerio.persons()) > 0  # the other destination still ran
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["mailchimp", "audience_members"]))
    assert event is not None
    metadata = event.asset_materialization.metadata
    assert metadata["skipped"].value is True
    for run in (extract, blocked, skipped):  # secrets never reach the logs, even of a failed run
        for secret in (env["STRIPE_API_KEY"], env["CUSTOMERIO_API_KEY"], env["MAILCHIMP_API_KEY"]):
            assert secret not in run.stdout + run.stderr
