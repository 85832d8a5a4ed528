"""Destination faults over real HTTP, one test each: partial batch failures, Customer.io's 207 per-op errors, 429
with and without ``Retry-After``, 5xx, time-outs (answered late, after the destination applied the request). Each
record ends delivered (the destination holds exactly its payload, tags and consent-safe status) or rejected with
its reason in ``sync.rejections``; the next sync sends nothing but what a failure left to send.

(test_push_faults.py has the 429 storms and 500s mid-sync with ``Retry-After: 0``.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from audiences.customerio_client import CustomerIOClient
from audiences.customerio_events import event_ulid, forward_events
from audiences.customerio_sync import sync_people
from audiences.mailchimp_client import MailchimpClient, subscriber_hash
from audiences.mailchimp_sync import sync_members
from audiences.profiles import Profile
from sandbox.customerio_api import CustomerIOStandIn
from sandbox.http_server import Fault
from sandbox.mailchimp_api import MailchimpStandIn
from tests.integration.test_push_faults import AUDIENCE, KEY, MAPPING, profiles

MEMBERS = 620  # two member batches of 500
PEOPLE = 900  # two Customer.io batches of 500 KB
SLOW = Fault  # (an alias: a fault that answers late, with ``delay`` and ``apply``)


@pytest.fixture
def mailchimp() -> Iterator[MailchimpStandIn]:
    server = MailchimpStandIn(api_key=KEY)
    server.create_audience(list_id=AUDIENCE, name="faults")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def customerio() -> Iterator[CustomerIOStandIn]:
    server = CustomerIOStandIn(site_id="site", api_key="track-key-0123")
    server.start()
    yield server
    server.stop()


def mc_client(server: MailchimpStandIn, *, timeout: float = 60.0, retries: int = 6) -> MailchimpClient:
    client = MailchimpClient(KEY, api_base=server.url + "/3.0", retries=retries, timeout=timeout)
    client.session.adapters["http://"].max_retries.backoff_factor = 0.01  # type: ignore[attr-defined]
    return client


def cio_client(server: CustomerIOStandIn, *, timeout: float = 60.0, retries: int = 6) -> CustomerIOClient:
    client = CustomerIOClient("site", "track-key-0123", base_url=server.url, retries=retries, timeout=timeout)
    client.session.adapters["http://"].max_retries.backoff_factor = 0.01  # type: ignore[attr-defined]
    return client


def assert_members_exact(mailchimp: MailchimpStandIn, people: list[Profile], refused: set[str]) -> None:
    """Each profile not ``refused`` (by email) is a member with its merge fields, its tags only, and the status its
    consent gives a new member; nobody else is."""
    expected = {p.fields["email"]: p for p in people if p.fields["email"] not in refused}
    members = {m["email_address"]: m for m in mailchimp.members(AUDIENCE)}
    assert set(members) == set(expected)
    for email, profile in expected.items():
        member = members[email]
        assert member["status"] == ("subscribed" if profile.fields["marketing_consent"] else "transactional")
        assert member["merge_fields"]["LTV"] == float(profile.fields["lifetime_spend"]), email
        assert mailchimp.member_tags(AUDIENCE, email) == set(profile.tags), email
    assert not mailchimp.contract_violations


def assert_people_exact(customerio: CustomerIOStandIn, people: list[Profile], refused: set[str]) -> None:
    expected = {p.customer_id: p for p in people if p.customer_id not in refused}
    persons = customerio.persons()
    assert set(persons) == set(expected)
    for key, profile in expected.items():
        assert persons[key]["lifetime_spend"] == float(profile.fields["lifetime_spend"]), key
        assert sorted(persons[key]["segments"]) == sorted(profile.tags), key
    assert not customerio.contract_violations


def rejections(con: duckdb.DuckDBPyConnection, destination: str) -> dict[str, tuple[str, bool]]:
    """The latest rejection of each record (the table keeps them all); a permanent one is never recorded twice."""
    rows = con.execute(
        "select record_key, reason, permanent, payload_hash from sync.rejections where destination = ? "
        "order by rejected_at",
        [destination],
    ).fetchall()
    permanent = [(key, digest) for key, _, perm, digest in rows if perm]
    assert len(permanent) == len(set(permanent)), "a record rejected twice for the same payload"
    return {key: (reason, perm) for key, reason, perm, _ in rows}


def test_mailchimp_partial_batch_failures_reject_those_members_with_their_reason(mailchimp: MailchimpStandIn) -> None:
    con = duckdb.connect()
    people = profiles(MEMBERS)
    fake = {3: "test@person3.com", 7: "person7@example.com", 560: "asdf@gmail.com"}  # Mailchimp: "looks fake"
    for i, email in fake.items():
        people[i].fields["email"] = email
    forgotten = {people[11].fields["email"], people[590].fields["email"]}  # GDPR-deleted: never re-importable
    for email in forgotten:
        mailchimp.forget(email)
    # The first batch (500) has its member-level errors in a 200; the second fails as a whole, for good.
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=503, times=7, skip=1))
    client = mc_client(mailchimp, retries=6)

    first = sync_members(con, client, AUDIENCE, people, MAPPING, max_connections=1)  # the batches in order

    refused = {people[i].fields["email"] for i in fake} | forgotten
    batches = mailchimp.requests_to("POST", r"/lists/[^/]+$")  # the first, then the second and its retries
    assert len(batches) == 1 + 7 and all(b.json() == batches[1].json() for b in batches[2:])
    in_first, in_second = ({m["email_address"] for m in b.json()["members"]} for b in batches[:2])
    assert len(in_first) == 500 and in_first | in_second == {p.fields["email"] for p in people}
    assert refused - in_second and refused & in_second  # member errors in the first, the rest in the failed one
    recorded = rejections(con, "mailchimp")
    permanent = {k for k, (_, perm) in recorded.items() if perm}
    transient = {k for k, (_, perm) in recorded.items() if not perm}
    assert permanent == {subscriber_hash(e) for e in refused - in_second}
    assert transient == {subscriber_hash(e) for e in in_second}
    for email in refused - in_second:
        reason = recorded[subscriber_hash(email)][0]
        assert "fake or invalid" in reason or "forgotten" in reason.lower() or "Forgotten" in reason, reason
    assert all("503" in recorded[k][0] for k in transient)
    assert first.sent == MEMBERS - len(refused - in_second) - len(in_second)

    second = sync_members(con, client, AUDIENCE, people, MAPPING)  # the failed batch goes again, and only it
    (last,) = mailchimp.requests_to("POST", r"/lists/[^/]+$")[-1:]
    sent_again = {m["email_address"] for m in last.json()["members"]}
    assert sent_again == in_second - {e for e in refused if e not in in_second}
    assert second.sent == len(in_second - refused)
    assert_members_exact(mailchimp, people, refused)
    recorded = rejections(con, "mailchimp")
    assert {k for k, (_, perm) in recorded.items() if perm} == {subscriber_hash(e) for e in refused}

    mailchimp.clear_requests()
    third = sync_members(con, client, AUDIENCE, people, MAPPING)
    assert (third.sent, third.still_rejected) == (0, len(refused))
    assert [r for r in mailchimp.requests if r.method != "GET"] == []


def events_table(con: duckdb.DuckDBPyConnection, people: list[Profile], now: dt.datetime) -> list[str]:
    """``marts.marketing_events`` with a failed payment per person; returns the Stripe event ids."""
    con.execute("create schema if not exists marts")
    con.execute(
        "create or replace table marts.marketing_events (event_id varchar, customer_id varchar, event_name varchar,"
        " occurred_at timestamptz, stripe_event_type varchar, stripe_object_id varchar, amount decimal(18, 2),"
        " currency varchar, failure_code varchar, dispute_reason varchar)"
    )
    rows = [
        (f"evt_{i:05d}", p.customer_id, "payment_failed", now - dt.timedelta(hours=1), "charge.failed", f"ch_{i:05d}",
         Decimal("12.50"), "usd", "card_declined", None)
        for i, p in enumerate(people)
    ]  # fmt: skip
    con.executemany("insert into marts.marketing_events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return [r[0] for r in rows]


def test_customerio_207_rejects_the_refused_ops_and_delivers_the_rest(customerio: CustomerIOStandIn) -> None:
    con = duckdb.connect()
    people = profiles(PEOPLE)
    refused = {"cus_00004", "cus_00777"}  # one in each batch
    for key in refused:
        customerio.refuse(key, "invalid", "attributes.lifetime_spend", "must be a number between 0 and 10^9")
    client = cio_client(customerio)

    first = sync_people(con, client, people, MAPPING)

    assert first.api_calls == 2 and first.sent == PEOPLE - 2
    recorded = rejections(con, "customerio")
    reason = "invalid: attributes.lifetime_spend: must be a number between 0 and 10^9"
    assert recorded == {k: (reason, True) for k in refused}
    assert_people_exact(customerio, people, refused)
    again = sync_people(con, cio_client(customerio), people, MAPPING)
    assert (again.sent, again.still_rejected, again.api_calls) == (0, 2, 0)

    now = dt.datetime.now(dt.UTC)
    ids = events_table(con, people[:40], now)
    events = forward_events(con, client, now=now)
    assert events.sent == 40 - 1  # cus_00004's event is refused with the person's error
    assert set(rejections(con, "customerio_events")) == {"evt_00004"}
    assert all(len(customerio.events(p.customer_id)) == (p.customer_id not in refused) for p in people[:40])
    assert forward_events(con, client, now=now).sent == 0
    assert ids


def test_429_with_and_without_retry_after_is_waited_out(
    mailchimp: MailchimpStandIn, customerio: CustomerIOStandIn
) -> None:
    con = duckdb.connect()
    people = profiles(MEMBERS)
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=429, times=1, headers={"Retry-After": "1"}))
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=429, times=2, skip=1))  # no Retry-After
    customerio.inject(Fault(r"^/api/v2/batch$", status=429, times=1, headers={"Retry-After": "1"}))
    customerio.inject(Fault(r"^/api/v2/batch$", status=429, times=2, skip=1))

    members = sync_members(con, mc_client(mailchimp), AUDIENCE, people, MAPPING)
    persons = sync_people(con, cio_client(customerio), profiles(PEOPLE), MAPPING)

    for server, result, path in ((mailchimp, members, r"/lists/[^/]+$"), (customerio, persons, r"/batch$")):
        assert result.rejections == [] and result.retried == 3
        told, *after = server.requests_to("POST", path)  # the first was answered 429 with Retry-After: 1
        # it came again a second later (Retry-After is honoured), not before
        again = [r.received_at - told.received_at for r in after if r.body == told.body]
        assert again and again[0] >= 0.95
    assert_members_exact(mailchimp, people, set())
    assert_people_exact(customerio, profiles(PEOPLE), set())
    assert sync_members(con, mc_client(mailchimp), AUDIENCE, people, MAPPING).sent == 0
    assert sync_people(con, cio_client(customerio), profiles(PEOPLE), MAPPING).sent == 0


def test_5xx_are_retried_and_every_record_arrives_once(
    mailchimp: MailchimpStandIn, customerio: CustomerIOStandIn
) -> None:
    con = duckdb.connect()
    people = profiles(MEMBERS)
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=502, raw=html, times=1))
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=503, times=1, skip=1))
    customerio.inject(Fault(r"^/api/v2/batch$", status=502, raw=html, times=1))
    customerio.inject(Fault(r"^/api/v2/batch$", status=504, times=1))
    customerio.inject(Fault(r"^/api/v2/batch$", status=500, times=1))

    members = sync_members(con, mc_client(mailchimp), AUDIENCE, people, MAPPING)
    persons = sync_people(con, cio_client(customerio), profiles(PEOPLE), MAPPING)

    assert members.rejections == [] and members.retried == 2
    assert persons.rejections == [] and persons.retried == 3
    assert_members_exact(mailchimp, people, set())
    assert_people_exact(customerio, profiles(PEOPLE), set())
    # The faulted requests were answered before the stand-in looked at them: each op was applied once.
    assert customerio.batch_ops_seen == PEOPLE


def test_time_outs_after_the_destination_applied_the_request_deliver_each_record_once(
    mailchimp: MailchimpStandIn, customerio: CustomerIOStandIn
) -> None:
    con = duckdb.connect()
    people = profiles(MEMBERS)
    # Applied at once, answered 3 s later: the client gave up after 1.5 s and sent it again.
    mailchimp.inject(SLOW(r"/lists/[^/]+$", method="POST", delay=3.0, apply=True, times=1))
    customerio.inject(SLOW(r"^/api/v2/batch$", delay=3.0, apply=True, times=1))

    members = sync_members(con, mc_client(mailchimp, timeout=1.5), AUDIENCE, people, MAPPING)
    persons = sync_people(con, cio_client(customerio, timeout=1.5), profiles(PEOPLE), MAPPING)

    # The repeated batch found its 500 members there (ERROR_CONTACT_EXISTS): each was written once more, with the
    # same payload and without a status, so consent-based statuses stand.
    assert members.rejections == [] and members.retried == 1
    assert_members_exact(mailchimp, people, set())
    assert all("status" not in r.json() for r in mailchimp.requests_to("PUT", r"/members/"))
    assert persons.rejections == [] and persons.retried == 1
    assert_people_exact(customerio, profiles(PEOPLE), set())

    # Events time out the same way: the repeat is dropped by its id, each event is held once.
    now = dt.datetime.now(dt.UTC)
    events_table(con, people[:30], now)
    customerio.inject(SLOW(r"^/api/v2/batch$", delay=3.0, apply=True, times=1))
    events = forward_events(con, cio_client(customerio, timeout=1.5), now=now)
    assert events.sent == 30 and events.retried == 1
    assert [len(customerio.events(p.customer_id)) for p in people[:30]] == [1] * 30
    duplicates = [d for d in customerio.dropped_ops if d["reason"] == "duplicate event id"]
    assert len(duplicates) == 30
    expected = {event_ulid(f"evt_{i:05d}", now - dt.timedelta(hours=1)) for i in range(30)}
    assert {e["id"] for p in people[:30] for e in customerio.events(p.customer_id)} == expected
    assert sync_members(con, mc_client(mailchimp), AUDIENCE, people, MAPPING).sent == 0
    assert forward_events(con, cio_client(customerio), now=now).sent == 0


def test_a_sync_that_dies_midway_has_recorded_the_batches_it_delivered(
    mailchimp: MailchimpStandIn, customerio: CustomerIOStandIn
) -> None:
    """A run that stops after some batches (here a key revoked mid-run: 401 stops it) keeps the record of what was
    delivered: the next run sends only the rest, nothing twice."""
    from audiences.customerio_client import CustomerIOError
    from audiences.mailchimp_client import MailchimpError

    con = duckdb.connect()
    people = profiles(MEMBERS)
    mailchimp.inject(Fault(r"/lists/[^/]+$", method="POST", status=401, times=1, skip=1))
    customerio.inject(Fault(r"^/api/v2/batch$", status=401, times=1, skip=1))
    with pytest.raises(MailchimpError):
        sync_members(con, mc_client(mailchimp), AUDIENCE, people, MAPPING, max_connections=1)
    with pytest.raises(CustomerIOError):
        sync_people(con, cio_client(customerio), profiles(PEOPLE), MAPPING, concurrency=1)

    def pushed(destination: str) -> set[str]:
        rows = con.execute("select record_key from sync.pushed_records where destination = ?", [destination])
        return {key for (key,) in rows.fetchall()}

    (first_batch,) = [r for r in mailchimp.requests_to("POST", r"/lists/[^/]+$")][:1]
    delivered = {subscriber_hash(m["email_address"]) for m in first_batch.json()["members"]}
    assert pushed("mailchimp") == delivered and len(delivered) == 500
    first_ops = customerio.requests_to("POST", r"/batch$")[0].json()["batch"]
    assert pushed("customerio") == {op["identifiers"]["id"] for op in first_ops} == set(customerio.persons())

    mailchimp.clear_requests()
    customerio.clear_requests()
    members = sync_members(con, mc_client(mailchimp), AUDIENCE, people, MAPPING)
    persons = sync_people(con, cio_client(customerio), profiles(PEOPLE), MAPPING)
    assert (members.sent, members.unchanged) == (MEMBERS - 500, 500)
    assert (persons.sent, persons.unchanged) == (PEOPLE - len(first_ops), len(first_ops))
    sent = [m["email_address"] for r in mailchimp.requests_to("POST", r"/lists/[^/]+$") for m in r.json()["members"]]
    assert not {subscriber_hash(e) for e in sent} & delivered
    assert customerio.batch_ops_seen == PEOPLE  # every op applied once over the two runs
    assert_members_exact(mailchimp, people, set())
    assert_people_exact(customerio, profiles(PEOPLE), set())
