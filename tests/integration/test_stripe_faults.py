"""Stripe faults over real HTTP, one test each: a 429 storm, 5xx, time-outs, a reset mid-page, a truncated JSON body,
objects deleted while the backfill pages through them. Each run completes (or fails cleanly), and then the warehouse
holds exactly what Stripe holds, after the faulty run and after the next one: every object once, deletions as
tombstones, nothing lost or duplicated.

(test_stripe_extract.py has one run mixing a 500, resets, a truncated body and 429s; these take them one by one
and check every table exactly, in the backfill and in an incremental run.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from audiences.stripe_reader import Retry, StripeReader
from sandbox.http_server import Fault, Request, Response
from sandbox.stripe_account import generate_account
from tests.integration.test_stripe_extract import KEY, Rig

RATE_LIMITED = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}}
API_ERROR = {"error": {"type": "api_error", "message": "An unknown error occurred"}}
# (table, account attribute, columns compared with the object's fields)
TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("customers", "customers", ("email", "name")),
    ("charges", "charges", ("amount", "amount_refunded", "status")),
    ("subscriptions", "subscriptions", ("status",)),
    ("refunds", "refunds", ("amount",)),
    ("disputes", "disputes", ("status",)),
    ("products", "products", ("name",)),
    ("prices", "prices", ("unit_amount",)),
)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(generate_account(seed=21, customers=160), tmp_path)
    yield r
    r.close()


def patient(rig: Rig, *, timeout: float = 80.0) -> StripeReader:
    """A reader that outlasts a storm: more attempts, short waits; ``timeout``: the SDK's per-request time-out."""
    from audiences.rate_limit import RateLimiter

    client = stripe.StripeClient(
        KEY,
        base_addresses={"api": rig.url},
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=timeout),
    )
    return StripeReader(client, RateLimiter(1000, 1000), Retry(attempts=45, base_delay=0.01, max_delay=0.1))


