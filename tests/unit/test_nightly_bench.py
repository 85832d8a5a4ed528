"""The end-to-end nightly benchmark's arithmetic: step durations from a run's events, phases, ceilings and floors,
and the process tree whose memory it samples."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.nightly_bench import (
    CHECKS,
    Settings,
    StepEvent,
    TreeMemory,
    ceilings,
    descendants,
    phase_seconds,
    step_durations,
)


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = dict(
        mode="quick", customers=1000, seed=42, stripe_latency=0.1, global_rps=25.0, endpoint_rps=25.0,
        destination_latency=0.2, max_connections=10, cio_rps=25.0, cio_rps_set=True, full_runs=1, runs=1,
        fraction=0.01, advance=3600, interval=0.2,
    )  # fmt: skip
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_step_durations_run_from_first_start_to_last_end_whatever_the_order_of_the_events() -> None:
    events = [
        StepEvent("warehouse_models", "success", 130.0),
        StepEvent("stripe_extract", "start", 100.0),
        StepEvent("stripe_extract", "failure", 104.0),
        StepEvent("stripe_extract", "start", 105.0),  # retried
        StepEvent("stripe_extract", "success", 110.5),
        StepEvent("warehouse_models", "start", 111.0),
        StepEvent("mailchimp__audience_members", "start", 131.0),  # never ended (the run was killed)
        StepEvent("orphan", "success", 99.0),  # an end without a start is not a step
    ]
    steps = step_durations(events)
    assert list(steps) == ["stripe_extract", "warehouse_models", "mailchimp__audience_members"]
    assert steps["stripe_extract"] == {"start": 100.0, "seconds": 10.5, "status": "success", "attempts": 2}
    assert steps["warehouse_models"]["seconds"] == 19.0 and steps["warehouse_models"]["attempts"] == 1
    assert steps["mailchimp__audience_members"]["status"] == "unfinished"
    assert steps["mailchimp__audience_members"]["seconds"] is None


def test_phases_name_the_job_steps_and_sum_the_asset_checks() -> None:
    steps = {
        "stripe_extract": {"seconds": 600.0},
        "stripe__customers_row_count_drop": {"seconds": 0.25},
        "warehouse_models": {"seconds": 25.0},
        "marts__customer_profiles_row_count_drop": {"seconds": 0.5},
        "customerio__person_events": {"seconds": None},
    }
    assert phase_seconds(steps) == {"extract": 600.0, CHECKS: 0.75, "dbt": 25.0, "customerio_events": 0.0}


def full_run() -> dict[str, object]:
    return {
        "materialized": {
            "stripe/customers": {"objects_listed": 99_667, "rows_changed": 99_667},
            "stripe/charges": {"objects_listed": 1_060_326, "rows_changed": 1_060_326},
            "stripe/products": {"objects_listed": 0, "rows_changed": 0},  # an empty stream still costs a request
            "stripe/events": {"objects_listed": 0, "rows_changed": 134_811},  # read from the feed, not listed
            "mailchimp/audience_members": {"sent": 90_192},
            "customerio/people": {"sent": 99_667},
            "customerio/person_events": {"sent": 0},
            "warehouse/customer_profiles": {"dagster/row_count": 99_667},
        },
        "servers": {
            "stripe": {"requests": 14_000},
            "mailchimp": {"requests": 193},
            "customerio": {"requests": 160, "batch_ops": 1000, "batch_bytes": 802_000},
        },
    }


def test_full_run_ceilings_and_floors() -> None:
    c = ceilings(full_run(), settings())  # type: ignore[arg-type]
    # Stripe: ⌈99,667/100⌉ + ⌈1,060,326/100⌉ + 1 + ⌈134,811/100⌉ pages at 25/s
    assert c["extract"]["calls_floor"] == 997 + 10_604 + 1 + 1_349
    assert c["extract"]["records"] == 99_667 + 1_060_326 + 134_811
    assert c["extract"]["seconds"] == pytest.approx(12_951 / 25)
    # Mailchimp: 10 connections x 500 members / 0.2 s = 25,000 members/s
    assert c["mailchimp"]["seconds"] == pytest.approx(90_192 / 25_000)
    assert c["mailchimp"]["calls_floor"] == 181 and c["mailchimp"]["calls"] == 193
    # Customer.io: 802-byte ops, 623 of them in 500 KB, at 25 requests/s
    assert c["customerio"]["ops_per_request"] == 623
    assert c["customerio_people"]["seconds"] == pytest.approx(99_667 / (25 * 623))
    assert c["customerio_people"]["calls_floor"] == 160 and c["customerio_events"]["calls_floor"] == 0
    assert c["total_seconds"] == pytest.approx(12_951 / 25 + 90_192 / 25_000 + 99_667 / (25 * 623))


def test_incremental_run_floor_is_the_pages_of_the_events_the_changes_emitted() -> None:
    run = full_run()
    run["materialized"] = {"stripe/events": {"objects_listed": 0, "rows_changed": 22_203}, "customerio/people": {}}
    run["servers"] = {"stripe": {"requests": 228}, "mailchimp": {"requests": 0}, "customerio": {"requests": 0}}
    c = ceilings(run, settings(), {"events_emitted": 22_203})  # type: ignore[arg-type]
    assert c["extract"]["calls_floor"] == 223 and c["extract"]["calls"] == 228
    assert c["mailchimp"]["calls_floor"] == 0 and c["customerio"]["calls_floor"] == 0
    assert c["total_seconds"] == pytest.approx(223 / 25)
    nothing = ceilings(run, settings(), {"events_emitted": 0})  # type: ignore[arg-type]
    assert nothing["extract"]["calls_floor"] == 1  # one request to learn that nothing changed


def test_descendants_follow_parents_down_from_the_root_only() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert descendants(parents, 10) == {10, 11, 12, 13}
    assert descendants(parents, 13) == {13}
    assert descendants(parents, 99) == {99}


def test_tree_memory_sees_a_child_process_and_its_peak() -> None:
    code = "import sys; b = b'x' * 64_000_000; print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"  # it holds its 64 MB
        memory = TreeMemory(os.getpid())
        memory.sample()
        report = memory.report(wait4_maxrss_kib=1024)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
    procs = {p["pid"]: p for p in report["processes"]}
    assert procs[child.pid]["peak_rss_mb"] > 64 and procs[child.pid]["command"].startswith("python")
    assert os.getpid() in procs and report["samples"] == 1
    assert report["tree_rss_sum_peak_mb"] > procs[child.pid]["peak_rss_mb"]  # this process's RSS added to it
    assert report["largest_process_mb"] == pytest.approx(1.0, abs=0.1)  # wait4's figure, as given (KiB -> MB)
