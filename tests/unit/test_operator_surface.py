"""What operators see and rely on in the UI: owners, kinds, code links, freshness, the warehouse pool, checks."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from assets.checks import judge_row_count
from assets.model_metadata import model_metadata, preview
from audiences.warehouse import WarehouseBusyError, connect
from orchestration.definitions import defs
from orchestration.policies import OVERDUE_AFTER, WAREHOUSE_POOL

REPO = Path(__file__).resolve().parents[2]


def test_every_asset_has_a_group_owner_kinds_description_code_link_and_the_warehouse_pool() -> None:
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    assert len(keys) > 20
    for key in keys:
        node = graph.get(key)
        assert node.group_name in {"stripe", "warehouse", "mailchimp", "customerio"}, key
        assert node.owners and all(o.startswith("team:") for o in node.owners), key
        assert node.kinds and "duckdb" in node.kinds, key
        assert node.description, key
        references = node.metadata["dagster/code_references"].code_references
        assert references and all(Path(r.file_path).exists() for r in references), key
        assert WAREHOUSE_POOL in node.pools, key  # one run at a time opens DuckDB


def test_marts_and_destinations_are_overdue_after_36_hours_and_nothing_else() -> None:
    graph = defs.resolve_asset_graph()
    fresh = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).freshness_policy}
    assert fresh == {
        "marts/customer_profiles",
        "marts/customer_segments",
        "marts/marketing_events",
        "marts/store_products",
        "marts/store_product_variants",
        "marts/store_customers",
        "marts/store_orders",
        "marts/store_order_lines",
        "mailchimp/audience_members",
        "mailchimp/store",
        "customerio/people",
        "customerio/person_events",
    }
    policy = graph.get(dg.AssetKey(["marts", "customer_profiles"])).freshness_policy
    assert policy.fail_window.to_timedelta() == OVERDUE_AFTER == dt.timedelta(hours=36)


def test_instance_queues_a_second_run_that_opens_the_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With dagster_home/dagster.yaml, the run coordinator keeps a run of any job touching the warehouse queued
    while another one is in progress (the daemon's own counter decides), and lets it go once that one ends."""
    from dagster._core.instance.config import PoolGranularity
    from dagster._core.op_concurrency_limits_counter import GlobalOpConcurrencyLimitsCounter
    from dagster._core.storage.dagster_run import RunsFilter

    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_unused")
    config = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=config) as instance:
        nightly = instance.create_run_for_job(defs.resolve_job_def("nightly_sync"))
        push = instance.create_run_for_job(defs.resolve_job_def("push_audiences"))
        assert WAREHOUSE_POOL in (nightly.run_op_concurrency.all_pools or [])
        assert WAREHOUSE_POOL in (push.run_op_concurrency.all_pools or [])
        granularity = instance.get_concurrency_config().pool_config.pool_granularity
        assert granularity == PoolGranularity.RUN

        def blocked() -> bool:
            """One pass of the run queue daemon over the queued ``push`` run (as it builds its counter)."""
            storage = instance.event_log_storage
            counter = GlobalOpConcurrencyLimitsCounter(
                instance,
                [push],
                instance.get_run_records(RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])),
                concurrency_keys=storage.get_concurrency_keys(),
                pool_limits=storage.get_pool_limits(),
                pool_granularity=granularity,
            )
            return counter.is_blocked(push)

        blocked()  # the first pass sets the pool's limit to default_limit, as the daemon's first pass does
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()} == {WAREHOUSE_POOL: 1}
        assert not blocked()  # nothing else in progress
        instance.handle_run_event(nightly.run_id, _event(nightly, dg.DagsterEventType.RUN_START))
        assert blocked()  # the nightly run holds the warehouse: push_audiences stays queued
        instance.handle_run_event(nightly.run_id, _event(nightly, dg.DagsterEventType.RUN_SUCCESS))
        assert not blocked()


def _event(run: dg.DagsterRun, kind: dg.DagsterEventType) -> dg.DagsterEvent:
    return dg.DagsterEvent(event_type_value=kind.value, job_name=run.job_name)


