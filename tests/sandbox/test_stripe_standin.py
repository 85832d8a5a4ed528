"""The Stripe stand-in over real HTTP, through the official SDK (and ``requests`` for raw error cases)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import stripe

from sandbox.http_server import Fault
from sandbox.stripe_account import (
    DAY,
    ZERO_DECIMAL,
    StripeAccount,
    convert_amount,
    fixtures,
    generate_account,
)
from sandbox.stripe_api import RateLimits, StripeStandIn, mask_key

NOW = 1_760_000_000  # a fixed clock: every test is reproducible
KEY = "sk_test_standin_4242424242abcdef"
CONSENTING = {"true", "TRUE", "yes", "Yes", "1"}


@contextmanager
def serve(account: StripeAccount, **kwargs: Any) -> Iterator[StripeStandIn]:
    server = StripeStandIn(account, api_key=KEY, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sdk(server: StripeStandIn, key: str = KEY) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": server.url}, max_network_retries=0)


def get(server: StripeStandIn, path: str, params: Any = None, key: str | None = KEY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(server.url + path, params=params, headers=headers, timeout=10)


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"type", "code", "message", "param"} <= set(body["error"])
    return body["error"]


@pytest.fixture(scope="module")
def account() -> StripeAccount:
    return generate_account(seed=7, customers=600, now=NOW)


@pytest.fixture(scope="module")
def server(account: StripeAccount) -> Iterator[StripeStandIn]:
    with serve(account) as srv:
        yield srv


@pytest.fixture
def client(server: StripeStandIn) -> stripe.StripeClient:
    return sdk(server)


def small_account() -> StripeAccount:
    account = StripeAccount(now=NOW, seed=1)
    return account


# -- auth and errors ---------------------------------------------------------------------------------
def test_wrong_key_is_401_with_the_key_masked(server: StripeStandIn) -> None:
    with pytest.raises(stripe.AuthenticationError) as caught:
        sdk(server, "sk_test_not_the_right_key_9876").v1.customers.list()
    assert caught.value.http_status == 401
    assert "Invalid API Key provided: sk_test_" in str(caught.value.user_message)
    assert "not_the_right" not in str(caught.value.user_message)
    assert str(caught.value.user_message).endswith("9876")

    missing = get(server, "/v1/customers", key=None)
    assert missing.status_code == 401
    assert error_of(missing)["type"] == "invalid_request_error"
    assert missing.headers["Request-Id"].startswith("req_")
    not_secret = get(server, "/v1/customers", key="pk_test_publishable_key_1234")
    assert not_secret.status_code == 401
    assert mask_key("sk_live_abcdefgh1234") == "sk_live_********1234"


def test_unknown_route_and_unknown_id_are_404_in_stripe_shape(server: StripeStandIn) -> None:
    route = get(server, "/v1/customerz")
    assert route.status_code == 404
    assert error_of(route)["message"].startswith("Unrecognized request URL (GET: /v1/customerz)")
    assert route.headers["Stripe-Should-Retry"] == "false"

    missing = get(server, "/v1/customers/cus_doesnotexist00")
    assert missing.status_code == 404
    err = error_of(missing)
    assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", "resource_missing", "id")
    assert missing.headers["Request-Id"].startswith("req_")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(server).v1.charges.retrieve("ch_doesnotexist")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"


def test_unknown_query_parameter_is_400_parameter_unknown(server: StripeStandIn, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.list(params={"limit": 5, "colour": "blue"})  # type: ignore[typeddict-unknown-key]
    assert caught.value.http_status == 400
    assert (caught.value.code, caught.value.param) == ("parameter_unknown", "colour")
    bad_created = get(server, "/v1/charges", {"created[after]": "1"})
    assert bad_created.status_code == 400 and error_of(bad_created)["param"] == "created[after]"
    assert bad_created.headers["Stripe-Should-Retry"] == "false"
    assert get(server, "/v1/customers/cus_x", {"limit": "3"}).status_code == 400  # retrieve takes expand only


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_limit_out_of_bounds_is_400_on_limit(server: StripeStandIn, limit: str) -> None:
    response = get(server, "/v1/customers", {"limit": limit})
    assert response.status_code == 400
    assert error_of(response)["param"] == "limit"


def test_limit_default_is_10_and_100_is_allowed(client: stripe.StripeClient) -> None:
    assert len(client.v1.customers.list().data) == 10
    page = client.v1.charges.list(params={"limit": 100})
    assert len(page.data) == 100 and page.has_more


# -- lists and pagination ----------------------------------------------------------------------------
def test_lists_are_newest_first(client: stripe.StripeClient) -> None:
    created = [c.created for c in client.v1.charges.list(params={"limit": 100}).data]
    assert created == sorted(created, reverse=True)
    body = client.v1.customers.list(params={"limit": 3})
    assert body.url == "/v1/customers" and body.object == "list"


def test_paging_with_starting_after_returns_every_object_exactly_once(
    account: StripeAccount, server: StripeStandIn, client: stripe.StripeClient
) -> None:
    ids = [c.id for c in client.v1.customers.list(params={"limit": 37}).auto_paging_iter()]
    assert len(ids) == len(set(ids)) == len(account.customers)
    assert set(ids) == set(account.customers)
    # charges through raw HTTP: the SDK spends ~1 ms building each StripeObject, the stand-in far less
    charges: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = get(server, "/v1/charges", params).json()
        charges += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            break
        params["starting_after"] = page["data"][-1]["id"]
    assert len(charges) == len(set(charges)) == len(account.charges)


def test_ties_on_created_page_deterministically() -> None:
    account = small_account()
    made = [account.add_customer(email=f"c{i}@example.com", created=NOW - 100)["id"] for i in range(23)]
    with serve(account) as srv:
        client = sdk(srv)
        pages = []
        params: dict[str, Any] = {"limit": 5}
        while True:
            page = client.v1.customers.list(params=params)
            pages.append([c.id for c in page.data])
            if not page.has_more:
                break
            params = {"limit": 5, "starting_after": page.data[-1].id}
        flat = [i for p in pages for i in p]
        assert flat == list(reversed(made))  # same second: the later insert first
        assert [len(p) for p in pages] == [5, 5, 5, 5, 3]

        # ending_before walks back: the page just before the cursor, still newest first
        before = client.v1.customers.list(params={"limit": 5, "ending_before": pages[2][0]})
        assert [c.id for c in before.data] == pages[1] and before.has_more
        first = client.v1.customers.list(params={"limit": 5, "ending_before": pages[1][0]})
        assert [c.id for c in first.data] == pages[0] and not first.has_more
        back = [
            c.id for c in client.v1.customers.list(params={"limit": 4, "ending_before": flat[-1]}).auto_paging_iter()
        ]
        assert sorted(back) == sorted(flat[:-1])


def test_cursor_errors(server: StripeStandIn, client: stripe.StripeClient) -> None:
    one = client.v1.customers.list(params={"limit": 1}).data[0].id
    both = get(server, "/v1/customers", {"starting_after": one, "ending_before": one})
    assert both.status_code == 400
    assert error_of(both)["code"] == "parameters_exclusive"
    unknown = get(server, "/v1/customers", {"starting_after": "cus_nope"})
    assert unknown.status_code == 404
    assert (error_of(unknown)["code"], error_of(unknown)["param"]) == ("resource_missing", "starting_after")


def test_created_filters(account: StripeAccount, client: stripe.StripeClient) -> None:
    lo, hi = NOW - 60 * DAY, NOW - 30 * DAY
    got = [
        c.created
        for c in client.v1.charges.list(params={"limit": 100, "created": {"gte": lo, "lt": hi}}).auto_paging_iter()
    ]
    expected = [c for c in (account.charges[i]["created"] for i in account.charges) if lo <= c < hi]
    assert sorted(got) == sorted(expected) and got
    assert all(lo <= c < hi for c in got)
    some = got[len(got) // 2]
    exact = client.v1.charges.list(params={"created": some, "limit": 100}).data
    assert exact and all(c.created == some for c in exact)
    gt = client.v1.charges.list(params={"created": {"gt": some, "lte": some + DAY}, "limit": 100}).data
    assert all(some < c.created <= some + DAY for c in gt)


def test_filters_by_customer_charge_product_and_active(account: StripeAccount, client: stripe.StripeClient) -> None:
    per_customer = collections.Counter(account.charges[i]["customer"] for i in account.charges)
    customer, count = next((c, n) for c, n in per_customer.most_common() if c and n > 3)
    listed = list(client.v1.charges.list(params={"customer": customer, "limit": 2}).auto_paging_iter())
    assert len(listed) == count and {c.customer for c in listed} == {customer}

    refund = next(iter(account.refunds.values()))
    refunds = client.v1.refunds.list(params={"charge": refund["charge"]}).data
    assert refund["id"] in {r.id for r in refunds}

    products = client.v1.products.list(params={"limit": 100}).data
    archived = client.v1.products.list(params={"active": False}).data
    assert archived and all(not p.active for p in archived)
    assert any(not p.active for p in products) and any(p.active for p in products)
    product = products[0].id
    prices = client.v1.prices.list(params={"product": product, "limit": 100}).data
    assert prices and {p.product for p in prices} == {product}
    assert {p.type for p in client.v1.prices.list(params={"limit": 100}).data} == {"one_time", "recurring"}


def test_subscriptions_omit_canceled_unless_status_all(account: StripeAccount, client: stripe.StripeClient) -> None:
    every = list(client.v1.subscriptions.list(params={"status": "all", "limit": 100}).auto_paging_iter())
    default = list(client.v1.subscriptions.list(params={"limit": 100}).auto_paging_iter())
    assert len(every) == len(account.subscriptions)
    statuses = collections.Counter(s.status for s in every)
    assert set(statuses) == {
        "active",
        "trialing",
        "past_due",
        "canceled",
        "unpaid",
        "incomplete",
        "incomplete_expired",
        "paused",
    }
    assert len(default) == len(every) - statuses["canceled"]
    assert "canceled" not in {s.status for s in default}
    canceled = list(client.v1.subscriptions.list(params={"status": "canceled", "limit": 100}).auto_paging_iter())
    assert len(canceled) == statuses["canceled"]
    assert all(s.canceled_at and s.ended_at for s in canceled)
    sub = every[0].to_dict()
    item = sub["items"]["data"][0]
    assert item["object"] == "subscription_item" and item["price"]["object"] == "price"
    assert item["price"]["recurring"]["interval"] in ("month", "year")
    assert item["current_period_start"] < item["current_period_end"]


# -- expansion and money ------------------------------------------------------------------------------
def test_expand_balance_transaction_in_settlement_currency() -> None:
    account = small_account()
    cus = account.add_customer(email="yen@example.com", created=NOW - 10 * DAY)["id"]
    usd = account.add_charge(cus, 2500, "usd", created=NOW - 9 * DAY)
    jpy = account.add_charge(cus, 5000, "jpy", created=NOW - 8 * DAY)
    kwd = account.add_charge(cus, 12_345, "kwd", exchange_rate=3.25, created=NOW - 7 * DAY)
    failed = account.add_charge(cus, 900, "usd", status="failed", failure_code="card_declined", created=NOW - 6 * DAY)
    with serve(account) as srv:
        page = sdk(srv).v1.charges.list(params={"expand": ["data.balance_transaction"], "limit": 10})
        by_id = {c.id: c.to_dict() for c in page.data}
        bt_usd = by_id[usd["id"]]["balance_transaction"]
        assert bt_usd["object"] == "balance_transaction"
        assert (bt_usd["amount"], bt_usd["currency"], bt_usd["exchange_rate"]) == (2500, "usd", None)
        assert bt_usd["net"] == bt_usd["amount"] - bt_usd["fee"] and bt_usd["fee"] > 0
        bt_jpy = by_id[jpy["id"]]["balance_transaction"]
        assert (bt_jpy["amount"], bt_jpy["currency"], bt_jpy["exchange_rate"]) == (3350, "usd", 0.0067)
        bt_kwd = by_id[kwd["id"]]["balance_transaction"]
        assert bt_kwd["amount"] == round(12.345 * 3.25 * 100) == convert_amount(12_345, "kwd", 3.25, "usd")
        assert by_id[failed["id"]]["balance_transaction"] is None
        assert by_id[failed["id"]]["failure_code"] == "card_declined" and by_id[failed["id"]]["paid"] is False

        # raw form-encodings: expand[]=... and the SDK's expand[0]=... are the same
        raw = get(srv, "/v1/charges", [("expand[]", "data.balance_transaction"), ("expand[]", "data.customer")])
        assert raw.status_code == 200
        raw_usd = next(c for c in raw.json()["data"] if c["id"] == usd["id"])
        assert raw_usd["balance_transaction"] == bt_usd and raw_usd["customer"]["object"] == "customer"
        one = sdk(srv).v1.charges.retrieve(jpy["id"], params={"expand": ["balance_transaction"]}).to_dict()
        assert one["balance_transaction"]["exchange_rate"] == 0.0067
        assert get(srv, "/v1/charges", {"expand[]": "data.nonsense"}).status_code == 400
        assert get(srv, "/v1/charges", {"expand[]": "balance_transaction"}).status_code == 400  # lists need data.


def test_refunds_and_disputes_update_the_charge() -> None:
    account = small_account()
    cus = account.add_customer(email="r@example.com", created=NOW - 20 * DAY)["id"]
    charge = account.add_charge(cus, 10_000, "eur", exchange_rate=1.08, created=NOW - 19 * DAY)
    refund = account.refund_charge(charge["id"], amount=2500, created=NOW - 18 * DAY)
    partially = account.charges[charge["id"]]
    assert (partially["amount_refunded"], partially["refunded"]) == (2500, False)
    assert refund["object"] == "refund" and refund["amount"] == 2500
    account.refund_charge(charge["id"], created=NOW - 17 * DAY)
    fully = account.charges[charge["id"]]
    assert (fully["amount_refunded"], fully["refunded"]) == (10_000, True)
    assert len(fully["refunds"]["data"]) == 2
    with pytest.raises(ValueError):
        account.refund_charge(charge["id"], amount=1)

    other = account.add_charge(cus, 4000, "usd", created=NOW - 16 * DAY)
    dispute = account.dispute_charge(other["id"], status="lost", created=NOW - 15 * DAY, closed_at=NOW - 5 * DAY)
    assert dispute["status"] == "lost" and account.charges[other["id"]]["disputed"] is True
    types = [e["type"] for e in account.recent_events()]
    for expected in ("charge.refunded", "refund.created", "charge.dispute.created", "charge.dispute.closed"):
        assert expected in types
    with serve(account) as srv:
        disputes = sdk(srv).v1.disputes.list(params={"charge": other["id"]}).data
        assert [d.id for d in disputes] == [dispute["id"]]
        txns = sdk(srv).v1.balance_transactions.list(params={"limit": 100}).data
        assert {t.type for t in txns} == {"charge", "refund", "adjustment"}
        assert sum(t.amount for t in txns if t.type == "refund") == -round(100 * 1.08 * 100)


# -- deletes and events ------------------------------------------------------------------------------
def test_deleted_customer_vanishes_from_lists_and_retrieves_as_placeholder() -> None:
    account = small_account()
    keep = account.add_customer(email="keep@example.com", created=NOW - 5 * DAY)["id"]
    gone = account.add_customer(email="gone@example.com", created=NOW - 4 * DAY)["id"]
    price = account.add_price(
        account.add_product("Plan", created=NOW - 9 * DAY)["id"], 900, "usd", {"interval": "month"}
    )
    sub = account.add_subscription(gone, price["id"], created=NOW - 3 * DAY)
    account.delete_customer(gone, at=NOW - DAY)
    assert gone in account.deleted_ids
    with serve(account) as srv:
        client = sdk(srv)
        assert [c.id for c in client.v1.customers.list().data] == [keep]
        placeholder = client.v1.customers.retrieve(gone).to_dict()
        assert placeholder == {"id": gone, "object": "customer", "deleted": True}
        subs = client.v1.subscriptions.list(params={"status": "all"}).data
        assert [(s.id, s.status) for s in subs] == [(sub["id"], "canceled")]  # Stripe cancels them
        assert client.v1.subscriptions.list().data == []
        deleted = client.v1.events.list(params={"type": "customer.deleted"}).data
        assert [e.data.object.id for e in deleted] == [gone]


def test_events_window_wildcards_and_types() -> None:
    account = small_account()
    old = account.add_customer(email="old@example.com", created=NOW - 40 * DAY)
    new = account.add_customer(email="new@example.com", created=NOW - 2 * DAY)
    account.update_customer(new["id"], at=NOW - DAY, email="newer@example.com", metadata={"marketing_opt_in": "yes"})
    price = account.add_price(
        account.add_product("Pro", created=NOW - 3 * DAY)["id"], 2900, "usd", {"interval": "month"}
    )
    sub = account.add_subscription(new["id"], price["id"], created=NOW - DAY)
    account.cancel_subscription(sub["id"], at=NOW - 3600)
    account.add_charge(new["id"], 1000, "usd", created=NOW - 1800)
    with serve(account) as srv:
        client = sdk(srv)
        every = client.v1.events.list(params={"limit": 100}).data
        assert old["id"] not in {e.data.object.id for e in every}  # older than 30 days
        assert [e.created for e in every] == sorted((e.created for e in every), reverse=True)
        assert all(e.object == "event" and e.id.startswith("evt_") for e in every)

        customer_events = client.v1.events.list(params={"type": "customer.*", "limit": 100}).data
        assert {e.type for e in customer_events} == {
            "customer.created",
            "customer.updated",
            "customer.subscription.created",
            "customer.subscription.deleted",
        }
        subs = client.v1.events.list(params={"type": "customer.subscription.*"}).data
        assert [e.type for e in subs] == ["customer.subscription.deleted", "customer.subscription.created"]
        assert subs[0].data.object.status == "canceled" and subs[1].data.object.status == "active"

        updated = client.v1.events.list(params={"types": ["customer.updated", "charge.succeeded"]}).data
        assert [e.type for e in updated] == ["charge.succeeded", "customer.updated"]
        update = updated[1].to_dict()
        assert update["data"]["object"]["email"] == "newer@example.com"
        previous = {"email": "new@example.com", "metadata": {"marketing_opt_in": None}}
        assert update["data"]["previous_attributes"] == previous

        both = get(srv, "/v1/events", [("type", "customer.*"), ("types[]", "customer.created")])
        assert both.status_code == 400 and error_of(both)["code"] == "parameters_exclusive"
        too_many = get(srv, "/v1/events", [("types[]", f"t{i}.x") for i in range(21)])
        assert too_many.status_code == 400 and error_of(too_many)["param"] == "types"

        account.advance(29 * DAY)  # the clock moves: the first events age out
        remaining = client.v1.events.list(params={"limit": 100}).data
        assert {e.created for e in remaining} == {e.created for e in every if e.created >= NOW - DAY}
        assert get(srv, f"/v1/events/{every[-1].id}").status_code == 404


def test_event_snapshots_keep_the_object_as_it_was() -> None:
    account = small_account()
    cus = account.add_customer(email="a@example.com", name="A", created=NOW - 3 * DAY)
    account.update_customer(cus["id"], at=NOW - 2 * DAY, name="B")
    account.update_customer(cus["id"], at=NOW - DAY, name="C")
    names = [(e["type"], e["data"]["object"]["name"]) for e in account.recent_events()]
    assert names == [("customer.updated", "C"), ("customer.updated", "B"), ("customer.created", "A")]
    assert account.customers[cus["id"]]["name"] == "C"


# -- rate limits, latency, faults, concurrency ---------------------------------------------------------
def test_global_rate_limit_gives_429_with_reason(account: StripeAccount) -> None:
    with serve(account, rate_limits=RateLimits(global_per_second=5)) as srv:
        statuses = [get(srv, "/v1/customers", {"limit": 1}) for _ in range(8)]
        assert [r.status_code for r in statuses[:5]] == [200] * 5
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and limited[0].headers["Stripe-Rate-Limited-Reason"] == "global-rate"
        err = error_of(limited[0])
        assert (err["type"], err["code"]) == ("invalid_request_error", "rate_limit")
        assert srv.rate_limited_count == len(limited)
        with pytest.raises(stripe.RateLimitError):  # a plain 429: the SDK does not retry it
            stripe.StripeClient(KEY, base_addresses={"api": srv.url}, max_network_retries=2).v1.customers.list()
        time.sleep(1.05)  # the window slides
        assert get(srv, "/v1/customers").status_code == 200


def test_endpoint_rate_limit_counts_each_endpoint_apart(account: StripeAccount) -> None:
    with serve(account, rate_limits=RateLimits(per_endpoint_per_second=3)) as srv:
        codes = [get(srv, "/v1/charges").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        assert get(srv, "/v1/customers").status_code == 200
        limited = get(srv, "/v1/charges")
        assert limited.headers["Stripe-Rate-Limited-Reason"] == "endpoint-rate"


def test_concurrency_limit(account: StripeAccount) -> None:
    with serve(account, latency=0.3, rate_limits=RateLimits(concurrency=2)) as srv:
        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda _: get(srv, "/v1/products"), range(6)))
        reasons = [r.headers.get("Stripe-Rate-Limited-Reason") for r in responses if r.status_code == 429]
        assert reasons and set(reasons) == {"global-concurrency"}
        assert sum(r.status_code == 200 for r in responses) >= 2


def test_latency_is_applied(account: StripeAccount) -> None:
    with serve(account, latency=0.25) as srv:
        started = time.monotonic()
        sdk(srv).v1.products.list()
        assert time.monotonic() - started >= 0.25


def test_injected_faults_keep_request_ids_and_the_sdk_retries_5xx(account: StripeAccount) -> None:
    with serve(account) as srv:
        srv.inject(Fault(r"^/v1/customers$", status=500, body={"error": {"type": "api_error", "message": "boom"}}))
        client = stripe.StripeClient(KEY, base_addresses={"api": srv.url}, max_network_retries=1)
        assert len(client.v1.customers.list(params={"limit": 2}).data) == 2
        assert srv.count_requests("/v1/customers") == 2
        srv.inject(Fault(r"^/v1/customers$", status=503, headers={"Stripe-Should-Retry": "false"}))
        with pytest.raises(stripe.APIError):
            client.v1.customers.list()
        assert srv.count_requests("/v1/customers") == 3


def test_mutations_while_serving_never_skip_or_repeat() -> None:
    account = small_account()
    cus = account.add_customer(email="busy@example.com", created=NOW - 90 * DAY)["id"]
    for i in range(300):
        account.add_charge(cus, 100 + i, "usd", created=NOW - 80 * DAY + i * 600)
    before = set(account.charges)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            account.add_charge(cus, 999, "usd")  # newer than everything listed so far
            account.update_customer(cus, metadata={"n": str(len(account.charges))})
            time.sleep(0.001)

    thread = threading.Thread(target=writer)
    with serve(account) as srv:
        thread.start()
        try:
            seen = [c.id for c in sdk(srv).v1.charges.list(params={"limit": 50}).auto_paging_iter()]
        finally:
            stop.set()
            thread.join()
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


# -- shapes --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "fixture"),
    [
        ("/v1/customers", "customer"),
        ("/v1/charges", "charge"),
        ("/v1/balance_transactions", "balance_transaction"),
        ("/v1/refunds", "refund"),
        ("/v1/disputes", "dispute"),
        ("/v1/subscriptions", "subscription"),
        ("/v1/products", "product"),
        ("/v1/prices", "price"),
        ("/v1/invoices", "invoice"),
        ("/v1/checkout/sessions", "checkout.session"),
        ("/v1/events", "event"),
    ],
)
def test_objects_have_the_official_shape(server: StripeStandIn, path: str, fixture: str) -> None:
    listed = get(server, path, {"limit": 5})
    assert listed.status_code == 200
    data = listed.json()["data"]
    assert data, path
    expected = fixtures()[fixture]
    for obj in data:
        assert set(obj) == set(expected)
        assert obj["object"] == expected["object"]
        assert obj["id"].startswith(expected["id"].split("_")[0] + "_")
    one = get(server, f"{path}/{data[0]['id']}")
    assert one.status_code == 200 and one.json() == data[0]


def test_invoice_payments_have_the_official_shape_and_expand_their_invoice(server: StripeStandIn) -> None:
    listed = get(server, "/v1/invoice_payments", {"limit": 5})
    assert listed.status_code == 200
    data = listed.json()["data"]
    expected = fixtures()["invoice_payment"]
    assert data and all(set(o) == set(expected) and o["object"] == "invoice_payment" for o in data)
    assert all(o["id"].startswith("inpay_") and o["invoice"].startswith("in_") for o in data)
    one = get(server, f"/v1/invoice_payments/{data[0]['id']}", {"expand[]": "invoice"})
    assert one.status_code == 200 and one.json()["invoice"]["id"] == data[0]["invoice"]


# -- invoices of subscriptions -------------------------------------------------------------------------
def test_a_subscription_charge_has_a_paid_invoice_of_its_items_and_an_invoice_payment(
    account: StripeAccount, client: stripe.StripeClient
) -> None:
    renewals = [
        c
        for c in account.charges.values()
        if c["status"] == "succeeded" and c["description"] in ("Subscription creation", "Subscription update")
    ]
    assert len(renewals) > 20
    for charge in renewals[:: len(renewals) // 8]:
        by_intent = {"type": "payment_intent", "payment_intent": charge["payment_intent"]}
        payments = client.v1.invoice_payments.list(params={"payment": by_intent}).data
        assert [(p.status, p.amount_paid, p.currency, p.payment.type) for p in payments] == [
            ("paid", charge["amount"], charge["currency"], "payment_intent")
        ]
        invoice = client.v1.invoices.retrieve(payments[0].invoice)
        assert (invoice.status, invoice.amount_paid, invoice.customer) == ("paid", charge["amount"], charge["customer"])
        assert invoice.status_transitions.paid_at == charge["created"]
        subscription = account.subscriptions[invoice.parent.subscription_details.subscription]
        assert subscription["customer"] == charge["customer"]
        item = subscription["items"]["data"][0]
        [line] = invoice.lines.data
        details = line.pricing.price_details
        assert (details.price, details.product, line.quantity, line.amount) == (
            item["price"]["id"],
            item["price"]["product"],
            item["quantity"],
            charge["amount"],
        )
        assert line.parent.subscription_item_details.subscription_item == item["id"]
        by_invoice = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data
        assert [p.id for p in by_invoice] == [payments[0].id]
        of_subscription = client.v1.invoices.list(params={"subscription": subscription["id"], "limit": 100}).data
        assert invoice.id in {i.id for i in of_subscription}
        assert {i.parent.subscription_details.subscription for i in of_subscription} == {subscription["id"]}


def test_invoice_payment_filters_are_as_strict_as_stripe(account: StripeAccount, server: StripeStandIn) -> None:
    no_type = get(server, "/v1/invoice_payments", {"payment[payment_intent]": "pi_x"})
    assert no_type.status_code == 400
    assert (error_of(no_type)["code"], error_of(no_type)["param"]) == ("parameter_missing", "payment[type]")
    unknown = get(server, "/v1/invoice_payments", {"payment[type]": "payment_intent", "payment[charge]": "ch_x"})
    assert unknown.status_code == 400 and error_of(unknown)["param"] == "payment[charge]"
    for params, param in (
        ({"payment[type]": "card"}, "payment[type]"),
        ({"status": "succeeded"}, "status"),
        ({"customer": "cus_x"}, "customer"),
        ({"payment": "pi_x"}, "payment"),
    ):
        response = get(server, "/v1/invoice_payments", params)
        assert response.status_code == 400 and error_of(response)["param"] == param, params
    # every invoice payment once, by pages of 100; all paid; none of a payment record
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 100, "status": "paid"}
    while True:
        body = get(server, "/v1/invoice_payments", params).json()
        seen += [p["id"] for p in body["data"]]
        if not body["has_more"]:
            break
        params["starting_after"] = body["data"][-1]["id"]
    assert sorted(seen) == sorted(account.invoice_payments) and len(seen) > 100
    none = get(server, "/v1/invoice_payments", {"payment[type]": "payment_record"})
    assert none.status_code == 200 and none.json()["data"] == []


# -- the generator -------------------------------------------------------------------------------------
def test_generator_is_deterministic() -> None:
    first = generate_account(seed=11, customers=150, now=NOW)
    second = generate_account(seed=11, customers=150, now=NOW)
    other = generate_account(seed=12, customers=150, now=NOW)

    def digest(acct: StripeAccount) -> list[tuple[str, int, str, int]]:
        return [(c["id"], c["amount"], c["currency"], c["created"]) for c in acct.charges.values()]

    assert list(first.customers) == list(second.customers)
    assert digest(first) == digest(second)
    assert [first.customers[c] for c in first.customers] == [second.customers[c] for c in second.customers]
    assert list(first.events) == list(second.events)
    assert set(first.customers).isdisjoint(other.customers)
    # the ids do not depend on the clock, only the timestamps do
    later = generate_account(seed=11, customers=150, now=NOW + 7 * DAY)
    assert [(c, x) for c, x, _, _ in digest(later)] == [(c, x) for c, x, _, _ in digest(first)]


def test_generator_is_realistic(account: StripeAccount) -> None:
    customers = list(account.customers.values())
    charges = list(account.charges.values())
    n = len(customers)
    assert 560 <= n <= 600 and account.deleted_ids
    assert 8 <= len(charges) / n <= 13

    emails = [c["email"] for c in customers]
    assert 0.05 <= emails.count(None) / n <= 0.12
    invalid = [e for e in emails if e and (e.count("@") != 1 or e.endswith("@") or "." not in e.split("@")[-1])]
    assert invalid
    lowered = collections.Counter(e.lower() for e in emails if e and "@" in e and e.count("@") == 1)
    assert any(k > 1 for k in lowered.values())  # the same address in another case
    consent = [c["metadata"].get("marketing_opt_in") for c in customers]
    assert set(consent) >= {"true", "TRUE", "yes", "Yes", "1", "false", "no", "0", None}
    assert 0.35 <= sum(v in CONSENTING for v in consent) / n <= 0.55

    status = collections.Counter(c["status"] for c in charges)
    assert 0.02 <= status["failed"] / len(charges) <= 0.06
    assert {c["failure_code"] for c in charges if c["status"] == "failed"} >= {"card_declined", "insufficient_funds"}
    uncaptured = [c for c in charges if c["status"] == "succeeded" and not c["captured"]]
    assert uncaptured and all(c["amount_captured"] == 0 and c["balance_transaction"] is None for c in uncaptured)
    refunded = [c for c in charges if c["amount_refunded"]]
    assert 0.02 <= len(refunded) / len(charges) <= 0.08
    assert any(c["refunded"] for c in refunded) and any(not c["refunded"] for c in refunded)
    assert any(d["status"] == "lost" for d in account.disputes.values())

    currencies = collections.Counter(c["currency"] for c in charges)
    assert currencies.most_common(1)[0][0] == "usd"
    assert {"eur", "gbp", "jpy", "kwd"} <= set(currencies)
    yen = [c["amount"] for c in charges if c["currency"] in ZERO_DECIMAL]
    assert yen and all(isinstance(a, int) and a % 10 == 0 and 100 <= a <= 2_000_000 for a in yen)
    kwd = [c["amount"] for c in charges if c["currency"] == "kwd"]
    assert all(a % 250 == 0 for a in kwd)  # fils: three decimals, in quarter-dinar steps
    usd = sorted(c["amount"] for c in charges if c["currency"] == "usd")
    assert 1000 <= usd[len(usd) // 2] <= 10_000  # a median basket of $10-$100, in cents

    products = list(account.products.values())
    assert 8 <= len(products) <= 14 and any(not p["active"] for p in products)
    prices = list(account.prices.values())
    assert {p["type"] for p in prices} == {"one_time", "recurring"} and any(not p["active"] for p in prices)

    recent = [c for c in customers if c["created"] >= NOW - 30 * DAY]
    created_events = {e["data"]["object"]["id"] for e in account.recent_events(("customer.created",))}
    assert recent and {c["id"] for c in recent} <= created_events


def test_generator_is_fast() -> None:
    started = time.monotonic()
    big = generate_account(seed=3, customers=3000, now=NOW)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert 24_000 <= len(big.charges) <= 39_000
    started = time.monotonic()
    cursor = None
    for _ in range(20):  # a page of 100 with a created filter and the balance transactions: cheap
        page, _more = big.list_page(
            "charge", limit=100, starting_after=cursor, created={"gte": NOW - 400 * DAY, "lt": NOW - 100 * DAY}
        )
        cursor = page[-1]["id"]
    assert (time.monotonic() - started) / 20 < 0.05
