"""What stops or narrows a run: a failing dbt test blocks the push; a destination without credentials is skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from sandbox.environment import StandIns, run_job, running_stand_ins
from sandbox.stripe_account import generate_account


def extracted(stand_ins: StandIns, tmp_path: Path) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """The production environment in ``tmp_path``, with Stripe already extracted (`extract_stripe`)."""
    env = stand_ins.env(tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")
    extract = run_job("extract_stripe", env)
    assert extract.returncode == 0, extract.stderr[-5000:]
    return env, extract


@pytest.fixture(scope="module")
def stand_ins() -> StandIns:
    with running_stand_ins(generate_account(seed=11, customers=25)) as servers:
        yield servers


def test_failing_dbt_test_blocks_the_push_then_a_destination_without_credentials_is_skipped(
    stand_ins: StandIns, dbt_manifest: Path, tmp_path: Path
) -> None:
    env, extract = extracted(stand_ins, tmp_path)
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
    # Nothing reached either destination (new members now go through the batch endpoint, not PUT).
    assert stand_ins.mailchimp.requests == []
    assert stand_ins.customerio.requests == []

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


def test_a_failing_warn_test_shows_as_a_warning_check_and_the_push_goes_on(
    stand_ins: StandIns, dbt_manifest: Path, tmp_path: Path
) -> None:
    env, _ = extracted(stand_ins, tmp_path)
    con = duckdb.connect(env["WAREHOUSE_PATH"])
    # A refund of a charge we do not have breaks the relationships test on stg_stripe__refunds (severity warn).
    con.execute(
        "insert into stripe.refunds (id, charge_id, amount, currency, status, raw, created)"
        " values ('re_orphan', 'ch_not_extracted_yet', 100, 'usd', 'succeeded', '{}', now())"
    )
    con.close()
    stand_ins.mailchimp.clear_requests()
    stand_ins.customerio.clear_requests()

    run = run_job("nightly_sync", env)

    assert run.returncode == 0, run.stderr[-5000:]
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        latest = instance.get_runs(limit=1)[0]
        evaluations = [
            entry.dagster_event.event_specific_data
            for entry in instance.all_logs(latest.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            if entry.dagster_event is not None
        ]
    failed = {e.check_name: e.severity for e in evaluations if not e.passed}
    orphan = [name for name in failed if name.startswith("relationships_stg_stripe__refunds_charge_id")]
    assert orphan, failed
    assert failed[orphan[0]] == dg.AssetCheckSeverity.WARN
    assert all(severity == dg.AssetCheckSeverity.WARN for severity in failed.values()), failed
    assert any(e.passed for e in evaluations)  # the other checks ran and passed
    # The reconciliation is a check of customer_profiles, with error severity, and it passed.
    reconciliation = [e for e in evaluations if e.check_name == "assert_lifetime_spend_reconciles_with_charges"]
    assert reconciliation and reconciliation[0].passed
    assert reconciliation[0].asset_key == dg.AssetKey(["marts", "customer_profiles"])
    # a warning does not block the destinations
    assert stand_ins.customerio.requests_to("POST", "/api/v2/batch")


def test_a_sudden_drop_in_profiles_blocks_the_push_until_an_operator_lets_it_through(
    dbt_manifest: Path, tmp_path: Path
) -> None:
    account = generate_account(seed=13, customers=30)
    with running_stand_ins(account) as servers:
        env = servers.env(tmp_path / "warehouse.duckdb", tmp_path / "dagster_home")
        first = run_job("nightly_sync", env)
        assert first.returncode == 0, first.stderr[-5000:]
        con = duckdb.connect(env["WAREHOUSE_PATH"], read_only=True)
        profiles_before = con.execute("select count(*) from marts.customer_profiles").fetchone()[0]
        con.close()
        # A script gone wrong deletes a third of the customers in Stripe.
        deleted = sorted(account.customers)[::3]
        for customer_id in deleted:
            account.delete_customer(customer_id)
        servers.mailchimp.clear_requests()
        servers.customerio.clear_requests()

        blocked = run_job("nightly_sync", env)

        assert blocked.returncode != 0
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            run = instance.get_runs(limit=1)[0]
            evaluations = [
                entry.dagster_event.event_specific_data
                for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
                if entry.dagster_event is not None
            ]
        drop = [e for e in evaluations if e.check_name == "row_count_drop" and not e.passed]
        assert [e.asset_key for e in drop] == [dg.AssetKey(["marts", "customer_profiles"])]
        metadata = drop[0].metadata
        assert metadata["previous_row_count"].value == profiles_before
        assert metadata["row_count"].value == profiles_before - len(deleted)
        assert metadata["drop_percent"].value > 10
        # The tombstones landed (stripe/customers keeps them: its own check passed), the marts were rebuilt, and
        # nothing reached either destination: no tag removals, no `stripe_deleted` flags.
        assert [e.passed for e in evaluations if e.asset_key == dg.AssetKey(["stripe", "customers"])] == [True]
        assert servers.mailchimp.requests == []
        assert servers.customerio.requests == []

        # The operator checks it was intended and lets it through for one run.
        allowed = run_job("nightly_sync", {**env, "ROW_COUNT_DROP_MAX_PERCENT": "100"})

        assert allowed.returncode == 0, allowed.stderr[-5000:]
        flagged = {cid for cid in deleted if (servers.customerio.person(cid) or {}).get("stripe_deleted") is True}
        assert flagged == set(deleted)
