"""Stripe -> DuckDB: one asset per Stripe object type, materialized in a single step (DuckDB has one writer)."""

from collections.abc import Iterator

import dagster as dg

from audiences.stripe_extract import RateLimitRetry, extract_stream
from audiences.stripe_streams import STREAMS, STREAMS_BY_NAME
from orchestration.resources import StripeResource, WarehouseResource


def stripe_asset_key(stream_name: str) -> dg.AssetKey:
    return dg.AssetKey(["stripe", stream_name])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            stripe_asset_key(stream.name),
            description=f"{stream.description} Table `{stream.table}`.",
            group_name="stripe",
            kinds={"stripe", "duckdb"},
            skippable=True,
        )
        for stream in STREAMS
    ],
    can_subset=True,
    name="stripe_extract",
)
def stripe_extract(
    context: dg.AssetExecutionContext, stripe: StripeResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """List each selected Stripe object type and upsert it into the warehouse by id."""
    client = stripe.client()
    retry = RateLimitRetry()
    with warehouse.connect() as con:
        for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
            stream = STREAMS_BY_NAME[key.path[-1]]
            result = extract_stream(con, client, stream, retry)
            total = con.execute(f"select count(*) from {stream.table}").fetchone()
            context.log.info(
                f"{stream.table}: {result.fetched} objects in {result.pages} pages, {result.changed} new or changed"
            )
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "table": stream.table,
                    "objects_fetched": result.fetched,
                    "rows_changed": result.changed,
                    "pages": result.pages,
                    "dagster/row_count": int(total[0]) if total else 0,
                    "seconds": round(result.seconds, 2),
                    "rate_limit_retries": retry.retried,
                },
            )
