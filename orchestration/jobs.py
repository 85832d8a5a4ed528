"""Jobs operators launch from the Dagster UI (and the schedule runs)."""

from __future__ import annotations

import dagster as dg

nightly_sync = dg.define_asset_job(
    "nightly_sync",
    selection=dg.AssetSelection.all(),
    description="Extract Stripe, build the dbt models (tests included), push to Mailchimp and Customer.io.",
)

extract_stripe = dg.define_asset_job(
    "extract_stripe",
    selection=dg.AssetSelection.groups("stripe"),
    description="Only pull Stripe into the warehouse.",
)

push_audiences = dg.define_asset_job(
    "push_audiences",
    selection=dg.AssetSelection.groups("mailchimp", "customerio"),
    description=(
        "Only push the current profiles (and the Mailchimp store) to the destinations (dry_run / full_resync in the "
        "run config)."
    ),
)
