"""Asset checks beside dbt's tests: a sudden drop in row count, and every profile accounted for at each destination.

- ``row_count_drop`` (blocking): the table has fewer rows than the last materialization from another run by more
  than ``ROW_COUNT_DROP_MAX_PERCENT`` (default 10). An extract that lost half the customers, or a model edit
  that filters too much, stops the run before anything is pushed.
- ``every_profile_accounted_for`` (warning): after a push, each profile is at the destination or has a recorded
  rejection with its reason (``sync.rejections``). Profiles left over mean a run with a ``limit``, a push that
  was skipped, or a bug.
"""

from collections.abc import Sequence

import dagster as dg
import duckdb

from assets.model_metadata import previous_row_count
from audiences.mailchimp_client import subscriber_hash
from audiences.payload_sql import contacts_sql, non_ascii_email_keys
from audiences.profiles import ProfileSource
from audiences.warehouse import registered
from orchestration.policies import WAREHOUSE_POOL
from orchestration.resources import WarehouseResource
from orchestration.settings import env_float

DEFAULT_ROW_COUNT_DROP_MAX_PERCENT = 10.0
SAMPLE = 10


def max_drop_percent() -> float:
    value = env_float("ROW_COUNT_DROP_MAX_PERCENT")
    return DEFAULT_ROW_COUNT_DROP_MAX_PERCENT if value is None else value


def judge_row_count(current: int, previous: int | None, max_percent: float) -> dg.AssetCheckResult:
    """Passed unless ``current`` is more than ``max_percent`` below ``previous``."""
    if previous is None or previous == 0:
        return dg.AssetCheckResult(passed=True, metadata={"row_count": current, "previous_row_count": previous or 0})
    drop = (previous - current) / previous * 100
    return dg.AssetCheckResult(
        passed=drop <= max_percent,
        metadata={
            "row_count": current,
            "previous_row_count": previous,
            "drop_percent": round(max(drop, 0.0), 2),
            "max_drop_percent": max_percent,
        },
        description=None
        if drop <= max_percent
        else f"{previous - current:,} rows fewer than the last materialization ({drop:.1f}% > {max_percent:g}%)",
    )


def row_count_drop_check(key: Sequence[str], table: str) -> dg.AssetChecksDefinition:
    asset_key = dg.AssetKey(list(key))

    @dg.asset_check(
        asset=asset_key,
        name="row_count_drop",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"`{table}` did not lose more than ROW_COUNT_DROP_MAX_PERCENT (10) % of its rows since the "
        "last materialization by another run; blocking: nothing downstream runs when it did.",
    )
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            current = int(con.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]
        previous = previous_row_count(context.instance, asset_key, other_than_run=context.run.run_id)
        return judge_row_count(current, previous, max_drop_percent())

    return check


# A profile is accounted for when its record was accepted or refused with a reason: any one of these holds.
# Mailchimp keys contacts by subscriber hash (``__key``, made as the push makes it) and names the customer in the
# payload; refusals name the customer or the contact. Each is its own `exists`, so the query is a chain of
# anti-joins (an `or` of correlated subqueries is not decorrelated: at 100,000 profiles it took minutes instead of
# a fraction of a second).
_ACCOUNTED: dict[str, tuple[str, ...]] = {
    "mailchimp": (
        "select 1 from sync.pushed_records r where r.destination = 'mailchimp'"
        " and json_extract_string(r.payload, '$.customer_id') = p.customer_id",
        "select 1 from sync.pushed_records r where r.destination = 'mailchimp' and r.record_key = p.__key",
        "select 1 from sync.rejections j where j.destination = 'mailchimp' and j.record_key = p.customer_id",
        "select 1 from sync.rejections j where j.destination = 'mailchimp' and j.record_key = p.__key",
    ),
    "customerio": (
        "select 1 from sync.pushed_records r where r.destination = 'customerio' and r.record_key = p.customer_id",
        "select 1 from sync.rejections j where j.destination = 'customerio' and j.record_key = p.customer_id",
    ),
}


def unaccounted_profiles(con: duckdb.DuckDBPyConnection, destination: str) -> tuple[int, list[str]]:
    """How many profiles are neither at ``destination`` nor rejected by it, and a few of their customer ids."""
    unaccounted = " and ".join(f"not exists ({condition})" for condition in _ACCOUNTED[destination])
    source = ProfileSource()
    # the profiles with their contact keys, by the push's own rules (trimming, non-ASCII addresses)
    with registered(con, "_email_keys", non_ascii_email_keys(con, source, subscriber_hash)):
        profiles = contacts_sql(source, source.columns(con), "_email_keys")
        query = f"select customer_id from ({profiles}) p where {unaccounted} order by customer_id"
        rows = con.execute(query).fetchall()
    return len(rows), [row[0] for row in rows[:SAMPLE]]


def pushed_before(con: duckdb.DuckDBPyConnection, destination: str) -> bool:
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'sync' and table_name = 'runs'"
    ).fetchone()
    if not exists or not exists[0]:
        return False
    row = con.execute("select count(*) from sync.runs where destination = ? and not dry_run", [destination]).fetchone()
    return bool(row and row[0])


def reconciliation_check(key: Sequence[str], destination: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(list(key)),
        name="every_profile_accounted_for",
        pool=WAREHOUSE_POOL,
        description=f"Every profile of `marts.customer_profiles` is at {destination} or has a recorded rejection "
        "with its reason (`sync.rejections`).",
    )
    def check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            if not pushed_before(con, destination):
                return dg.AssetCheckResult(passed=True, metadata={"pushed": False}, description="not pushed yet")
            missing, sample = unaccounted_profiles(con, destination)
        return dg.AssetCheckResult(
            passed=missing == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"unaccounted_profiles": missing, "sample_customer_ids": dg.MetadataValue.json(sample)},
            description=None if missing == 0 else f"{missing:,} profiles neither at {destination} nor rejected",
        )

    return check


asset_checks = [
    row_count_drop_check(["stripe", "customers"], "stripe.customers"),
    row_count_drop_check(["marts", "customer_profiles"], "marts.customer_profiles"),
    reconciliation_check(["mailchimp", "audience_members"], "mailchimp"),
    reconciliation_check(["customerio", "people"], "customerio"),
]
