"""Stripe -> DuckDB: one asset per Stripe object type (and the events), materialized in one step.

One step because DuckDB has one writer: inside it, streams and `created` windows are fetched concurrently and
landed by a single writer.
"""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from audiences.stripe_extract import DEFAULT_MEMORY_LIMIT, extract
from audiences.stripe_streams import STREAMS, STREAMS_BY_NAME
from orchestration.policies import OWNERS, WAREHOUSE_POOL
from orchestration.resources import StripeResource, WarehouseResource


class ExtractConfig(dg.Config):
    full_refresh: bool = Field(
        default=False, description="Re-list every object through the list endpoints instead of reading events."
    )
    workers: int = Field(default=8, description="Concurrent list requests during a backfill (within the rate limits).")
    memory_limit: str = Field(
        default=DEFAULT_MEMORY_LIMIT,
        description="DuckDB's memory_limit while extracting (it spills to disk beyond). Raise it if a run stops "
        "with 'DuckDB needed more memory'.",
    )


def stripe_asset_key(stream_name: str) -> dg.AssetKey:
    return dg.AssetKey(["stripe", stream_name])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            stripe_asset_key(stream.name),
            description=f"{stream.description} Table `{stream.table}`.",
            group_name="stripe",
            kinds={"stripe", "duckdb"},
            owners=OWNERS["stripe"],
            skippable=True,
        )
        for stream in STREAMS
    ],
    can_subset=True,
    name="stripe_extract",
    pool=WAREHOUSE_POOL,
)
def stripe_extract(
    context: dg.AssetExecutionContext,
    config: ExtractConfig,
    stripe: StripeResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.MaterializeResult]:
    """Backfill what needs it, then apply the events since each stream's cursor."""
    streams = [STREAMS_BY_NAME[key.path[-1]] for key in context.selected_asset_keys]
    streams.sort(key=lambda s: s.name)
    reader = stripe.reader()
    with warehouse.connect() as con:
        report = extract(
            con,
            reader,
            streams,
            full_refresh=config.full_refresh,
            workers=config.workers,
            on_progress=None,
            memory_limit=config.memory_limit,
        )
        context.log.info(
            f"Stripe: {report.requests} requests ({report.retries} retried), {report.events_read} events read "
            f"in {report.seconds:.1f}s ("
            + ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in report.timings.items())
            + ")"
        )
        for stream in streams:
            entry = report.streams[stream.name]
            total = con.execute(f"select count(*) from {stream.table}").fetchone()
            context.log.info(
                f"{stream.table}: {entry.mode}, {entry.fetched} listed, {entry.changed} new or changed"
                + (f", {entry.tombstoned} no longer in Stripe (tombstoned)" if entry.tombstoned else "")
            )
            yield dg.MaterializeResult(
                asset_key=stripe_asset_key(stream.name),
                metadata={
                    "table": stream.table,
                    "mode": entry.mode,
                    "objects_listed": entry.fetched,
                    "rows_changed": entry.changed,
                    "rows_tombstoned": entry.tombstoned,
                    "dagster/row_count": int(total[0]) if total else 0,
                    "events_cursor": entry.cursor or 0,
                    "run_requests": report.requests,
                    "run_seconds": round(report.seconds, 2),
                    "run_timings": dg.MetadataValue.json({k: round(v, 1) for k, v in report.timings.items()}),
                },
            )
