"""What the assets share: who owns them, when they are overdue, and the pool that keeps DuckDB to one writer."""

from __future__ import annotations

import datetime as dt

import dagster as dg

# Every asset that opens the warehouse is in this pool. dagster_home/dagster.yaml limits pools to one run at a
# time (granularity: run), so a run launched from the UI while the nightly run is going waits in the queue
# instead of failing on DuckDB's lock.
WAREHOUSE_POOL = "duckdb_warehouse"

# Marts and destinations are overdue when their last materialization is older than this: the nightly schedule
# missed a night and a half.
OVERDUE_AFTER = dt.timedelta(hours=36)
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=OVERDUE_AFTER)

OWNERS = {
    "stripe": ["team:data-platform"],  # the extract and its credentials
    "warehouse": ["team:analytics-engineering"],  # the dbt models (a model's meta `dagster: owners` wins)
    "mailchimp": ["team:lifecycle-marketing"],  # what reaches the audiences
    "customerio": ["team:lifecycle-marketing"],
}
