"""Push customer profiles and segments to a Mailchimp audience."""

import dagster as dg

from assets.disconnect import disconnected
from assets.push_common import PROFILE_MODELS, PushConfig, run_push, skipped
from audiences.mailchimp_sync import sync_members
from orchestration.policies import FRESHNESS, OWNERS, WAREHOUSE_POOL
from orchestration.resources import MailchimpResource, WarehouseResource


@dg.asset(
    key=["mailchimp", "audience_members"],
    deps=PROFILE_MODELS,
    group_name="mailchimp",
    kinds={"mailchimp", "duckdb"},
    owners=OWNERS["mailchimp"],
    freshness_policy=FRESHNESS,
    pool=WAREHOUSE_POOL,
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
    if (off := disconnected(context, "Mailchimp")) is not None:
        return off
    if not mailchimp.configured:
        return skipped(context, "Mailchimp", "MAILCHIMP_API_KEY or MAILCHIMP_AUDIENCE_ID")
    audience_id = mailchimp.audience_id or ""
    client = mailchimp.client()
    try:
        return run_push(
            context,
            config,
            warehouse,
            "Mailchimp",
            lambda con, profiles, mapping: sync_members(
                con,
                client,
                audience_id,
                profiles,
                mapping,
                run_id=context.run_id,
                dry_run=config.dry_run,
                full_resync=config.full_resync,
                withdraw_departed=config.limit is None,
                max_connections=mailchimp.max_connections,
            ),
        )
    finally:
        client.close()
