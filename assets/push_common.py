"""What the destination assets share: run config and the metadata a person reads in the UI."""

import time
from collections.abc import Callable
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from assets.warehouse_models import warehouse_models
from audiences.field_mapping import FieldMapping, load_mapping
from audiences.profiles import ProfileSource
from audiences.redact import mask_emails
from audiences.sync_result import SyncResult
from audiences.sync_state import record_run
from orchestration.dbt_project import dbt_project
from orchestration.resources import WarehouseResource

Sync = Callable[[duckdb.DuckDBPyConnection, ProfileSource, FieldMapping], SyncResult]

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
        "send_seconds": round(result.send_seconds, 2),
    }
    if result.rejections:
        rows = "\n".join(
            f"| {r.record_key} | {mask_emails(r.reason).replace('|', '/')} | {'yes' if r.permanent else 'no'} |"
            for r in result.rejections[:20]
        )
        metadata["rejections_sample"] = dg.MetadataValue.md(
            "| record | reason | permanent |\n| --- | --- | --- |\n" + rows
        )
    if result.planned:
        metadata["planned_operations"] = dg.MetadataValue.json(result.planned)
    if result.planned_sample:
        metadata["planned_sample"] = dg.MetadataValue.json(_without_emails(result.planned_sample))
    return metadata


def _without_emails(value: Any) -> Any:
    """``value`` without its email fields, at any depth: run metadata is no place for personal data."""
    if isinstance(value, dict):
        return {k: _without_emails(v) for k, v in value.items() if k not in {"email_address", "email"}}
    if isinstance(value, list):
        return [_without_emails(v) for v in value]
    return value


def run_push(
    context: dg.AssetExecutionContext,
    config: PushConfig,
    warehouse: WarehouseResource,
    label: str,
    sync: Sync,
) -> dg.MaterializeResult:
    """Run ``sync`` on the profiles of the warehouse with the column mapping, record the run, report it."""
    started = time.time()
    mapping = load_mapping(dbt_project.manifest_path)
    with warehouse.connect() as con:
        result = sync(con, ProfileSource(limit=config.limit), mapping)
        return report_push(context, con, result, started, label)


def report_push(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    result: SyncResult,
    started: float,
    label: str,
) -> dg.MaterializeResult:
    """Record the push in ``sync.runs``, log a line, and return its metadata."""
    record_run(
        con,
        run_id=context.run_id,
        destination=result.destination,
        started_at=started,
        dry_run=result.dry_run,
        counts=result.counts(),
        planned=result.planned,
        sample=result.planned_sample if result.dry_run else None,
    )
    context.log.info(
        f"{label}{' (dry run)' if result.dry_run else ''}: {result.considered} considered, {result.unchanged} "
        f"unchanged, {result.created} created, {result.updated} updated, {result.too_old} too old, "
        f"{result.rejected} rejected, {result.api_calls} API calls"
    )
    return dg.MaterializeResult(metadata=result_metadata(result))
