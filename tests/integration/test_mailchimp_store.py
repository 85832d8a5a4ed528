"""The Mailchimp e-commerce store end to end, on a pipeline of its own: the nightly job over HTTP creates the store,
backfills it with automations paused, then sends refunds and price changes as updates; a disconnected
Mailchimp is left as it is. (Dry runs, refusals and retries: test_mailchimp_store_sync.py, without Dagster.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.environment import running_stand_ins
from sandbox.mailchimp_ecommerce_api import EcommerceStore
from tests.integration.pipeline import Pipeline
from tests.integration.scenario import DAY, build_scenario

STORE_ID = "northwind-stripe"


@pytest.fixture(scope="module")
def pipeline(dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    scenario = build_scenario()
    account = scenario.account
    now = account.now
    # hana buys the handbook through Checkout and ticks the promotions box; nothing in her metadata
    hana = account.add_customer(email="hana.sato@gmail.com", name="Hana Sato", created=now - 40 * DAY)["id"]
    handbook = next(p for p in sorted(account.products) if account.products[p]["name"].startswith("Growth Handbook"))
    usd = next(
        p
        for p in sorted(account.prices)
        if account.prices[p]["product"] == handbook and account.prices[p]["currency"] == "usd"
    )
    charge = account.add_charge(hana, 2 * account.prices[usd]["unit_amount"], "usd", created=now - 30 * DAY)
    account.complete_checkout(
        hana, charge["amount"], "usd", "opt_in", created=now - 30 * DAY, payment_intent=charge["payment_intent"],
        line_items=[(usd, 2)],
    )  # fmt: skip
    # kenji pays for 3 seats of the Team plan: the renewal is an invoice, which Stripe ties to the charge through
    # an InvoicePayment of its payment intent (the charge itself no longer names its invoice)
    team = next(p for p in sorted(account.products) if account.products[p]["name"] == "Team")
    team_usd = next(
        p
        for p in sorted(account.prices)
        if account.prices[p]["product"] == team and account.prices[p]["currency"] == "usd"
    )
    kenji = account.add_customer(email="kenji.mori@gmail.com", name="Kenji Mori", created=now - 70 * DAY)["id"]
    seats = account.add_subscription(kenji, team_usd, quantity=3, created=now - 60 * DAY)["id"]
    renewal = account.charge_subscription(seats, created=now - 30 * DAY)
    with running_stand_ins(account) as stand_ins:
        pipe = Pipeline(scenario, stand_ins, tmp_path_factory.mktemp("store"))
        pipe.env["MAILCHIMP_STORE_ID"] = STORE_ID
        pipe.ids = {  # type: ignore[attr-defined]
            "hana": hana,
            "hana_order": charge["id"],
            "handbook": handbook,
            "handbook_usd": usd,
            "team": team,
            "team_usd": team_usd,
            "seats": seats,
            "kenji_order": renewal["id"],
        }
        pipe.run()
        yield pipe


def store(pipeline: Pipeline) -> EcommerceStore:
    found = pipeline.stand_ins.mailchimp.ecommerce.store(STORE_ID)
    assert found is not None
    return found


def ecommerce_writes(pipeline: Pipeline) -> list[tuple[str, str]]:
    return [
        (r.method, r.path.split(f"/ecommerce/stores/{STORE_ID}")[-1])
        for r in pipeline.stand_ins.mailchimp.requests
        if "/ecommerce/" in r.path and r.method in {"POST", "PUT", "PATCH"}
    ]


def order_of(pipeline: Pipeline, charge_id: str) -> dict[str, Any]:
    order = store(pipeline).orders[charge_id]
    return {**order, "lines": list(order["lines"].values())}


def test_first_run_creates_the_store_and_backfills_it_with_automations_paused(pipeline: Pipeline) -> None:
    s = store(pipeline)
    assert s.list_id == pipeline.stand_ins.audience_id and s.currency_code == "USD"
    assert s.syncing_history == [True, False]  # created syncing, cleared once the history is in
    assert s.is_syncing is False and s.automations == []  # no order notification for history

    expected_orders = {
        o
        for (o,) in pipeline.query(
            "select order_id from marts.store_orders"
            " where customer_id in (select customer_id from marts.store_customers)"
        )
    }
    assert set(s.orders) == expected_orders and len(expected_orders) > 10
    assert set(s.products) == {p for (p,) in pipeline.query("select product_id from marts.store_products")}
    assert set(s.customers) == {c for (c,) in pipeline.query("select customer_id from marts.store_customers")}

    ids = pipeline.ids  # type: ignore[attr-defined]
    hana = order_of(pipeline, ids["hana_order"])
    unit = pipeline.scenario.account.prices[ids["handbook_usd"]]["unit_amount"] / 100
    assert [(li["product_id"], li["product_variant_id"], li["quantity"], li["price"]) for li in hana["lines"]] == [
        (ids["handbook"], ids["handbook_usd"], 2, unit)
    ]
    assert hana["financial_status"] == "paid" and hana["order_total"] == 2 * unit and hana["currency_code"] == "USD"
    # kenji's subscription charge: one line of the subscription's product and price, for its 3 seats
    kenji = order_of(pipeline, ids["kenji_order"])
    seat = pipeline.scenario.account.prices[ids["team_usd"]]["unit_amount"] / 100
    assert [(li["product_id"], li["product_variant_id"], li["quantity"], li["price"]) for li in kenji["lines"]] == [
        (ids["team"], ids["team_usd"], 3, seat)
    ]
    assert kenji["order_total"] == 3 * seat and kenji["lines"][0]["id"].startswith("il_")
    # consent from the checkout alone: her contact (created by the audience push) is subscribed
    assert s.customers[ids["hana"]]["opt_in_status"] is True
    assert pipeline.stand_ins.mailchimp.member(pipeline.stand_ins.audience_id, "hana.sato@gmail.com")["status"] == (
        "subscribed"
    )

    # alice's EUR charge was partly refunded before the first run; a plain charge has the generic product
    alice_eur = pipeline.query(
        "select order_id from marts.store_orders where customer_id = ? and currency_code = 'EUR'",
        [pipeline.scenario.alice],
    )[0][0]
    alice = order_of(pipeline, str(alice_eur))
    assert (alice["financial_status"], alice["order_total"], alice["currency_code"]) == ("partially_refunded", 75.0,
                                                                                         "EUR")  # fmt: skip
    assert [(li["product_id"], li["price"]) for li in alice["lines"]] == [("stripe_payment", 100.0)]
    # dave has no email: his order is a recorded rejection, not lost
    dave_orders = pipeline.query(
        "select reason from sync.rejections where destination = 'mailchimp_store_orders' and record_key in "
        "(select order_id from marts.store_orders where customer_id = ?)",
        [pipeline.scenario.dave],
    )
    assert dave_orders and "no valid email" in str(dave_orders[0][0])
    assert not pipeline.stand_ins.mailchimp.contract_violations


def test_a_refund_updates_the_order_and_a_price_change_updates_the_product(pipeline: Pipeline) -> None:
    account, ids = pipeline.scenario.account, pipeline.ids  # type: ignore[attr-defined]
    bob_order = pipeline.query("select order_id from marts.store_orders where customer_id = ?", [pipeline.scenario.bob])
    bob_charge = str(bob_order[0][0])
    account.refund_charge(bob_charge)  # the whole 20.00
    new_price = account.add_price(ids["handbook"], 2400, "usd")  # the handbook now costs 24.00 ...
    account.update_price(ids["handbook_usd"], active=False)  # ... and the old price is archived
    new = account.add_charge(pipeline.scenario.bob, 3100, "usd")  # and bob buys again: a new order
    renewal = account.charge_subscription(ids["seats"])  # kenji's next month, known through events alone
    pipeline.stand_ins.mailchimp.clear_requests()

    pipeline.run()

    bob = order_of(pipeline, bob_charge)
    assert (bob["financial_status"], bob["order_total"]) == ("refunded", 0.0)
    variants = store(pipeline).products[ids["handbook"]]["variants"]
    assert variants[new_price["id"]]["price"] == 24.0 and variants[new_price["id"]]["visibility"] == "visible"
    assert variants[ids["handbook_usd"]]["visibility"] == "hidden"  # kept: hana's order points at it
    # only what changed was sent
    assert sorted(ecommerce_writes(pipeline)) == sorted(
        [
            ("PUT", f"/orders/{bob_charge}"),
            ("PUT", f"/orders/{new['id']}"),
            ("PUT", f"/orders/{renewal['id']}"),
            ("PUT", f"/products/{ids['handbook']}"),
        ]
    )
    kenji = order_of(pipeline, renewal["id"])
    assert [(li["product_id"], li["product_variant_id"], li["quantity"]) for li in kenji["lines"]] == [
        (ids["team"], ids["team_usd"], 3)
    ]
    # after the backfill a new order starts its automation, an updated one none; no backfill again
    assert sorted(store(pipeline).automations) == sorted(
        [("order_notification", new["id"]), ("order_notification", renewal["id"])]
    )
    assert store(pipeline).syncing_history == [True, False]
    assert not pipeline.stand_ins.mailchimp.contract_violations


def test_a_disconnected_mailchimp_is_left_as_it_is_until_reconnected(pipeline: Pipeline) -> None:
    account = pipeline.scenario.account
    carol_order = pipeline.query(
        "select order_id from marts.store_orders where customer_id = ?", [pipeline.scenario.carol]
    )[0][0]
    account.refund_charge(str(carol_order), amount=50000)
    mailchimp = pipeline.stand_ins.mailchimp
    members_before = mailchimp.members(pipeline.stand_ins.audience_id)
    mailchimp.clear_requests()

    pipeline.env["MAILCHIMP_DISCONNECTED"] = "true"
    try:
        output = pipeline.run()
    finally:
        del pipeline.env["MAILCHIMP_DISCONNECTED"]
    assert mailchimp.requests == []  # neither the audience nor the store was touched, not even read
    assert output.count("Mailchimp is disconnected (MAILCHIMP_DISCONNECTED is set)") >= 2  # both assets
    assert mailchimp.members(pipeline.stand_ins.audience_id) == members_before
    assert order_of(pipeline, str(carol_order))["financial_status"] == "paid"
    assert pipeline.query("select financial_status from marts.store_orders where order_id = ?", [carol_order]) == [
        ("partially_refunded",)
    ]  # the warehouse moved on

    pipeline.run("push_audiences")  # reconnected: only what changed meanwhile is sent
    assert ecommerce_writes(pipeline) == [("PUT", f"/orders/{carol_order}")]
    carol = order_of(pipeline, str(carol_order))
    assert (carol["financial_status"], carol["order_total"]) == ("partially_refunded", 1000.0)
