"""Stripe extraction over real HTTP against the stand-in: backfill, events, tombstones, resume, limits, faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import stripe

from audiences import stripe_state
from audiences.rate_limit import RateLimiter
from audiences.stripe_extract import extract
from audiences.stripe_reader import Retry, StripeReader, make_client
from audiences.stripe_streams import EVENTS, STREAMS
from sandbox.http_server import Fault
from sandbox.stripe_account import StripeAccount, generate_account
from sandbox.stripe_api import RateLimits, StripeStandIn

KEY = "sk_test_extract_0123"
DAY = 86_400


class Rig:
    def __init__(self, account: StripeAccount, tmp_path: Path, rate_limits: RateLimits | None = None) -> None:
        account.start_clock()
        self.account = account
        self.server = StripeStandIn(account, api_key=KEY, rate_limits=rate_limits)
        self.url = self.server.start()
        self.con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))

    def reader(self, per_second: float = 1000.0, retry: Retry | None = None) -> StripeReader:
        return StripeReader(
            make_client(KEY, self.url, 2), RateLimiter(per_second, per_second), retry or Retry(base_delay=0.05)
        )

    def run(self, reader: StripeReader | None = None, **kwargs: object):
        return extract(self.con, reader or self.reader(), STREAMS, **kwargs)  # type: ignore[arg-type]

    def ids(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(f"select id from stripe.{table} order by id").fetchall()]

    def close(self) -> None:
        self.con.close()
        self.server.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(generate_account(seed=5, customers=400), tmp_path)
    yield r
    r.close()


def live_ids(view) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(view)


def test_backfill_lands_every_object_once_then_an_unchanged_account_costs_a_handful_of_requests(rig: Rig) -> None:
    first = rig.run(workers=6)
    assert {s.mode for s in first.streams.values()} == {"backfill"}
    assert rig.ids("customers") == live_ids(rig.account.customers)
    assert rig.ids("charges") == live_ids(rig.account.charges)
    assert rig.ids("subscriptions") == live_ids(rig.account.subscriptions)
    assert rig.ids("refunds") == live_ids(rig.account.refunds)
    assert rig.ids("disputes") == live_ids(rig.account.disputes)
    assert rig.ids("prices") == live_ids(rig.account.prices)
    # every event of the last 30 days of the types we use
    assert set(rig.ids("events")) >= {
        e["id"] for e in rig.account.recent_events(("customer.created", "charge.succeeded"))
    }
    bt = rig.con.execute(
        "select count(*) from stripe.charges where status = 'succeeded' and captured and bt_amount is null"
    ).fetchone()
    assert bt == (0,)

    snapshot = {t.name: rig.con.execute(f"select * from {t.table} order by id").fetchall() for t in STREAMS}
    reader = rig.reader()
    second = rig.run(reader)
    assert {s.mode for s in second.streams.values()} == {"incremental"}
    assert reader.requests <= 8  # one look at the newest event, then one list per event filter
    assert {t.name: rig.con.execute(f"select * from {t.table} order by id").fetchall() for t in STREAMS} == snapshot


def test_events_bring_updates_new_objects_refunds_and_deletions(rig: Rig) -> None:
    rig.run()
    account = rig.account
    customer = sorted(account.customers)[0]
    account.update_customer(customer, email="changed@example.org")
    charge = next(c for c in account.charges.values() if c["status"] == "succeeded" and c["amount_refunded"] == 0)
    account.refund_charge(charge["id"], amount=charge["amount"] // 4)
    gone = sorted(account.customers)[1]
    account.delete_customer(gone)
    newcomer = account.add_customer(email="new.buyer@gmail.com", name="New Buyer")["id"]
    jpy = account.add_charge(newcomer, 12000, "jpy", exchange_rate=0.0067)
    subscription = next(s for s in account.subscriptions.values() if s["status"] == "active")
    account.cancel_subscription(subscription["id"])

    reader = rig.reader()
    report = rig.run(reader)

    q = rig.con.execute
    assert q("select email from stripe.customers where id = ?", [customer]).fetchone() == ("changed@example.org",)
    refunded = q("select amount_refunded, bt_amount from stripe.charges where id = ?", [charge["id"]]).fetchone()
    assert refunded[0] == charge["amount"] // 4 and refunded[1] is not None  # the settlement amount survives
    assert q("select is_deleted, deleted_at is not null from stripe.customers where id = ?", [gone]).fetchone() == (
        True,
        True,
    )
    assert q("select count(*) from stripe.refunds where charge_id = ?", [charge["id"]]).fetchone() == (1,)
    assert q(
        "select bt_currency, bt_exchange_rate, bt_amount from stripe.charges where id = ?", [jpy["id"]]
    ).fetchone() == (
        "usd",
        0.0067,
        round(12000 * 0.0067 * 100),
    )
    assert q("select email from stripe.customers where id = ?", [newcomer]).fetchone() == ("new.buyer@gmail.com",)
    # a canceled subscription is an update (status canceled), not a tombstone
    assert q("select status, is_deleted from stripe.subscriptions where id = ?", [subscription["id"]]).fetchone() == (
        "canceled",
        False,
    )
    assert report.streams["customers"].changed == 3
    assert reader.requests <= 10
    # the overlap re-reads some events: still one row per event
    assert q("select count(*) = count(distinct id) from stripe.events").fetchone() == (True,)


def test_a_stale_cursor_or_full_refresh_backfills_again(rig: Rig) -> None:
    rig.run()
    assert {s.mode for s in rig.run(full_refresh=True).streams.values()} == {"backfill"}
    rig.account.advance(30 * DAY)
    report = rig.run()
    assert report.streams["customers"].mode == "backfill"  # events older than 30 days are gone: re-list
    assert rig.ids("customers") == live_ids(rig.account.customers)


def test_a_backfill_after_missed_events_tombstones_what_it_no_longer_lists(rig: Rig) -> None:
    rig.run()
    account = rig.account
    gone = sorted(account.customers)[3]
    product = sorted(account.products)[0]
    account.delete_customer(gone)
    account.delete_product(product)
    deleted_at = account.now
    # No run for 31 days: the `customer.deleted` and `product.deleted` events are out of Stripe's 30-day window.
    account.advance(31 * DAY)
    assert not [e for e in account.recent_events(("customer.deleted", "product.deleted"))]

    report = rig.run()

    assert report.streams["customers"].mode == "backfill"
    assert report.streams["customers"].tombstoned == 1 and report.streams["products"].tombstoned == 1
    q = rig.con.execute
    for table, object_id in (("customers", gone), ("products", product)):
        sql = f"select is_deleted, epoch(deleted_at)::bigint from stripe.{table} where id = ?"
        row = q(sql, [object_id]).fetchone()
        assert row[0] is True
        assert deleted_at <= row[1] <= account.now  # at the latest when the backfill started
    assert q("select count(*) from stripe.customers where is_deleted").fetchone() == (1,)
    assert rig.ids("customers") == sorted([*account.customers, gone])  # the row is kept
    # nothing is left over for the next backfill
    assert q("select count(*) from sync.stripe_backfill_listed").fetchone() == (0,)
    assert rig.run(full_refresh=True).streams["customers"].tombstoned == 0


def test_an_interrupted_backfill_resumes_from_the_windows_it_finished(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("audiences.stripe_backfill.CHUNK_ROWS", 500)  # commit often on this small account
    # The 25th charges request fails for good (a 400 is not retried): the run dies halfway.
    rig.server.inject(
        Fault(
            r"^/v1/charges$", status=400, skip=24, body={"error": {"type": "invalid_request_error", "message": "boom"}}
        )
    )
    with pytest.raises(stripe.InvalidRequestError):
        rig.run(workers=4)
    state = stripe_state.load(rig.con, "charges")
    assert state.events_cursor is None and state.backfill_cursor is not None  # the cursor did not move
    done = rig.con.execute("select count(*) from sync.stripe_backfill_windows where stream = 'charges'").fetchone()[0]
    assert done > 0
    landed = rig.con.execute("select count(*) from stripe.charges").fetchone()[0]
    assert 0 < landed < len(rig.account.charges)

    rig.server.reset_counters()
    rig.run(workers=4)

    resumed_requests = rig.server.count_requests("/v1/charges")
    full_pages = len(rig.account.charges) / 100
    assert resumed_requests < full_pages  # it did not start over
    assert rig.ids("charges") == live_ids(rig.account.charges)
    assert stripe_state.load(rig.con, "charges").events_cursor is not None


def test_faults_are_retried_and_the_data_ends_exact(rig: Rig) -> None:
    rig.server.inject(Fault(r"^/v1/customers$", status=500, times=2))
    rig.server.inject(Fault(r"^/v1/charges$", drop=True, times=2, skip=3))  # connection reset mid-backfill
    rig.server.inject(Fault(r"^/v1/subscriptions$", status=200, raw=b'{"object": "list", "data": [{"id": ', times=1))
    rig.server.inject(
        Fault(
            r"^/v1/events$",
            status=429,
            times=3,
            skip=1,
            headers={"Stripe-Rate-Limited-Reason": "global-rate"},
            body={"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}},
        )
    )
    reader = rig.reader()
    rig.run(reader, workers=4)
    assert reader.retry.retried >= 3
    for table, view in (
        ("customers", rig.account.customers),
        ("charges", rig.account.charges),
        ("subscriptions", rig.account.subscriptions),
    ):
        assert rig.ids(table) == live_ids(view)


def test_the_client_limiter_keeps_under_the_server_limit(tmp_path: Path) -> None:
    rig = Rig(
        generate_account(seed=9, customers=150), tmp_path, RateLimits(global_per_second=20, per_endpoint_per_second=10)
    )
    try:
        reader = rig.reader(per_second=10)
        rig.run(reader, workers=6)
        # Spaced sends can still arrive bunched by network jitter: 429s are rare, not impossible (and retried).
        print(f"429s: {rig.server.rate_limited_count} of {reader.requests} requests")
        assert rig.server.rate_limited_count <= max(2, reader.requests // 50)
        assert rig.ids("charges") == live_ids(rig.account.charges)
    finally:
        rig.close()


def test_429s_from_an_overeager_client_are_retried(tmp_path: Path) -> None:
    rig = Rig(
        generate_account(seed=9, customers=150), tmp_path, RateLimits(global_per_second=15, per_endpoint_per_second=15)
    )
    try:
        reader = rig.reader(per_second=1000)
        rig.run(reader, workers=8)
        assert rig.server.rate_limited_count > 0
        assert reader.retry.retried > 0
        assert rig.ids("charges") == live_ids(rig.account.charges)
    finally:
        rig.close()


def test_dense_windows_are_split_for_parallel_fetching(rig: Rig) -> None:
    from audiences.stripe_backfill import Backfill, Window
    from audiences.stripe_extract import ensure_table
    from audiences.stripe_streams import CHARGES

    stripe_state.ensure_schema(rig.con)
    ensure_table(rig.con, CHARGES)
    reader = rig.reader()
    backfill = Backfill(reader, rig.con, workers=4)
    fetched: list[int] = []  # requests sent when the hook ran

    window = Window(CHARGES, 1, stripe_state.CREATED_MIN, stripe_state.CREATED_MAX)
    stats = backfill.run([window], None, lambda: fetched.append(reader.limiter.requests))
    assert stats.splits > 0
    assert rig.ids("charges") == live_ids(rig.account.charges)
    assert EVENTS.name not in stats.objects
    # The hook ran once, after the last request: the network is free for whatever comes next.
    assert fetched == [reader.limiter.requests]


def test_a_run_that_dies_while_applying_events_loses_nothing(rig: Rig) -> None:
    rig.run()
    account = rig.account
    customer = sorted(account.customers)[2]
    account.update_customer(customer, name="Renamed Before Crash")
    buyer = account.add_customer(email="late.buyer@gmail.com")["id"]
    charge = account.add_charge(buyer, 4200, "eur", exchange_rate=1.1)["id"]
    before = stripe_state.load(rig.con, "charges").events_cursor
    # The balance-transaction lookup for the new charge fails for good: the run dies inside the charges stream.
    rig.server.inject(
        Fault(r"^/v1/balance_transactions$", status=400, body={"error": {"type": "invalid_request_error"}})
    )
    with pytest.raises(stripe.InvalidRequestError):
        rig.run()
    assert stripe_state.load(rig.con, "charges").events_cursor == before  # not moved past unapplied events
    assert rig.con.execute("select count(*) from stripe.charges where id = ?", [charge]).fetchone() == (0,)

    rig.run()

    q = rig.con.execute
    assert q("select name from stripe.customers where id = ?", [customer]).fetchone() == ("Renamed Before Crash",)
    assert q("select bt_amount, bt_exchange_rate from stripe.charges where id = ?", [charge]).fetchone() == (4620, 1.1)
    assert q("select count(*) = count(distinct id) from stripe.events").fetchone() == (True,)


def test_a_failed_events_listing_fails_the_run_and_moves_no_cursor(rig: Rig) -> None:
    rig.run()
    cursors = {s.name: stripe_state.load(rig.con, s.name).events_cursor for s in STREAMS}
    customer = sorted(rig.account.customers)[4]
    rig.account.update_customer(customer, name="Seen Next Time")
    rig.account.advance(600)
    rig.server.inject(Fault(r"^/v1/events$", status=400, skip=2, body={"error": {"type": "invalid_request_error"}}))
    with pytest.raises(stripe.InvalidRequestError):
        rig.run()
    assert {s.name: stripe_state.load(rig.con, s.name).events_cursor for s in STREAMS} == cursors

    rig.run()
    q = rig.con.execute
    assert q("select name from stripe.customers where id = ?", [customer]).fetchone() == ("Seen Next Time",)
    assert q("select count(*) = count(distinct id) from stripe.events").fetchone() == (True,)


def test_events_failing_during_a_backfill_keep_the_backfill_and_its_handover(rig: Rig) -> None:
    # The first run reads the last 30 days of events alongside the backfill; that listing dies for good.
    rig.server.inject(Fault(r"^/v1/events$", status=400, skip=3, body={"error": {"type": "invalid_request_error"}}))
    with pytest.raises(stripe.InvalidRequestError):
        rig.run(workers=4)
    # The backfill finished and handed its streams over to events: the next run does not list them again.
    for stream in ("customers", "charges", "subscriptions"):
        state = stripe_state.load(rig.con, stream)
        assert state.backfill_cursor is None and state.events_cursor is not None
    assert rig.ids("charges") == live_ids(rig.account.charges)
    # The events stream itself did not move: its 30 days are read again.
    assert stripe_state.load(rig.con, "events").events_cursor is None

    rig.server.reset_counters()
    rig.run(workers=4)
    assert rig.server.count_requests("/v1/charges") == 0
    q = rig.con.execute
    assert q("select count(*) = count(distinct id) from stripe.events").fetchone() == (True,)
    listed = q("select count(*) from stripe.events").fetchone()[0]
    assert listed > 0
    rig.run(workers=4, full_refresh=True)  # lists the 30 days of events anew: nothing was missing
    assert q("select count(*) from stripe.events").fetchone()[0] == listed


def test_running_out_of_duckdb_memory_says_what_to_raise(rig: Rig) -> None:
    from audiences.stripe_extract import MemoryLimitError

    with pytest.raises(MemoryLimitError, match=r"memory_limit of 1MB.*run config `memory_limit`"):
        rig.run(memory_limit="1MB")
    assert stripe_state.load(rig.con, "charges").events_cursor is None  # nothing half-done was kept
    rig.run()  # with the default limit, the next run lands everything
    assert rig.ids("charges") == live_ids(rig.account.charges)
