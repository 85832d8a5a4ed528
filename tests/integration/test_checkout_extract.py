"""Checkout Sessions over real HTTP: the backfill lands them with their line items, and sessions that arrive
through events (which never carry line items) get theirs from one list of the new sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.stripe_account import generate_account
from tests.integration.test_stripe_extract import Rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(generate_account(seed=11, customers=80), tmp_path)
    yield r
    r.close()


def session_rows(rig: Rig) -> dict[str, tuple[object, ...]]:
    rows = rig.con.execute(
        "select id, customer_id, consent_promotions, line_items::varchar, amount_total from stripe.checkout_sessions"
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_the_backfill_lands_sessions_with_their_line_items_and_consent(rig: Rig) -> None:
    rig.run()
    rows = session_rows(rig)
    assert sorted(rows) == sorted(rig.account.checkout_sessions)
    with_lines = 0
    for session_id, (customer_id, consent, items, amount) in rows.items():
        session = rig.account.checkout_sessions[session_id]
        assert customer_id == session["customer"] and consent == session["consent"]["promotions"]
        assert amount == session["amount_total"]
        expected = rig.account.checkout_line_items(session_id)["data"]
        assert items is not None and [i["price"]["id"] for i in json.loads(items)] == [
            i["price"]["id"] for i in expected
        ]
        with_lines += bool(expected)
    assert with_lines > 0  # some sessions bought catalogue products
    assert {c for _, c, *_ in rows.values()} >= {"opt_in", "opt_out", None}


def test_a_session_from_events_gets_its_line_items_from_one_list(rig: Rig) -> None:
    rig.run()
    account = rig.account
    customer = next(c for c in sorted(account.customers) if account.customers[c]["email"])
    price = next(p for p in sorted(account.prices) if account.prices[p]["type"] == "one_time")
    charge = account.add_charge(customer, account.prices[price]["unit_amount"] * 2, account.prices[price]["currency"])
    session = account.complete_checkout(
        customer,
        charge["amount"],
        charge["currency"],
        "opt_in",
        payment_intent=charge["payment_intent"],
        line_items=[(price, 2)],
    )
    rig.server.clear_requests()
    rig.run()
    assert rig.server.count_requests("/v1/checkout/sessions") == 1  # the new sessions, with line items
    _, consent, items, _ = session_rows(rig)[session["id"]]
    assert consent == "opt_in"
    lines = json.loads(items)  # type: ignore[arg-type]
    assert [(i["price"]["id"], i["quantity"], i["amount_total"]) for i in lines] == [(price, 2, charge["amount"])]
    rig.server.clear_requests()
    rig.run()  # the same event again (overlap): the stored line items are kept, nothing listed
    assert rig.server.count_requests("/v1/checkout/sessions") == 0
    assert session_rows(rig)[session["id"]][2] == items
