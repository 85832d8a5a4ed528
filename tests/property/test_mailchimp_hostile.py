"""Hostile profiles through the whole Mailchimp push (stage -> plan in the warehouse -> batch endpoint over HTTP)
against the strict stand-in: each profile is a member with the right content, or a rejection with a reason."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from hypothesis import event, given

from audiences.mailchimp_client import MailchimpClient, subscriber_hash
from audiences.mailchimp_sync import sync_members
from audiences.profiles import Profile
from sandbox.mailchimp_api import MailchimpStandIn, email_problem
from tests.property.hostile import MAPPING, PAYLOADS, TEXT_MAX, Case, cases, zero_if_none

KEY = "0123456789abcdef0123456789abcdef-us21"
_AUDIENCES = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[MailchimpStandIn]:
    stand_in = MailchimpStandIn(api_key=KEY)
    stand_in.start()
    yield stand_in
    stand_in.stop()


def _client(server: MailchimpStandIn) -> MailchimpClient:
    client = MailchimpClient(KEY, api_base=server.url + "/3.0", retries=1)
    client.session.adapters["http://"].max_retries.backoff_factor = 0.01  # type: ignore[attr-defined]
    return client


def _text(value: str | None) -> str:
    return "" if value is None else value[:TEXT_MAX]


def expected_member(p: Profile) -> dict[str, Any]:
    """What the audience must hold for the profile that won its contact: the values as the stand-in stores them
    (a new member's empty values are not sent, so they read back as "")."""
    f = p.fields
    last: dt.datetime | None = f["last_purchase_at"]
    spend: Decimal | None = f["lifetime_spend"]
    return {
        "email_address": str(p.email).strip(),
        "status": "subscribed" if f["marketing_consent"] else "transactional",
        "CURRENCY": _text(f["currency"]),
        "LTV": "" if spend is None else float(spend),
        "PURCHASES": "" if f["purchase_count"] is None else f["purchase_count"],
        "LASTPURCH": "" if last is None else last.astimezone(dt.UTC).date().isoformat(),
        "NAME": _text(f["name"]),
        "tags": set(p.tags),
    }


def _same_number(got: Any, want: Any) -> bool:
    if want == "" or got == "":
        return got == want
    return math.isclose(float(got), float(want), rel_tol=1e-12)


def _winner(group: list[Profile]) -> Profile:
    """The documented rule: the highest lifetime spend, then the lowest customer id."""
    return sorted(group, key=lambda p: (-zero_if_none(p.fields["lifetime_spend"]), p.customer_id))[0]


@PAYLOADS
@given(case=cases())
def test_every_hostile_profile_is_a_right_member_or_a_rejection_with_a_reason(
    server: MailchimpStandIn, case: Case
) -> None:
    audience = f"prop{next(_AUDIENCES):05d}"
    server.create_audience(list_id=audience, name="property")
    con = duckdb.connect()
    client = _client(server)

    result = sync_members(con, client, audience, case.profiles, MAPPING)  # never raises for bad records

    assert result.considered == len(case.profiles)
    assert server.contract_violations == [], server.contract_violations[-1:]
    by_key = {r.record_key: r for r in result.rejections}
    assert len(by_key) == len(result.rejections), "a record rejected twice"
    assert all(r.reason.strip() for r in result.rejections)

    # Every profile is a contact (by its address's hash) or rejected by its customer id; none is both, none lost.
    contacts: dict[str, list[Profile]] = {}
    for p in case.profiles:
        if p.customer_id in by_key:
            assert p.customer_id not in case.clean or "duplicate email" in by_key[p.customer_id].reason, (
                f"clean profile rejected: {by_key[p.customer_id]}"
            )
            continue
        assert p.email, f"{p.customer_id} has no address and no rejection"
        contacts.setdefault(subscriber_hash(p.email), []).append(p)
    assert all(len(group) == 1 for group in contacts.values()), "two profiles sent as one contact"
    for r in result.rejections:
        if r.reason.startswith("duplicate email"):
            loser = case.by_id()[r.record_key]
            key = subscriber_hash(str(loser.email))
            assert key in contacts, f"{r.record_key} merged into a contact that is not there"
            (winner,) = contacts[key]
            assert r.reason.endswith(winner.customer_id)
            assert _winner([winner, loser]) is winner

    members = {m["id"]: m for m in server.members(audience)}
    accepted = 0
    for key, (p,) in contacts.items():
        if key in by_key:
            assert p.customer_id not in case.clean, f"clean profile refused: {by_key[key]}"
            assert key not in members
            if "looks fake or invalid" in by_key[key].reason:  # the address itself, not its padding
                assert email_problem(str(p.email).strip()) is not None, (p.email, by_key[key].reason)
            continue
        accepted += 1
        member = members.get(key)
        assert member is not None, f"{p.customer_id} neither sent nor rejected"
        want = expected_member(p)
        got = {"email_address": member["email_address"], "status": member["status"], **member["merge_fields"]}
        got["tags"] = {t["name"] for t in member["tags"]}
        for name in ("email_address", "status", "CURRENCY", "LASTPURCH", "NAME", "tags"):
            assert got[name] == want[name], (p.customer_id, name, got[name], want[name])
        for name in ("LTV", "PURCHASES"):
            assert _same_number(got[name], want[name]), (p.customer_id, name, got[name], want[name])
    assert len(members) == accepted == result.sent == result.created
    hostile = accepted - len(case.clean & {p.customer_id for (p,) in contacts.values()})
    event(f"hostile members accepted: {min(hostile, 3)}")
    event(f"duplicates merged: {min(sum(r.reason.startswith('duplicate') for r in result.rejections), 2)}")

    # The same profiles again: nothing to send, no rejection recorded twice.
    again = sync_members(con, client, audience, case.profiles, MAPPING)
    assert (again.sent, again.rejected) == (0, 0)
    assert again.unchanged + again.still_rejected == len(contacts) + sum(
        1 for p in case.profiles if p.customer_id in by_key
    )
