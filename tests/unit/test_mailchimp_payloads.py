"""Mailchimp payloads as the warehouse computes them (``payload_sql``), and how they become API calls."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import duckdb

from audiences.field_mapping import FieldMapping, MergeField
from audiences.mailchimp_client import subscriber_hash
from audiences.mailchimp_sync import plan_contacts
from audiences.profiles import Profile, stage_profiles
from audiences.sync_state import Rejection, canonical_json, payload_hash, record_accepted

MAPPING = FieldMapping(
    merge_fields=(
        MergeField("lifetime_spend", "LTV", "Lifetime spend", "number"),
        MergeField("last_purchase_at", "LASTPURCH", "Last purchase", "date"),
        MergeField("spend_segment", "SPENDSEG", "Spend segment", "text"),
    ),
    customerio_attributes={},
)


def profile(
    cid: str,
    email: str | None,
    spend: str = "0",
    consent: bool = False,
    valid: bool = True,
    last: dt.datetime | None = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC),
    segment: str | None = "low",
) -> Profile:
    fields = {
        "customer_id": cid,
        "email": email,
        "has_valid_email": valid,
        "lifetime_spend": Decimal(spend),
        "last_purchase_at": last,
        "spend_segment": segment,
        "marketing_consent": consent,
    }
    return Profile(cid, fields, ["spend:low"] if segment else [])


def build(
    profiles: list[Profile], date_formats: dict[str, str] | None = None, con: duckdb.DuckDBPyConnection | None = None
) -> tuple[dict[str, dict[str, Any]], list[Rejection], Any]:
    con = con or duckdb.connect()
    plan, rejections = plan_contacts(
        con, stage_profiles(con, profiles), MAPPING, date_formats or {}, full_resync=False, withdraw_departed=False
    )
    return dict(plan.to_send), rejections, plan


def test_status_if_new_follows_consent_and_status_is_never_sent() -> None:
    payloads, rejections, _ = build([profile("cus_a", "a@gmail.com", consent=True), profile("cus_b", "b@gmail.com")])
    assert rejections == []
    by_email = {p["email_address"]: p for p in payloads.values()}
    assert by_email["a@gmail.com"]["status_if_new"] == "subscribed"
    assert by_email["b@gmail.com"]["status_if_new"] == "transactional"
    assert all("status" not in p for p in payloads.values())


def test_key_is_md5_of_lowercased_email_and_values_are_typed() -> None:
    payloads, _, _ = build([profile("cus_a", " A@Gmail.com\t", spend="12.50")], {"LASTPURCH": "MM/DD/YYYY"})
    key = subscriber_hash("a@gmail.com")
    assert list(payloads) == [key]
    assert payloads[key]["merge_fields"] == {"LTV": 12.5, "LASTPURCH": "03/04/2026", "SPENDSEG": "low"}
    assert payloads[key]["tags"] == ["spend:low"]


def test_non_ascii_addresses_get_pythons_subscriber_hash() -> None:
    emails = ["ÉLODIE@exemple.fr", "\u00a0zoë@gmail.com\u2003", "İstanbul@örnek.com.tr"]
    payloads, _, _ = build([profile(f"cus_{i}", e) for i, e in enumerate(emails)])
    assert sorted(payloads) == sorted(subscriber_hash(e) for e in emails)


def test_payload_text_is_the_canonical_json_the_hashes_were_taken_of() -> None:
    """For ASCII data the warehouse writes exactly the text Python's canonical_json wrote before: an upgrade
    finds every stored hash equal and resends nothing."""
    _, _, plan = build([profile("cus_a", "a@gmail.com", spend="12.50"), profile("cus_b", "b@gmail.com", last=None)])
    for key, text in plan.texts.items():
        assert text == canonical_json(json.loads(text))
        assert plan.hashes[key] == payload_hash(json.loads(text))


def test_a_stored_payload_in_another_encoding_is_unchanged_and_rehashed() -> None:
    con = duckdb.connect()
    people = [profile("cus_a", "zoë@gmail.com", segment="très bien")]
    _, _, plan = build(people, con=con)
    (key,) = plan.texts
    old_text = canonical_json(plan.to_send[key])  # Python's escapes: "zo\u00eb"
    assert old_text != plan.texts[key]
    record_accepted(con, "mailchimp", [(key, payload_hash(plan.to_send[key]), old_text)])
    payloads, _, again = build(people, con=con)
    assert payloads == {} and again.unchanged == 1
    assert [(k, h) for k, h, _ in again.rehashed] == [(key, plan.hashes[key])]


def test_new_member_leaves_out_empty_merge_values_and_an_empty_tag_list() -> None:
    _, _, plan = build([profile("cus_a", "a@gmail.com", last=None, segment=None)])
    (key,) = plan.texts
    member, tag_count = plan.extras[key]
    assert json.loads(member) == {
        "email_address": "a@gmail.com",
        "status": "transactional",
        "merge_fields": {"LTV": 0.0},
    }
    assert tag_count == 0
    assert plan.to_send[key]["merge_fields"] == {"LTV": 0.0, "LASTPURCH": "", "SPENDSEG": ""}  # "" clears


def test_missing_and_invalid_emails_are_rejected_with_reasons() -> None:
    payloads, rejections, _ = build(
        [profile("cus_a", None), profile("cus_b", "nope", valid=False), profile("cus_c", "c@gmail.com")]
    )
    assert len(payloads) == 1
    assert {(r.record_key, r.reason, r.permanent) for r in rejections} == {
        ("cus_a", "missing email", True),
        ("cus_b", "invalid email address", True),
    }


def test_same_email_in_any_case_is_one_contact_the_biggest_spender_wins() -> None:
    payloads, rejections, _ = build(
        [profile("cus_a", "x@gmail.com", spend="10"), profile("cus_b", "X@gmail.com", spend="99")]
    )
    assert [p["customer_id"] for p in payloads.values()] == ["cus_b"]
    assert [(r.record_key, r.reason) for r in rejections] == [
        ("cus_a", "duplicate email: merged into contact of cus_b")
    ]


def test_date_formats_and_utc_days() -> None:
    late = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # Feb 1st in UTC
    for date_format, expected in (("YYYY-MM-DD", "2026-02-01"), ("DD/MM/YYYY", "01/02/2026")):
        payloads, _, _ = build([profile("cus_a", "a@gmail.com", last=late)], {"LASTPURCH": date_format})
        assert [p["merge_fields"]["LASTPURCH"] for p in payloads.values()] == [expected]


def test_plan_members_batches_new_contacts_puts_changed_ones_and_moves_tags_apart() -> None:
    from audiences.mailchimp_sync import plan_members
    from audiences.sync_state import Plan

    def payload(email: str, ltv: float, tags: list[str]) -> dict:
        return {
            "customer_id": email,
            "email_address": email,
            "status_if_new": "transactional",
            "merge_fields": {"LTV": ltv},
            "tags": tags,
        }

    plan = Plan()
    for key, value in {
        "new": payload("new@gmail.com", 1, ["spend:low"]),
        "ltv": payload("ltv@gmail.com", 2, ["spend:low"]),
        "tag": payload("tag@gmail.com", 3, ["spend:high"]),
        "gone": {"customer_id": "c", "email_address": "gone@gmail.com", "tags": []},
    }.items():
        plan.send(key, canonical_json(value), payload_hash(value), value)
    plan.extras["new"] = ('{"email_address":"new@gmail.com"}', 1)
    plan.gone.add("gone")
    plan.previous = {
        "ltv": payload("ltv@gmail.com", 1, ["spend:low"]),
        "tag": payload("tag@gmail.com", 3, ["spend:low"]),
        "gone": payload("gone@gmail.com", 3, ["spend:low", "rfm:lost"]),
    }
    members = plan_members(plan)
    assert members.create == ["new"] and members.put == ["ltv"]  # tag-only and departed: no member write
    assert sorted(members.tags.add["spend:high"]) == ["tag@gmail.com"]
    assert "spend:low" not in members.tags.add  # the new contact's tag goes with it in the batch
    assert members.create_tags == 1
    assert sorted(members.tags.remove["spend:low"]) == ["gone@gmail.com", "tag@gmail.com"]
    assert members.tags.remove["rfm:lost"] == ["gone@gmail.com"]
    assert members.operations() == {"member_creates": 1, "member_updates": 1, "tag_additions": 2, "tag_removals": 3}


def test_tag_changes_go_500_adds_and_500_removes_per_call() -> None:
    from audiences.mailchimp_tags import TagChanges

    changes = TagChanges()
    for i in range(1200):
        changes.set(f"k{i}", f"a{i}@gmail.com", {"vip"}, set())
    for i in range(300):
        changes.set(f"r{i}", f"r{i}@gmail.com", set(), {"vip"})
    calls = list(changes.calls())
    assert [(tag, len(adds), len(removes)) for tag, adds, removes in calls] == [
        ("vip", 500, 300),
        ("vip", 500, 0),
        ("vip", 200, 0),
    ]
    assert changes.operations == 1500 and changes.keys["a7@gmail.com"] == "k7"