def assert_exact(rig: Rig, deleted: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every table holds each of the account's objects once, as the account has it now; ``deleted`` customers
    (deleted in Stripe) are tombstones."""
    q = rig.con.execute
    for table, attribute, columns in TABLES:
        objects = getattr(rig.account, attribute)
        expected = {i: tuple(o.get(c) for c in columns) for i, o in objects.items()}
        rows = q(f"select id, {', '.join(columns)} from stripe.{table}").fetchall()
        got = {r[0]: tuple(r[1:]) for r in rows}
        assert len(rows) == len(got), f"stripe.{table}: an id twice"
        if table == "customers":
            tombstones = {r[0] for r in q("select id from stripe.customers where is_deleted").fetchall()}
            assert tombstones == set(deleted)
            got = {i: v for i, v in got.items() if i not in tombstones}
        assert got == expected, f"stripe.{table} differs from the account"
    assert q("select count(*) = count(distinct id) from stripe.events").fetchone() == (True,)


def spent(rig: Rig) -> None:
    """Every injected fault was served (the run met each of them)."""
    assert all(f.times == 0 for f in rig.server._faults), [f for f in rig.server._faults if f.times]


def changes(rig: Rig) -> None:
    """Work for an incremental run: an update, a purchase, a refund, a cancellation."""
    account = rig.account
    customers = sorted(account.customers)
    account.update_customer(customers[1], email="moved@example.org")
    account.add_charge(customers[2], 4_200, "eur", exchange_rate=1.1)
    charge = next(c for c in account.charges.values() if c["status"] == "succeeded" and c["amount_refunded"] == 0)
    account.refund_charge(charge["id"], amount=charge["amount"] // 3)
    active = next(s for s in account.subscriptions.values() if s["status"] == "active")
    account.cancel_subscription(active["id"])
    account.advance(120)


def test_a_429_storm_on_every_endpoint_is_waited_out(rig: Rig) -> None:
    headers = {"Stripe-Rate-Limited-Reason": "global-rate"}
    rig.server.inject(Fault(r"^/v1/", status=429, times=40, headers=headers, body=RATE_LIMITED))
    reader = patient(rig)
    rig.run(reader, workers=6)
    assert reader.retry.retried == 40  # the SDK retries no plain 429: each one cost one wait and one repeat
    spent(rig)
    assert_exact(rig)

    changes(rig)
    rig.server.inject(Fault(r"^/v1/(events|balance_transactions)$", status=429, times=12, headers=headers))
    reader = patient(rig)
    rig.run(reader)
    assert reader.retry.retried == 12
    spent(rig)
    assert_exact(rig)


def test_5xx_answers_are_retried(rig: Rig) -> None:
    retry_header = {"Stripe-Should-Retry": "true"}
    rig.server.inject(Fault(r"^/v1/customers$", status=500, times=3, body=API_ERROR))
    rig.server.inject(Fault(r"^/v1/charges$", status=502, times=2, skip=2, raw=b"<html>Bad Gateway</html>"))
    rig.server.inject(Fault(r"^/v1/events$", status=503, times=2, skip=1, headers=retry_header, body=API_ERROR))
    rig.run(patient(rig), workers=4)
    assert rig.server.count_requests("/v1/customers") > 3
    spent(rig)
    assert_exact(rig)

    changes(rig)
    rig.server.inject(Fault(r"^/v1/events$", status=500, times=3, skip=2, body=API_ERROR))
    rig.run(patient(rig))
    spent(rig)
    assert_exact(rig)


def test_time_outs_are_retried(rig: Rig) -> None:
    # Stripe answers after 1.5 s; the client gives each request 0.5 s.
    rig.server.inject(Fault(r"^/v1/charges$", delay=1.5, times=2, skip=1))
    rig.server.inject(Fault(r"^/v1/events$", delay=1.5, times=1, skip=2))
    reader = patient(rig, timeout=0.5)
    rig.run(reader, workers=4)
    spent(rig)
    assert_exact(rig)

    changes(rig)
    rig.server.inject(Fault(r"^/v1/events$", delay=1.5, times=2, skip=1))
    rig.run(patient(rig, timeout=0.5))
    spent(rig)
    assert_exact(rig)


def test_a_connection_reset_mid_page_is_retried(rig: Rig) -> None:
    # The answer starts (status, headers announcing the whole page, 300 bytes of it), then the connection dies.
    rig.server.inject(Fault(r"^/v1/charges$", cut=300, times=2, skip=1))
    rig.server.inject(Fault(r"^/v1/customers$", cut=1, times=1, skip=1))
    rig.run(patient(rig), workers=4)
    spent(rig)
    assert_exact(rig)

    changes(rig)
    rig.server.inject(Fault(r"^/v1/events$", cut=500, times=2, skip=1))
    rig.server.inject(Fault(r"^/v1/balance_transactions$", cut=50, times=1))
    rig.run(patient(rig))
    spent(rig)
    assert_exact(rig)


def test_a_truncated_json_body_is_retried(rig: Rig) -> None:
    truncated = b'{"object": "list", "data": [{"id": "ch_'  # a 200 whose body stops short (its length is right)
    rig.server.inject(Fault(r"^/v1/charges$", status=200, raw=truncated, times=2, skip=1))
    rig.server.inject(Fault(r"^/v1/customers$", status=200, raw=b'{"object": "list", "da', times=1))
    reader = patient(rig)
    rig.run(reader, workers=4)
    assert reader.retry.retried >= 3
    spent(rig)
    assert_exact(rig)

    changes(rig)
    rig.server.inject(Fault(r"^/v1/events$", status=200, raw=b'{"object": "list", "data": [', times=2, skip=1))
    rig.run(patient(rig))
    spent(rig)
    assert_exact(rig)


def after_page(rig: Rig, path: str, page: int, action: Callable[[dict[str, Any]], None]) -> None:
    """Run ``action`` on the ``page``-th answered page of ``path``, before the client gets it (over HTTP as usual)."""
    dispatch = rig.server.dispatch
    seen = [0]

    def tapped(request: Request) -> Response | None:
        response = dispatch(request)
        if request.path == path and response is not None and response.status == 200:
            seen[0] += 1
            if seen[0] == page:
                action(response.body)
        return response

    rig.server.dispatch = tapped  # type: ignore[method-assign]


def test_customers_deleted_while_the_backfill_pages_through_them(rig: Rig) -> None:
    deleted: set[str] = set()
    cursors: list[str] = []

    def delete_some(page: dict[str, Any]) -> None:
        account = rig.account
        listed = [c["id"] for c in page["data"]]
        cursor = listed[-1]  # the next page starts after it
        ahead = min(account.customers, key=lambda i: account.customers[i]["created"])  # on the last page
        behind = listed[0]  # on this page, already listed
        for customer in (cursor, ahead, behind):
            account.delete_customer(customer)
            deleted.add(customer)
        cursors.append(cursor)

    after_page(rig, "/v1/customers", 1, delete_some)
    rig.run(patient(rig), workers=1)  # one worker: the pages follow each other, newest first
    after = [dict(r.query).get("starting_after") for r in rig.server.requests if r.path == "/v1/customers"]
    assert cursors and cursors[0] in after
    # The backfill went on past its deleted cursor, did not list the one deleted ahead of it, and the run's events
    # (customer.deleted) made tombstones of all three.
    assert_exact(rig, deleted)
    rig.run(patient(rig))
    assert_exact(rig, deleted)


def test_a_deleted_cursor_refused_fails_the_run_cleanly_and_the_next_run_resumes(rig: Rig) -> None:
    # Were Stripe to refuse a deleted object as `starting_after` (the stand-in accepts it, as deleted customers
    # can still be retrieved), the backfill stops: the run fails, the next one lists what is left.
    missing = {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "starting_after",
            "message": "No such customer: 'cus_gone'",
        }
    }
    rig.server.inject(Fault(r"^/v1/customers$", status=404, times=1, skip=1, body=missing))
    with pytest.raises(stripe.InvalidRequestError):
        rig.run(patient(rig), workers=1)
    rig.run(patient(rig))
    spent(rig)
    assert_exact(rig)
