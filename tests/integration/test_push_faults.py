"""The push engines against the destination stand-ins over HTTP, with storms of 429s and 500s mid-sync."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from audiences.customerio_client import CustomerIOClient
from audiences.customerio_sync import sync_people
from audiences.field_mapping import FieldMapping, MergeField
from audiences.mailchimp_client import MailchimpClient
from audiences.mailchimp_sync import sync_members
from audiences.profiles import Profile
from sandbox.customerio_api import CustomerIOStandIn
from sandbox.http_server import Fault
from sandbox.mailchimp_api import MailchimpStandIn

KEY = "0123456789abcdef0123456789abcdef-us21"
AUDIENCE = "f00dfeed01"
MAPPING = FieldMapping(
    merge_fields=(
        MergeField("lifetime_spend", "LTV", "Lifetime spend", "number"),
        MergeField("last_purchase_at", "LASTPURCH", "Last purchase", "date"),
    ),
    customerio_attributes={"lifetime_spend": "lifetime_spend", "notes": "notes"},
)
PEOPLE = 1_200  # three member batches of 500 and several segment calls per tag


def profiles(n: int = PEOPLE, *, high: set[int] = frozenset()) -> list[Profile]:
    out = []
    for i in range(n):
        fields = {
            "customer_id": f"cus_{i:05d}",
            "email": f"person{i}@gmail.com",
            "has_valid_email": True,
            "lifetime_spend": Decimal(2000 if i in high else i % 50),
            "last_purchase_at": dt.datetime(2026, 3, 4, tzinfo=dt.UTC),
            "marketing_consent": i % 3 == 0,
            "notes": f"{i:05d}" * 120,  # 600 bytes: the people take several 500 KB batches
        }
        tags = ["spend:high" if i in high else "spend:low", f"cohort:{i % 4}"]
        out.append(Profile(fields["customer_id"], fields, tags))
    return out


@pytest.fixture
def mailchimp() -> Iterator[MailchimpStandIn]:
    server = MailchimpStandIn(api_key=KEY, latency=0.01)
    server.create_audience(list_id=AUDIENCE, name="faults")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def customerio() -> Iterator[CustomerIOStandIn]:
    server = CustomerIOStandIn(site_id="site", api_key="track-key-0123", latency=0.01)
    server.start()
    yield server
    server.stop()


def mc_client(server: MailchimpStandIn) -> MailchimpClient:
    client = MailchimpClient(KEY, api_base=server.url + "/3.0", retries=8)
    client.session.adapters["http://"].max_retries.backoff_factor = 0.01  # type: ignore[attr-defined]
    return client


def test_mailchimp_429_storm_and_500s_mid_sync_deliver_everyone_once(mailchimp: MailchimpStandIn) -> None:
    con = duckdb.connect()
    storm = {"Retry-After": "0"}
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=429, times=3, headers=storm))
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=500, times=1, skip=1))
    client = mc_client(mailchimp)

    result = sync_members(con, client, AUDIENCE, profiles(), MAPPING)

    assert result.rejections == []
    assert (result.created, result.sent) == (PEOPLE, PEOPLE)
    assert result.retried == 4
    members = mailchimp.members(AUDIENCE)
    assert len(members) == PEOPLE
    assert {m["status"] for m in members} == {"subscribed", "transactional"}
    assert mailchimp.member_tags(AUDIENCE, "person7@gmail.com") == {"spend:low", "cohort:3"}
    # 3 batch creates of at most 500 carrying the new members' tags (4 repeated): no per-member or tag calls.
    batches = mailchimp.requests_to("POST", r"/lists/[^/]+$")
    assert len(batches) == 3 + 4
    assert all(len(b.json()["members"]) <= 500 and b.json()["update_existing"] is False for b in batches)
    assert not mailchimp.requests_to("PUT", r"/members/")
    assert not mailchimp.requests_to("POST", r"/segments/")
    assert not mailchimp.requests_to("POST", r"/tags$")
    assert not mailchimp.contract_violations
    assert mailchimp.rejected_for_connections == 0 and mailchimp.max_in_flight_seen <= 10

    # Nothing changed: nothing is sent. One customer moves segment: one tag flip, no member write.
    mailchimp.clear_requests()
    again = sync_members(con, client, AUDIENCE, profiles(), MAPPING)
    assert (again.sent, again.unchanged) == (0, PEOPLE)
    assert [r.method for r in mailchimp.requests if r.method != "GET"] == []
    flipped = sync_members(con, client, AUDIENCE, profiles(high={7}), MAPPING)
    assert (flipped.sent, flipped.updated) == (1, 1)
    assert mailchimp.member_tags(AUDIENCE, "person7@gmail.com") == {"spend:high", "cohort:3"}
    assert len(mailchimp.requests_to("PUT", r"/members/")) == 1  # LTV changed too

    # 1,100 customers move segment while the tags' segment calls meet 500s and a 429 storm.
    mailchimp.clear_requests()
    mailchimp.inject(Fault(r"/segments/[0-9]+$", method="POST", status=500, times=2, skip=1))
    mailchimp.inject(Fault(r"/segments/[0-9]+$", method="POST", status=429, times=4, skip=3, headers=storm))
    movers = set(range(100, PEOPLE))
    moved = sync_members(con, client, AUDIENCE, profiles(high=movers | {7}), MAPPING)
    assert moved.rejections == [] and moved.sent == len(movers)
    assert moved.retried - flipped.retried == 6  # the client counts for its lifetime
    assert all(mailchimp.member_tags(AUDIENCE, f"person{i}@gmail.com") >= {"spend:high"} for i in movers)
    assert not any("spend:low" in mailchimp.member_tags(AUDIENCE, f"person{i}@gmail.com") for i in movers)
    # per tag, one segment call per 500 members (spend:high +1,100, spend:low -1,100), 6 of them repeated
    calls = [r.json() for r in mailchimp.requests_to("POST", r"/segments/[0-9]+$")]
    assert len(calls) == 3 + 3 + 6
    assert max(len(c["members_to_add"]) + len(c["members_to_remove"]) for c in calls) == 500
    assert not mailchimp.contract_violations


def test_mailchimp_existing_member_keeps_its_status_and_fake_email_is_rejected_once(
    mailchimp: MailchimpStandIn,
) -> None:
    con = duckdb.connect()
    mailchimp.add_member(AUDIENCE, "person3@gmail.com", status="unsubscribed")  # consents in Stripe (3 % 3 == 0)
    people = profiles(10)
    people[5].fields["email"] = "test@example.com"  # looks fake: Mailchimp refuses it
    client = mc_client(mailchimp)

    first = sync_members(con, client, AUDIENCE, people, MAPPING)

    assert mailchimp.member(AUDIENCE, "person3@gmail.com")["status"] == "unsubscribed"
    assert [(r.record_key, r.permanent) for r in first.rejections] == [(_hash("test@example.com"), True)]
    assert "Invalid Resource" in first.rejections[0].reason or "fake" in first.rejections[0].reason.lower()
    batches = [r.json() for r in mailchimp.requests_to("POST", r"/lists/[^/]+$")]
    assert all(b["update_existing"] is False for b in batches)
    puts = [r.json() for r in mailchimp.requests_to("PUT", r"/members/")]
    assert [p["email_address"] for p in puts] == ["person3@gmail.com"] and "status" not in puts[0]
    # the new ones got their tags in the batch; the one that existed gets them through the segments
    assert mailchimp.member_tags(AUDIENCE, "person3@gmail.com") == {"spend:low", "cohort:3"}
    assert mailchimp.member_tags(AUDIENCE, "person4@gmail.com") == {"spend:low", "cohort:0"}
    segment_calls = [r.json() for r in mailchimp.requests_to("POST", r"/segments/[0-9]+$")]
    assert sorted(e for c in segment_calls for e in c["members_to_add"]) == ["person3@gmail.com"] * 2

    mailchimp.clear_requests()
    second = sync_members(con, client, AUDIENCE, people, MAPPING)
    assert second.rejections == [] and second.still_rejected == 1 and second.sent == 0
    assert [r for r in mailchimp.requests if r.method != "GET"] == []
    assert con.execute("select count(*) from sync.rejections").fetchone() == (1,)


def test_a_departed_contact_loses_our_tags_and_keeps_its_member_record(mailchimp: MailchimpStandIn) -> None:
    con = duckdb.connect()
    client = mc_client(mailchimp)
    sync_members(con, client, AUDIENCE, profiles(6), MAPPING)
    assert mailchimp.member_tags(AUDIENCE, "person4@gmail.com") == {"spend:low", "cohort:0"}

    mailchimp.forget("person2@gmail.com")  # deleted for good at Mailchimp too: nothing left to untag
    remaining = [p for i, p in enumerate(profiles(6)) if i not in (2, 4)]  # person2 and person4 are gone

    result = sync_members(con, client, AUDIENCE, remaining, MAPPING)

    assert result.departed == 2 and result.sent == 2 and result.rejections == []
    member = mailchimp.member(AUDIENCE, "person4@gmail.com")
    assert member is not None and member["status"] == "transactional"
    assert mailchimp.member_tags(AUDIENCE, "person4@gmail.com") == set()
    assert not mailchimp.requests_to("PUT", r"/members/")
    # A limited run (run config `limit`) does not take the others for departed.
    limited = sync_members(con, client, AUDIENCE, profiles(6)[:1], MAPPING, withdraw_departed=False)
    assert limited.departed == 0 and limited.sent == 0


def test_customerio_429_storm_and_500_mid_sync_deliver_everyone_once(customerio: CustomerIOStandIn) -> None:
    con = duckdb.connect()
    storm = {"Retry-After": "0"}
    customerio.inject(Fault(r"^/api/v2/batch$", status=429, times=4, headers=storm))
    customerio.inject(Fault(r"^/api/v2/batch$", status=500, times=1, skip=1))
    client = CustomerIOClient("site", "track-key-0123", base_url=customerio.url, retries=8)
    client.session.adapters["http://"].max_retries.backoff_factor = 0.01  # type: ignore[attr-defined]

    result = sync_people(con, client, profiles(), MAPPING)

    assert result.rejections == [] and result.created == PEOPLE and result.retried == 5
    assert result.api_calls >= 2  # the 500 hit a later batch, after the first was delivered
    assert customerio.person("cus_00007")["lifetime_spend"] == 7.0
    assert len(customerio.persons()) == PEOPLE
    again = sync_people(con, client, profiles(), MAPPING)
    assert again.sent == 0 and again.unchanged == PEOPLE


def _hash(email: str) -> str:
    return hashlib.md5(email.encode()).hexdigest()
