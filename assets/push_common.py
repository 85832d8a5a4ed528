"""What the destination assets share: run config and the metadata a person reads in the UI."""

from typing import Any

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from assets.warehouse_models import warehouse_models
from audiences.redact import mask_emails
from audiences.sync_result import SyncResult

PROFILE_MODELS = [get_asset_key_for_model([warehouse_models], m) for m in ("customer_profiles", "customer_segments")]


class PushConfig(dg.Config):
    dry_run: bool = Field(
        default=False, description="Compute and record what would be sent (counts, sample payloads); send nothing."
    )
    full_resync: bool = Field(default=False, description="Ignore what was pushed before: send every record.")
    limit: int | None = Field(
        default=None, description="Only consider the first N profiles by customer id (try a sync on a few people)."
    )


def skipped(context: dg.AssetExecutionContext, destination: str, missing: str) -> dg.MaterializeResult:
    message = f"{destination} is not configured ({missing} not set): skipping the push."
    context.log.warning(message)
    return dg.MaterializeResult(metadata={"skipped": True, "skipped_reason": message})


def result_metadata(result: SyncResult) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dry_run": result.dry_run,
        **result.counts(),
        "duration_seconds": round(result.seconds, 2),
    }
    if result.rejections:
        rows = "\n".join(
            f"| {r.record_key} | {mask_emails(r.reason).replace('|', '/')} | {'yes' if r.permanent else 'no'} |"
            for r in result.rejections[:20]
        )
        metadata["rejections_sample"] = dg.MetadataValue.md(
            "| record | reason | permanent |\n| --- | --- | --- |\n" + rows
        )
    if result.planned_sample:
        metadata["planned_sample"] = dg.MetadataValue.json(
            [{k: v for k, v in p.items() if k not in {"email_address", "email"}} for p in result.planned_sample]
        )
    return metadata
