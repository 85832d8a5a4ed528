"""The whole nightly job, as an operator runs it (`dagster job execute`), against the stand-ins over HTTP: what the
first run leaves, a rerun without changes, a new purchase, a deleted customer. (test_nightly_changes.py has more,
on a pipeline of its own, so the two files run side by side.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.integration.pipeline import TABLES, Pipeline, started_pipeline, table_digest, writes


@pytest.fixture(scope="module")
def pipeline(dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    yield from started_pipeline(tmp_path_factory.mktemp("nightly"))


def test_lifetime_spend_converts_jpy_and_eur_and_nets_the_partial_refund(pipeline: Pipeline) -> None:
    alice = pipeline.profile(pipeline.scenario.alice)
    # 5000 JPY (zero-decimal) x 0.0067 = 33.50; (100.00 - 25.00) EUR x 1.08 = 81.00; the failed charge counts 0.
    assert alice["lifetime_spend"] == Decimal("114.50")
    assert alice["purchase_count"] == 2
    assert alice["currency"] == "usd"
    assert alice["email"] == "alice.martin@gmail.com"
    assert alice["marketing_consent"] is True


def test_raw_tables_hold_one_row_per_stripe_object(pipeline: Pipeline) -> None:
    account = pipeline.scenario.account
    live_customers = {c for c in account.customers if c not in account.deleted_ids}
    rows = pipeline.query("select id, raw->>'$.object' from stripe.customers")
    assert {r[0] for r in rows} >= live_customers
    assert {r[1] for r in rows} == {"customer"}
    assert pipeline.query("select count(*), count(distinct id) from stripe.charges")[0] == (
        len(account.charges),
        len(account.charges),
    )
    jpy = pipeline.query(
        "select amount, bt_currency, bt_exchange_rate from stripe.charges where customer_id = ? and currency = 'jpy'",
        [pipeline.scenario.alice],
    )
    assert jpy == [(5000, "usd", 0.0067)]


def test_the_ui_shows_row_counts_segment_sizes_a_preview_and_passing_checks(pipeline: Pipeline) -> None:
    """What an operator reads in the Dagster instance after the nightly run: figures per model, and the checks."""
    instance = dg.DagsterInstance.from_config(pipeline.env["DAGSTER_HOME"])

    def metadata(*key: str) -> dict[str, object]:
        event = instance.get_latest_materialization_event(dg.AssetKey(list(key)))
        assert event is not None and event.asset_materialization is not None, key
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}

    (profiles,) = pipeline.query("select count(*) from marts.customer_profiles")[0]
    assert metadata("marts", "customer_profiles")["dagster/row_count"] == profiles
    preview = str(metadata("marts", "customer_profiles")["preview"])
    assert preview.startswith("| customer_id |") and "@" not in preview and "| email" not in preview
    sizes = dict(pipeline.query("select tag, count(*) from marts.customer_segments group by tag"))
    shown = {k.removeprefix("segment/"): v for k, v in metadata("marts", "customer_segments").items()}
    assert {tag: shown[tag] for tag in sizes} == sizes and all(isinstance(v, int) for v in sizes.values())
    assert (
        metadata("staging", "stg_stripe__customers")["dagster/row_count"]
        == pipeline.query("select count(*) from staging.stg_stripe__customers")[0][0]
    )

    for key, name in (
        (["stripe", "customers"], "row_count_drop"),
        (["marts", "customer_profiles"], "row_count_drop"),
        (["mailchimp", "audience_members"], "every_profile_accounted_for"),
        (["customerio", "people"], "every_profile_accounted_for"),
    ):
        check = dg.AssetCheckKey(dg.AssetKey(key), name)
        (record,) = instance.event_log_storage.get_asset_check_execution_history(check, limit=1)
        evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
        assert evaluation.passed, (check, evaluation.metadata)


def test_customerio_holds_a_person_per_profile_and_none_for_customers_deleted_before_the_backfill(
    pipeline: Pipeline,
) -> None:
    account = pipeline.scenario.account
    # The account has customers deleted in Stripe before the first run whose events (created, charges...)
    # are still in the 30 days of events: they must not bring those people to Customer.io.
    gone = set(account.deleted_ids) & {
        r[0] for r in pipeline.query("select customer_id from staging.stg_stripe__events where customer_id is not null")
    }
    assert gone
    people = set(pipeline.stand_ins.customerio.persons())
    profiles = {r[0] for r in pipeline.query("select customer_id from marts.customer_profiles")}
    assert people == profiles and not people & gone


def test_consent_decides_status_of_new_members(pipeline: Pipeline) -> None:
    mc = pipeline.stand_ins.mailchimp
    audience = pipeline.stand_ins.audience_id
    assert mc.member(audience, "alice.martin@gmail.com")["status"] == "subscribed"
    assert mc.member(audience, "bob.stone@outlook.com")["status"] == "transactional"


def test_existing_unsubscribed_member_stays_unsubscribed(pipeline: Pipeline) -> None:
    mc = pipeline.stand_ins.mailchimp
    carol = mc.member(pipeline.stand_ins.audience_id, "carol.white@yahoo.com")
    assert carol["status"] == "unsubscribed"
    assert carol["merge_fields"]["LTV"] == 1500.0  # the profile still arrived
    assert "spend:high" in mc.member_tags(pipeline.stand_ins.audience_id, "carol.white@yahoo.com")
    puts = [r.json() for r in mc.requests_to("PUT", r"/members/")]
    assert puts and all("status" not in body for body in puts)


def test_merge_fields_and_tags_arrive(pipeline: Pipeline) -> None:
    mc = pipeline.stand_ins.mailchimp
    audience = pipeline.stand_ins.audience_id
    tags = {f["tag"] for f in mc.merge_fields(audience)}
    assert {"LTV", "PURCHASES", "LASTPURCH", "FREQSEG", "SPENDSEG"} <= tags
    alice = mc.member(audience, "alice.martin@gmail.com")
    assert alice["merge_fields"]["PURCHASES"] == 2
    assert alice["merge_fields"]["FREQSEG"] == "repeat"
    assert mc.member_tags(audience, "alice.martin@gmail.com") == set(pipeline.tags(pipeline.scenario.alice))
    assert {"frequency:repeat", "spend:medium"} <= mc.member_tags(audience, "alice.martin@gmail.com")
    assert {t.split(":")[0] for t in mc.member_tags(audience, "alice.martin@gmail.com")} == {
        "frequency",
        "spend",
        "lifecycle",
        "rfm",
    }
    assert not mc.contract_violations
    assert not pipeline.stand_ins.customerio.contract_violations


def test_customerio_people_by_stripe_id(pipeline: Pipeline) -> None:
    cio = pipeline.stand_ins.customerio
    alice = cio.person(pipeline.scenario.alice)
    assert alice["email"] == "alice.martin@gmail.com"
    assert alice["lifetime_spend"] == 114.5
    assert alice["purchase_count"] == 2
    assert set(alice["segments"]) == set(pipeline.tags(pipeline.scenario.alice))
    assert alice["lifecycle_stage"] == pipeline.profile(pipeline.scenario.alice)["lifecycle_stage"]
    dave = cio.person(pipeline.scenario.dave)  # no email: still a person, keyed by Stripe id
    assert dave is not None and "email" not in dave
    assert len(cio.requests_to("POST", r"^/api/v2/batch$")) >= 1


def test_bad_emails_are_rejected_with_reasons_and_the_rest_goes_through(pipeline: Pipeline) -> None:
    s = pipeline.scenario
    rejected = dict(pipeline.query("select record_key, reason from sync.rejections where destination = 'mailchimp'"))
    assert rejected[s.dave] == "missing email"
    assert rejected[s.erin] == "invalid email address"
    frank_key = hashlib.md5(b"test@example.com").hexdigest()
    assert "looks fake or invalid" in rejected[frank_key]  # from the batch endpoint's per-member errors
    assert pipeline.stand_ins.mailchimp.member(pipeline.stand_ins.audience_id, "test@example.com") is None
    assert pipeline.stand_ins.mailchimp.member(pipeline.stand_ins.audience_id, "bob.stone@outlook.com")


def test_second_run_without_changes_pushes_nothing_and_keeps_tables_identical(pipeline: Pipeline) -> None:
    con = duckdb.connect(str(pipeline.warehouse), read_only=True)
    before = {t: table_digest(con, t) for t in TABLES}
    rejections_before = con.execute("select count(*) from sync.rejections").fetchone()
    con.close()
    pipeline.stand_ins.mailchimp.clear_requests()
    pipeline.stand_ins.customerio.clear_requests()

    pipeline.run()

    assert writes(pipeline.stand_ins) == {"mailchimp": 0, "customerio": 0}
    con = duckdb.connect(str(pipeline.warehouse), read_only=True)
    after = {t: table_digest(con, t) for t in TABLES}
    rejections_after = con.execute("select count(*) from sync.rejections").fetchone()
    con.close()
    assert after == before
    assert rejections_after == rejections_before  # a permanent rejection is recorded once, not nightly


def test_a_new_purchase_updates_exactly_the_members_whose_data_changed_and_flips_tags(pipeline: Pipeline) -> None:
    s = pipeline.scenario
    before = {d: pipeline.pushed_view(d) for d in ("mailchimp", "customerio")}
    s.account.add_charge(s.bob, 2500, "usd")
    pipeline.stand_ins.mailchimp.clear_requests()
    pipeline.stand_ins.customerio.clear_requests()

    pipeline.run()

    after = {d: pipeline.pushed_view(d) for d in ("mailchimp", "customerio")}
    changed = {d: {cid for cid in after[d] if after[d][cid] != before[d].get(cid)} for d in after}
    mc = pipeline.stand_ins.mailchimp
    audience = pipeline.stand_ins.audience_id
    puts = mc.requests_to("PUT", r"/members/")
    bob_put = [r for r in puts if r.json()["email_address"] == "bob.stone@outlook.com"]
    assert len(bob_put) == 1
    assert "status" not in bob_put[0].json()
    # Tags move in bulk through their static segments: bob leaves one_time and joins repeat.
    segment_ids = {s["name"]: s["id"] for s in mc.segments(audience)}
    segment_calls = {r.path.rsplit("/", 1)[1]: r.json() for r in mc.requests_to("POST", r"/segments/[0-9]+$")}
    assert "bob.stone@outlook.com" in segment_calls[str(segment_ids["frequency:one_time"])]["members_to_remove"]
    assert "bob.stone@outlook.com" in segment_calls[str(segment_ids["frequency:repeat"])]["members_to_add"]
    assert not mc.requests_to("POST", r"/tags$")
    assert "frequency:repeat" in mc.member_tags(audience, "bob.stone@outlook.com")
    assert "frequency:one_time" not in mc.member_tags(audience, "bob.stone@outlook.com")
    # Relative scores (RFM) can move other customers too; only the ones whose pushed data changed are sent:
    # a member PUT where merge fields changed, segment calls where only tags did.
    assert s.bob in changed["mailchimp"] and s.bob in changed["customerio"]
    emails = dict(pipeline.query("select customer_id, email from marts.customer_profiles"))
    accepted = {
        key for (key,) in pipeline.query("select record_key from sync.pushed_records where destination = 'mailchimp'")
    }
    in_audience = {
        cid
        for cid in after["mailchimp"]
        if emails.get(cid) and hashlib.md5(emails[cid].encode()).hexdigest() in accepted
    }
    fields_changed = {
        cid for cid in changed["mailchimp"] if after["mailchimp"][cid][:-1] != before["mailchimp"][cid][:-1]
    }
    assert {r.json()["email_address"] for r in puts} == {emails[cid] for cid in fields_changed & in_audience}
    tagged = {e for body in segment_calls.values() for e in body["members_to_add"] + body["members_to_remove"]}
    tags_changed = {cid for cid in changed["mailchimp"] if after["mailchimp"][cid][-1] != before["mailchimp"][cid][-1]}
    assert tagged == {emails[cid] for cid in tags_changed & in_audience}
    ops = [
        op
        for r in pipeline.stand_ins.customerio.requests_to("POST", "batch")
        for op in r.json()["batch"]
        if op["action"] == "identify"
    ]
    assert {op["identifiers"]["id"] for op in ops} == changed["customerio"]
    assert len(ops) == len(changed["customerio"])


def test_a_customer_deleted_in_stripe_loses_its_tags_and_is_flagged_in_customerio(pipeline: Pipeline) -> None:
    s = pipeline.scenario
    mc = pipeline.stand_ins.mailchimp
    audience = pipeline.stand_ins.audience_id
    assert mc.member_tags(audience, "bob.stone@outlook.com")
    s.account.delete_customer(s.bob)

    pipeline.run()

    member = mc.member(audience, "bob.stone@outlook.com")
    assert member is not None and member["status"] == "transactional"  # nothing deleted at the destination
    assert mc.member_tags(audience, "bob.stone@outlook.com") == set()
    bob = pipeline.stand_ins.customerio.person(s.bob)
    assert bob is not None and bob["stripe_deleted"] is True and bob.get("segments") in ([], None)
    assert bob["email"] == "bob.stone@outlook.com"
