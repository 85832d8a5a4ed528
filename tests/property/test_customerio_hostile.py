"""Hostile profiles through the whole Customer.io push (stage -> ops in the warehouse -> /api/v2/batch over HTTP)
against the strict stand-in: each profile is a person with the right attributes, or a rejection with a reason;
nothing is dropped silently (the stand-in lists the ops it accepted without applying them)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
from hypothesis import event, given

from audiences.customerio_client import CustomerIOClient
from audiences.customerio_sync import sync_people
from audiences.mailchimp_client import subscriber_hash
from audiences.profiles import Profile
from sandbox.customerio_api import CustomerIOStandIn
from tests.property.hostile import MAPPING, PAYLOADS, VALUE_MAX, Case, cases, zero_if_none


@contextmanager
def running() -> Iterator[CustomerIOStandIn]:
    """A fresh stand-in per example: it keeps every person (and email) it was ever sent."""
    stand_in = CustomerIOStandIn(site_id="site", api_key="track-key")
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


def _client(server: CustomerIOStandIn) -> CustomerIOClient:
    client = CustomerIOClient("site", "track-key", base_url=server.url, retries=1, requests_per_second=None)
    client.session.adapters["http://"].max_retries.backoff_factor = 0.01  # type: ignore[attr-defined]
    return client


def email_owners(case: Case) -> dict[str, str]:
    """Customer id -> the address it must carry: per address (any case, trimmed), the profile with the highest
    lifetime spend, then the lowest customer id, among those whose address the mart calls valid."""
    groups: dict[str, list[Profile]] = {}
    for p in case.profiles:
        if p.email and p.email.strip() and p.fields["has_valid_email"]:
            groups.setdefault(subscriber_hash(p.email), []).append(p)
    owners = {}
    for group in groups.values():
        winner = min(group, key=lambda p: (-zero_if_none(p.fields["lifetime_spend"]), p.customer_id))
        owners[winner.customer_id] = str(winner.email).strip()
    return owners


def expected_person(p: Profile, email: str | None) -> dict[str, Any]:
    """The person's attributes as the stand-in holds them: NULL and "" remove an attribute."""
    f = p.fields
    last: dt.datetime | None = f["last_purchase_at"]
    values: dict[str, Any] = {
        "id": p.customer_id,
        "email": email,
        "name": f["name"],
        "currency": f["currency"],
        "lifetime_spend": None if f["lifetime_spend"] is None else float(f["lifetime_spend"]),
        "purchase_count": f["purchase_count"],
        "last_purchase_at": None if last is None else int(last.timestamp()),
        "marketing_consent": f["marketing_consent"],
        "metadata": f["metadata"],
        "segments": sorted(p.tags),
    }
    return {k: v for k, v in values.items() if v is not None and v != ""}


def _fits(person: dict[str, Any]) -> bool:
    """Whether Customer.io can take these attributes as they are (ids and emails to 150 bytes, values to 1000)."""
    if len(person["id"].encode()) > 150 or len(str(person.get("email", "")).encode()) > 150:
        return False
    return all(len(v.encode()) <= VALUE_MAX for v in person.values() if isinstance(v, str))


@PAYLOADS
@given(case=cases())
def test_every_hostile_profile_is_a_right_person_or_a_rejection_with_a_reason(case: Case) -> None:
    with running() as server:
        check_people(server, case)


def check_people(server: CustomerIOStandIn, case: Case) -> None:
    con = duckdb.connect()
    client = _client(server)

    result = sync_people(con, client, case.profiles, MAPPING)

    assert result.considered == len(case.profiles)
    assert server.contract_violations == [], server.contract_violations[-1:]
    assert server.attribute_update_failures == [], server.attribute_update_failures[:1]  # silently not applied
    assert server.dropped_ops == []
    rejected = {r.record_key: r for r in result.rejections}
    assert len(rejected) == len(result.rejections), "a record rejected twice"
    assert all(r.reason.strip() for r in result.rejections)
    owners = email_owners(case)
    accepted = 0
    for p in case.profiles:
        want = expected_person(p, owners.get(p.customer_id))
        got = server.person(p.customer_id)
        if p.customer_id in rejected:
            assert p.customer_id not in case.clean, f"clean profile refused: {rejected[p.customer_id]}"
            assert got is None or got.get("segments") is None, f"{p.customer_id} rejected but written"
            if _fits(want):  # within every limit: only the address itself can be refused
                assert "email" in rejected[p.customer_id].reason, (p.email, rejected[p.customer_id].reason)
            continue
        accepted += 1
        assert got is not None, f"{p.customer_id} neither sent nor rejected"
        assert set(got) == set(want), (p.customer_id, set(got) ^ set(want))
        for name, value in want.items():
            if isinstance(value, float):
                assert math.isclose(got[name], value, rel_tol=1e-12), (p.customer_id, name, got[name], value)
            else:
                assert got[name] == value, (p.customer_id, name, got[name], value)
    assert accepted == result.sent == result.created
    # One person per address: no two people share an email, whatever its case.
    emails = [str(a["email"]).lower() for a in server.persons().values() if "email" in a]
    assert len(emails) == len(set(emails))
    event(f"hostile people accepted: {min(accepted - len(case.clean - set(rejected)), 3)}")
    event(f"rejected: {min(len(rejected), 3)}")

    again = sync_people(con, client, case.profiles, MAPPING)
    assert (again.sent, again.rejected) == (0, 0)
    assert again.unchanged + again.still_rejected == len(case.profiles)
