"""The nightly job after changes in Stripe, on a pipeline of its own: events forwarded once, and a dry run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pipeline import Pipeline, started_pipeline, writes


@pytest.fixture(scope="module")
def pipeline(dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    yield from started_pipeline(tmp_path_factory.mktemp("nightly"))


def test_stripe_events_reach_customerio_once_as_named_person_events(pipeline: Pipeline) -> None:
    s = pipeline.scenario
    s.account.add_charge(s.bob, 1900, "usd", status="failed", failure_code="card_declined")
    pipeline.run()
    cio = pipeline.stand_ins.customerio
    failed = [e for e in cio.events(s.bob) if e["name"] == "stripe_payment_failed"]
    assert len(failed) == 1
    stripe_event_id = failed[0]["attributes"]["stripe_event_id"]
    occurred = pipeline.query("select created from stripe.events where id = ?", [stripe_event_id])[0][0]
    assert failed[0]["timestamp"] == int(occurred.timestamp())  # type: ignore[attr-defined]
    assert failed[0]["attributes"]["failure_code"] == "card_declined"
    assert failed[0]["attributes"]["amount"] == 19.0 and failed[0]["attributes"]["currency"] == "usd"
    assert len(failed[0]["id"]) == 26  # a ULID derived from the Stripe event id

    cio.clear_requests()
    pipeline.run()  # a rerun sends no event again
    event_ops = [op for r in cio.requests_to("POST", "batch") for op in r.json()["batch"] if op["action"] == "event"]
    assert event_ops == []
    assert len([e for e in cio.events(s.bob) if e["name"] == "stripe_payment_failed"]) == 1
    assert not cio.contract_violations


def test_dry_run_sends_nothing_and_records_the_plan(pipeline: Pipeline) -> None:
    s = pipeline.scenario
    s.account.add_charge(s.alice, 990000, "usd")  # alice becomes a high spender
    pipeline.stand_ins.mailchimp.clear_requests()
    pipeline.stand_ins.customerio.clear_requests()
    dry = {"dry_run": True}
    config = {
        "ops": {
            "mailchimp__audience_members": {"config": dry},
            "customerio__people": {"config": dry},
            "customerio__person_events": {"config": dry},
        }
    }
    pipeline.run(run_config=json.dumps(config))

    assert writes(pipeline.stand_ins) == {"mailchimp": 0, "customerio": 0}
    planned = pipeline.query(
        "select destination, sent, planned, sample, unchanged from sync.runs where dry_run"
        " order by finished_at desc limit 3"
    )
    by_destination = {row[0]: row for row in planned}
    assert by_destination["mailchimp"][1] == 0
    assert json.loads(by_destination["mailchimp"][2])["member_updates"] >= 1  # type: ignore[arg-type]
    assert 1 <= len(json.loads(by_destination["mailchimp"][3])) <= 10  # type: ignore[arg-type]
    # The real run afterwards sends what the dry run planned.
    pipeline.run()
    real = pipeline.query(
        "select unchanged from sync.runs where not dry_run and destination = 'mailchimp'"
        " order by finished_at desc limit 1"
    )
    assert real[0][0] == by_destination["mailchimp"][4]
    tags = pipeline.stand_ins.mailchimp.member_tags(pipeline.stand_ins.audience_id, "alice.martin@gmail.com")
    assert "spend:high" in tags
