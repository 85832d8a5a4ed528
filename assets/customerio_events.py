"""Forward Stripe events (the marketing_events model) to Customer.io as person events."""

import time

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from assets.disconnect import disconnected
from assets.push_common import report_push, skipped
from assets.warehouse_models import warehouse_models
from audiences.customerio_events import CAMPAIGN_WINDOW_HOURS, forward_events
from orchestration.policies import FRESHNESS, OWNERS, WAREHOUSE_POOL
from orchestration.resources import CustomerIOResource, WarehouseResource


class EventsConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Compute and record what would be sent; send nothing.")
    max_age_hours: float | None = Field(
        default=CAMPAIGN_WINDOW_HOURS,
        description=(
            "Send only events of the last N hours (Customer.io triggers campaigns on the last 72 hours only); "
            "null sends every event not sent before, e.g. to fill people's activity history once."
        ),
    )


@dg.asset(
    key=["customerio", "person_events"],
    deps=[get_asset_key_for_model([warehouse_models], "marketing_events"), dg.AssetKey(["customerio", "people"])],
    group_name="customerio",
    kinds={"customerio", "duckdb"},
    owners=OWNERS["customerio"],
    freshness_policy=FRESHNESS,
    pool=WAREHOUSE_POOL,
    description=(
        "Stripe events worth a journey (customer created, subscription created or canceled, payment or invoice "
        "payment failed, dispute created, checkout completed) as events of the person, each sent once."
    ),
)
def customerio_person_events(
    context: dg.AssetExecutionContext,
    config: EventsConfig,
    customerio: CustomerIOResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    if (off := disconnected(context, "Customer.io")) is not None:
        return off
    if not customerio.configured:
        return skipped(context, "Customer.io", "CUSTOMERIO_SITE_ID or CUSTOMERIO_API_KEY")
    started = time.time()
    client = customerio.client()
    try:
        with warehouse.connect() as con:
            result = forward_events(
                con,
                client,
                run_id=context.run_id,
                dry_run=config.dry_run,
                max_age_hours=config.max_age_hours,
                concurrency=customerio.concurrency,
            )
            return report_push(context, con, result, started, "Customer.io events")
    finally:
        client.close()
