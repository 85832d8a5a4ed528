"""The Mailchimp store's settings (the audience and key are MailchimpResource's)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

DEFAULT_STORE_CURRENCY = "USD"


class MailchimpStoreResource(dg.ConfigurableResource):
    store_id: str | None = Field(
        default=None, description="MAILCHIMP_STORE_ID: the store of this Stripe account; unset, no store is synced."
    )
    currency_code: str = Field(
        default=DEFAULT_STORE_CURRENCY,
        description="MAILCHIMP_STORE_CURRENCY: the store's ISO 4217 currency; variant prices are converted to it.",
    )
    name: str = Field(default="Stripe", description="MAILCHIMP_STORE_NAME: the store's name in Mailchimp.")
