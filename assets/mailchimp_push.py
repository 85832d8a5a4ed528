"""Push customer profiles and segments to a Mailchimp audience."""

import time

import dagster as dg

from assets.push_common import PROFILE_MODELS, PushConfig, result_metadata, skipped
from audiences.field_mapping import load_mapping
from audiences.mailchimp_sync import DESTINATION, sync_members
from audiences.profiles import load_profiles
from audiences.sync_state import record_run
from orchestration.dbt_project import dbt_project
from orchestration.resources import MailchimpResource, WarehouseResource


@dg.asset(
    key=["mailchimp", "audience_members"],
    deps=PROFILE_MODELS,
    group_name="mailchimp",
    kinds={"mailchimp"},
    description=(
        "Audience members (one per distinct email) with merge fields and segment tags. New members are "
        "subscribed only with marketing consent, otherwise transactional; existing members keep their status."
    ),
)
def mailchimp_audience_members(
    context: dg.AssetExecutionContext,
    config: PushConfig,
    mailchimp: MailchimpResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    if not mailchimp.configured:
        return skipped(context, "Mailchimp", "MAILCHIMP_API_KEY or MAILCHIMP_AUDIENCE_ID")
    assert mailchimp.audience_id
    started = time.time()
    mapping = load_mapping(dbt_project.manifest_path)
    client = mailchimp.client()
    try:
        with warehouse.connect() as con:
            profiles = load_profiles(con, limit=config.limit)
            result = sync_members(
                con,
                client,
                mailchimp.audience_id,
                profiles,
                mapping,
                run_id=context.run_id,
                dry_run=config.dry_run,
                full_resync=config.full_resync,
                max_connections=mailchimp.max_connections,
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
        f"Mailchimp: {result.considered} profiles, {result.unchanged} unchanged, {result.created} created, "
        f"{result.updated} updated, {result.rejected} rejected, {result.api_calls} API calls"
    )
    return dg.MaterializeResult(metadata=result_metadata(result))
