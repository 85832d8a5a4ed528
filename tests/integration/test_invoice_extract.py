"""Invoices and invoice payments over real HTTP: the backfill lands each subscription charge's paid invoice, with
its lines, and the InvoicePayment that ties it to the charge's payment intent; a renewal after that arrives
through events alone (``invoice.*`` and ``invoice_payment.paid`` carry the whole objects, lines included)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.stripe_account import generate_account
from tests.integration.test_stripe_extract import Rig

RENEWALS = ("Subscription creation", "Subscription update")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(generate_account(seed=11, customers=80), tmp_path)
    yield r
    r.close()


def landed_payment(rig: Rig, payment_intent: str) -> tuple[object, ...] | None:
    """(invoice id, status, amount paid, invoice status, lines) of the invoice a payment intent paid."""
    return rig.con.execute(
        "select p.invoice_id, p.status, p.amount_paid, i.status, i.lines::varchar, i.lines_has_more"
        " from stripe.invoice_payments p join stripe.invoices i on i.id = p.invoice_id"
        " where p.payment_intent_id = ?",
        [payment_intent],
    ).fetchone()


def test_the_backfill_lands_the_invoice_each_subscription_charge_paid(rig: Rig) -> None:
    rig.run()
    account = rig.account
    assert rig.ids("invoices") == sorted(account.invoices)
    assert rig.ids("invoice_payments") == sorted(account.invoice_payments)
    renewals = [c for c in account.charges.values() if c["status"] == "succeeded" and c["description"] in RENEWALS]
    assert len(renewals) > 5
    for charge in renewals:
        row = landed_payment(rig, charge["payment_intent"])
        assert row is not None, charge["id"]
        invoice_id, status, paid, invoice_status, lines, has_more = row
        assert (status, paid, invoice_status, has_more) == ("paid", charge["amount"], "paid", False)
        [line] = json.loads(str(lines))
        subscription = account.subscriptions[account.invoices[str(invoice_id)]["parent"]["subscription_details"][
            "subscription"
        ]]  # fmt: skip
        item = subscription["items"]["data"][0]
        assert (line["pricing"]["price_details"]["price"], line["quantity"], line["subtotal"]) == (
            item["price"]["id"],
            item["quantity"],
            charge["amount"],
        )
    # and every landed invoice that is paid has its paid invoice payment, for the amount it was paid
    unmatched = rig.con.execute(
        "select i.id from stripe.invoices i left join stripe.invoice_payments p"
        " on p.invoice_id = i.id and p.status = 'paid' and p.amount_paid = i.amount_paid"
        " where i.status = 'paid' and p.id is null"
    ).fetchall()
    assert unmatched == []


def test_a_renewal_arrives_through_events_without_listing_invoices(rig: Rig) -> None:
    rig.run()
    account = rig.account
    subscription = next(s for s in sorted(account.subscriptions) if account.subscriptions[s]["status"] == "active")
    charge = account.charge_subscription(subscription)
    rig.server.clear_requests()
    report = rig.run()
    assert report.streams["invoices"].changed == 1 and report.streams["invoice_payments"].changed == 1
    assert rig.server.count_requests("/v1/invoices") == 0  # the events carried them, lines included
    assert rig.server.count_requests("/v1/invoice_payments") == 0
    row = landed_payment(rig, charge["payment_intent"])
    assert row is not None
    invoice_id, status, paid, invoice_status, lines, _ = row
    # the invoice's events of one second (created, finalized, paid, payment_succeeded): the last state wins
    assert (status, paid, invoice_status) == ("paid", charge["amount"], "paid")
    item = account.subscriptions[subscription]["items"]["data"][0]
    assert [(li["pricing"]["price_details"]["product"], li["quantity"]) for li in json.loads(str(lines))] == [
        (item["price"]["product"], item["quantity"])
    ]
    assert invoice_id in account.invoices
