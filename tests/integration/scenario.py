"""A small Stripe account with the cases the end-to-end tests check by name, plus generated background."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.stripe_account import StripeAccount, generate_account

DAY = 86_400


@dataclass
class Scenario:
    account: StripeAccount
    alice: str  # JPY + EUR charges, a partial refund, consent "YES"
    bob: str  # one USD purchase, no consent metadata
    carol: str  # consents, but is already unsubscribed in Mailchimp
    dave: str  # no email
    erin: str  # invalid email
    frank: str  # fake-looking email Mailchimp refuses


def build_scenario(seed: int = 7, background_customers: int = 40) -> Scenario:
    account = generate_account(seed=seed, customers=background_customers)
    now = account.now
    alice = account.add_customer(
        email="Alice.Martin@Gmail.com",
        name="Alice Martin",
        metadata={"marketing_opt_in": "YES"},
        created=now - 300 * DAY,
    )["id"]
    account.add_charge(alice, 5000, "jpy", exchange_rate=0.0067, created=now - 200 * DAY)
    eur = account.add_charge(alice, 10000, "eur", exchange_rate=1.08, created=now - 100 * DAY)
    account.refund_charge(eur["id"], amount=2500, created=now - 90 * DAY)
    account.add_charge(alice, 3000, "usd", status="failed", failure_code="card_declined", created=now - 50 * DAY)

    bob = account.add_customer(email="bob.stone@outlook.com", name="Bob Stone", created=now - 200 * DAY)["id"]
    account.add_charge(bob, 2000, "usd", created=now - 20 * DAY)

    carol = account.add_customer(
        email="carol.white@yahoo.com",
        name="Carol White",
        metadata={"marketing_opt_in": "true"},
        created=now - 150 * DAY,
    )["id"]
    account.add_charge(carol, 150000, "usd", created=now - 10 * DAY)

    dave = account.add_customer(email=None, name="Dave NoMail", created=now - 120 * DAY)["id"]
    account.add_charge(dave, 4500, "gbp", exchange_rate=1.27, created=now - 5 * DAY)

    erin = account.add_customer(email="not-an-email", name="Erin Typo", created=now - 60 * DAY)["id"]
    frank = account.add_customer(
        email="test@example.com", name="Frank Fake", metadata={"marketing_opt_in": "1"}, created=now - 30 * DAY
    )["id"]
    # A failed payment, then deleted in Stripe before the first run, all within Customer.io's 72 hours: the
    # events remain, the customer is not listed.
    gina = account.add_customer(email="gina.gone@gmail.com", name="Gina Gone", created=now - 2 * DAY)["id"]
    account.add_charge(gina, 3000, "usd", status="failed", failure_code="card_declined", created=now - DAY)
    account.delete_customer(gina, at=now - DAY // 2)
    return Scenario(account, alice, bob, carol, dave, erin, frank)
