"""Push customer profiles and segments to Customer.io people."""

import time

import dagster as dg

from assets.push_common import PROFILE_MODELS, PushConfig, result_metadata, skipped
from audiences.customerio_sync import DESTINATION, sync_people
from audiences.field_mapping import load_mapping
from audiences.profiles import load_profiles
from audiences.sync_state import record_run
from orchestration.dbt_project import dbt_project
from orchestration.resources import CustomerIOResource, WarehouseResource


@dg.asset(
    key=["customerio", "people"],
    deps=PROFILE_MODELS,
    group_name="customerio",
    kinds={"customerio"},
    description="People identified by Stripe customer id, with email, profile attributes and segments.",
)
def customerio_people(
    context: dg.AssetExecutionContext,
    config: PushConfig,
    customerio: CustomerIOResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    if not customerio.configured:
        return skipped(context, "Customer.io", "CUSTOMERIO_SITE_ID or CUSTOMERIO_API_KEY")
    started = time.time()
    mapping = load_mapping(dbt_project.manifest_path)
    client = customerio.client()
    try:
        with warehouse.connect() as con:
            profiles = load_profiles(con, limit=config.limit)
            result = sync_people(
                con,
                client,
                profiles,
                mapping,
                run_id=context.run_id,
                dry_run=config.dry_run,
                full_resync=config.full_resync,
            )
            record_run(
                con,
                run_id=context.run_id,
                destination=DESTINATION,
                started_at=started,
                dry_run=config.dry_run,
                counts=result.counts(),
            )
    finally:
        client.close()
    context.log.info(
        f"Customer.io: {result.considered} profiles, {result.unchanged} unchanged, {result.created} created, "
        f"{result.updated} updated, {result.rejected} rejected, {result.api_calls} API calls"
    )
    return dg.MaterializeResult(metadata=result_metadata(result))