def test_a_warehouse_held_by_another_process_gives_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout and holder.stdout.readline().strip() == "ok"
        with pytest.raises(WarehouseBusyError) as caught, connect(path):
            pass
        message = str(caught.value)
        assert str(path) in message and f"PID {holder.pid}" in message
        assert "duckdb_warehouse" in message and "launch the run again" in message
    finally:
        holder.kill()
        holder.wait()


def test_row_count_drop_passes_growth_and_small_drops_and_fails_a_big_one() -> None:
    assert judge_row_count(100, None, 10).passed  # first materialization
    assert judge_row_count(120, 100, 10).passed
    assert judge_row_count(90, 100, 10).passed  # exactly at the limit
    failed = judge_row_count(89, 100, 10)
    assert not failed.passed and failed.metadata["drop_percent"].value == 11.0
    assert "11 rows fewer" in (failed.description or "")


def test_model_metadata_counts_rows_sizes_segments_and_previews_without_personal_data() -> None:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.customer_profiles as select * from (values "
        "('cus_1', 'ann@gmail.com', 'Ann Lee', 10.5, 'note to bob@yahoo.com'), "
        "('cus_2', 'bo@gmail.com', 'Bo Ek', 0.0, 'x|y')) t(customer_id, email, name, lifetime_spend, notes)"
    )
    con.execute(
        "create table marts.customer_segments as select * from (values ('cus_1', 'spend:high'), "
        "('cus_2', 'spend:low'), ('cus_1', 'rfm:lost')) t(customer_id, tag)"
    )
    node = {"resource_type": "model", "name": "customer_profiles", "schema": "marts", "config": {}}
    meta = model_metadata(con, node, previous=5)
    assert meta["dagster/row_count"] == 2 and meta["row_count_change"] == -3
    text = meta["preview"].value
    assert "customer_id | lifetime_spend | notes" in text
    assert "ann@" not in text and "Ann Lee" not in text and "b***@yahoo.com" in text and "x/y" in text
    segments = model_metadata(con, {**node, "name": "customer_segments"}, previous=None)
    assert {k: v for k, v in segments.items() if k.startswith("segment/")} == {
        "segment/rfm:lost": 1,
        "segment/spend:high": 1,
        "segment/spend:low": 1,
    }
    assert "row_count_change" not in segments
    assert preview(con, "marts.customer_segments").count("\n") == 4  # header, rule, 3 rows


def test_every_profile_accounted_for_keys_contacts_as_the_push_does() -> None:
    """A contact refused or pushed under its key counts for its profile, whatever padding or non-ASCII address it
    has: the check keys profiles by the push's own rules, not a second formula."""
    from assets.checks import unaccounted_profiles
    from audiences.mailchimp_client import subscriber_hash
    from audiences.sync_state import ensure_schema

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("create table marts.customer_profiles (customer_id varchar, email varchar, lifetime_spend decimal)")
    con.execute("create table marts.customer_segments (customer_id varchar, tag varchar)")
    profiles = [
        ("cus_tab", "\tPadded@Example.com \t"),  # refused by Mailchimp, under its key
        ("cus_nbsp", "\u00a0Nbsp@Example.com"),  # pushed under its key by a payload naming another customer
        ("cus_named", "named@example.com"),  # refused by customer id
        ("cus_none", "nobody@example.com"),  # nowhere: unaccounted
    ]
    con.executemany("insert into marts.customer_profiles values (?, ?, 10)", profiles)
    ensure_schema(con)
    con.execute(
        "insert into sync.rejections values ('mailchimp', ?, 'Invalid Resource', true, null, now(), null), "
        "('mailchimp', 'cus_named', 'missing email', true, null, now(), null)",
        [subscriber_hash("Padded@Example.com")],
    )
    con.execute(
        "insert into sync.pushed_records values ('mailchimp', ?, 'h', '{\"customer_id\": \"cus_before\"}', now())",
        [subscriber_hash("\u00a0Nbsp@Example.com")],
    )
    assert unaccounted_profiles(con, "mailchimp") == (1, ["cus_none"])
