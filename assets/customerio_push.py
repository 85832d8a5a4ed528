"""Push customer profiles and segments to Customer.io people."""

import dagster as dg

from assets.disconnect import disconnected
from assets.push_common import PROFILE_MODELS, PushConfig, run_push, skipped
from audiences.customerio_sync import sync_people
from orchestration.policies import FRESHNESS, OWNERS, WAREHOUSE_POOL
from orchestration.resources import CustomerIOResource, WarehouseResource


@dg.asset(
    key=["customerio", "people"],
    deps=PROFILE_MODELS,
    group_name="customerio",
    kinds={"customerio", "duckdb"},
    owners=OWNERS["customerio"],
    freshness_policy=FRESHNESS,
    pool=WAREHOUSE_POOL,
    description="People identified by Stripe customer id, with email, profile attributes and segments.",
)
def customerio_people(
    context: dg.AssetExecutionContext,
    config: PushConfig,
    customerio: CustomerIOResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    if (off := disconnected(context, "Customer.io")) is not None:
        return off
    if not customerio.configured:
        return skipped(context, "Customer.io", "CUSTOMERIO_SITE_ID or CUSTOMERIO_API_KEY")
    client = customerio.client()
    try:
        return run_push(
            context,
            config,
            warehouse,
            "Customer.io",
            lambda con, profiles, mapping: sync_people(
                con,
                client,
                profiles,
                mapping,
                run_id=context.run_id,
                dry_run=config.dry_run,
                full_resync=config.full_resync,
                withdraw_departed=config.limit is None,
                concurrency=customerio.concurrency,
            ),
        )
    finally:
        client.close()
