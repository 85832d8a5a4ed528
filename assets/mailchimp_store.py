"""Push the store marts (products, customers, orders) to the Mailchimp e-commerce store of the Stripe account."""

import time

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from assets.disconnect import disconnected
from assets.push_common import PushConfig, result_metadata, skipped
from assets.warehouse_models import warehouse_models
from audiences.mailchimp_store_client import MailchimpStoreClient
from audiences.mailchimp_store_sync import StoreSettings, sync_store
from audiences.sync_state import record_run
from orchestration.mailchimp_store_resource import MailchimpStoreResource
from orchestration.policies import FRESHNESS, OWNERS, WAREHOUSE_POOL
from orchestration.resources import MailchimpResource, WarehouseResource

STORE_MODELS = [
    get_asset_key_for_model([warehouse_models], m)
    for m in ("store_products", "store_product_variants", "store_customers", "store_orders", "store_order_lines")
]


@dg.asset(
    key=["mailchimp", "store"],
    # after the audience push: contacts get their merge fields and status from it before the store adds any
    deps=[*STORE_MODELS, dg.AssetKey(["mailchimp", "audience_members"])],
    group_name="mailchimp",
    kinds={"mailchimp", "duckdb"},
    owners=OWNERS["mailchimp"],
    freshness_policy=FRESHNESS,
    pool=WAREHOUSE_POOL,
    description=(
        "The Stripe account's e-commerce store on the audience: products and variants (Stripe products and "
        "prices), shoppers, and orders (succeeded charges, updated by refunds). Automations are paused "
        "(is_syncing) during the first backfill."
    ),
)
def mailchimp_store(
    context: dg.AssetExecutionContext,
    config: PushConfig,
    mailchimp: MailchimpResource,
    mailchimp_store: MailchimpStoreResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    if (off := disconnected(context, "Mailchimp")) is not None:
        return off
    if not mailchimp.configured:
        return skipped(context, "Mailchimp", "MAILCHIMP_API_KEY or MAILCHIMP_AUDIENCE_ID")
    if not mailchimp_store.store_id:
        return skipped(context, "The Mailchimp store", "MAILCHIMP_STORE_ID")
    started = time.time()
    settings = StoreSettings(
        store_id=mailchimp_store.store_id,
        list_id=mailchimp.audience_id or "",
        currency_code=mailchimp_store.currency_code.upper(),
        name=mailchimp_store.name,
    )
    client = mailchimp.client()
    try:
        with warehouse.connect() as con:
            result = sync_store(
                con,
                MailchimpStoreClient(client, settings.store_id),
                settings,
                run_id=context.run_id,
                dry_run=config.dry_run,
                full_resync=config.full_resync,
                limit=config.limit,
                max_connections=mailchimp.max_connections,
            )
            for part in result.parts.values():
                record_run(
                    con,
                    run_id=context.run_id,
                    destination=part.destination,
                    started_at=started,
                    dry_run=part.dry_run,
                    counts=part.counts(),
                    planned=part.planned,
                    sample=part.planned_sample if part.dry_run else None,
                )
    finally:
        client.close()
    total = result.total
    context.log.info(
        f"Mailchimp store {settings.store_id}{' (dry run)' if total.dry_run else ''}"
        f"{' (backfill: automations paused)' if result.backfill else ''}: "
        + "; ".join(
            f"{name.removeprefix('mailchimp_store_')} {p.considered} considered, {p.unchanged} unchanged, "
            f"{p.created} created, {p.updated} updated, {p.rejected} rejected"
            for name, p in result.parts.items()
        )
        + f"; {total.api_calls} API calls"
    )
    metadata = result_metadata(total)
    metadata.update(
        store_id=settings.store_id,
        store_created=result.store_created,
        backfill=result.backfill,
        by_entity=dg.MetadataValue.json(
            {name.removeprefix("mailchimp_store_"): p.counts() for name, p in result.parts.items()}
        ),
    )
    return dg.MaterializeResult(metadata=metadata)
