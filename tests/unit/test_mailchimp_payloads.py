from __future__ import annotations

import datetime as dt
from decimal import Decimal

from audiences.field_mapping import FieldMapping, MergeField
from audiences.mailchimp_client import subscriber_hash
from audiences.mailchimp_sync import build_payloads, format_date
from audiences.profiles import Profile

MAPPING = FieldMapping(
    merge_fields=(
        MergeField("lifetime_spend", "LTV", "Lifetime spend", "number"),
        MergeField("last_purchase_at", "LASTPURCH", "Last purchase", "date"),
        MergeField("spend_segment", "SPENDSEG", "Spend segment", "text"),
    ),
    customerio_attributes={},
)


def profile(cid: str, email: str | None, spend: str = "0", consent: bool = False, valid: bool = True) -> Profile:
    fields = {
        "customer_id": cid,
        "email": email,
        "has_valid_email": valid,
        "lifetime_spend": Decimal(spend),
        "last_purchase_at": dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC),
        "spend_segment": "low",
        "marketing_consent": consent,
    }
    return Profile(cid, fields, ["spend:low"])


def test_status_if_new_follows_consent_and_status_is_never_sent() -> None:
    payloads, rejections = build_payloads(
        [profile("cus_a", "a@gmail.com", consent=True), profile("cus_b", "b@gmail.com")], MAPPING, {}
    )
    assert rejections == []
    by_email = {p["email_address"]: p for p in payloads.values()}
    assert by_email["a@gmail.com"]["status_if_new"] == "subscribed"
    assert by_email["b@gmail.com"]["status_if_new"] == "transactional"
    assert all("status" not in p for p in payloads.values())


def test_key_is_md5_of_lowercased_email_and_values_are_typed() -> None:
    payloads, _ = build_payloads([profile("cus_a", "a@gmail.com", spend="12.50")], MAPPING, {"LASTPURCH": "MM/DD/YYYY"})
    key = subscriber_hash("A@Gmail.com ")
    assert list(payloads) == [key]
    assert payloads[key]["merge_fields"] == {"LTV": 12.5, "LASTPURCH": "03/04/2026", "SPENDSEG": "low"}
    assert payloads[key]["tags"] == ["spend:low"]


def test_missing_and_invalid_emails_are_rejected_with_reasons() -> None:
    payloads, rejections = build_payloads(
        [profile("cus_a", None), profile("cus_b", "nope", valid=False), profile("cus_c", "c@gmail.com")], MAPPING, {}
    )
    assert len(payloads) == 1
    assert {(r.record_key, r.reason, r.permanent) for r in rejections} == {
        ("cus_a", "missing email", True),
        ("cus_b", "invalid email address", True),
    }


def test_same_email_in_any_case_is_one_contact_the_biggest_spender_wins() -> None:
    payloads, rejections = build_payloads(
        [profile("cus_a", "x@gmail.com", spend="10"), profile("cus_b", "X@gmail.com", spend="99")], MAPPING, {}
    )
    assert [p["customer_id"] for p in payloads.values()] == ["cus_b"]
    assert [(r.record_key, r.reason) for r in rejections] == [
        ("cus_a", "duplicate email: merged into contact of cus_b")
    ]


def test_date_formats() -> None:
    day = dt.date(2026, 1, 31)
    assert format_date(day, "YYYY-MM-DD") == "2026-01-31"
    assert format_date(day, "DD/MM/YYYY") == "31/01/2026"
    assert format_date(None, "YYYY-MM-DD") == ""


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

    plan = Plan(
        to_send={
            "new": payload("new@gmail.com", 1, ["spend:low"]),
            "ltv": payload("ltv@gmail.com", 2, ["spend:low"]),
            "tag": payload("tag@gmail.com", 3, ["spend:high"]),
            "gone": {"customer_id": "c", "email_address": "gone@gmail.com", "tags": []},
        },
        previous={
            "ltv": payload("ltv@gmail.com", 1, ["spend:low"]),
            "tag": payload("tag@gmail.com", 3, ["spend:low"]),
            "gone": payload("gone@gmail.com", 3, ["spend:low", "rfm:lost"]),
        },
    )
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
