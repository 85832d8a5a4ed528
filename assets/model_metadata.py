"""What the UI shows of a dbt model after a build: its row count and change, a preview, segment sizes.

dbt-duckdb holds the warehouse file while it builds, so the figures are read once the build is over (DuckDB
allows one writing process), and added to the build's events before they are reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import duckdb

from audiences.redact import mask_emails

PREVIEW_ROWS = 10
PREVIEW_MODELS = frozenset({"customer_profiles", "customer_segments", "marketing_events"})
SEGMENTS_MODEL = "customer_segments"
# Personal data stays out of metadata: columns whose name says so are left out of previews.
PERSONAL = ("email", "name", "phone", "address")


def relation(node: Mapping[str, Any]) -> str | None:
    """``schema.alias`` of a node dbt materializes as a relation; None for ephemeral models and tests."""
    if node.get("resource_type") not in ("model", "seed", "snapshot"):
        return None
    if (node.get("config") or {}).get("materialized") == "ephemeral":
        return None
    return f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'


def previous_row_count(instance: dg.DagsterInstance, key: dg.AssetKey, *, other_than_run: str) -> int | None:
    """``dagster/row_count`` of the latest materialization of ``key`` by a run other than ``other_than_run``."""
    for record in instance.fetch_materializations(key, limit=5).records:
        if record.run_id == other_than_run or record.asset_materialization is None:
            continue
        value = record.asset_materialization.metadata.get("dagster/row_count")
        if value is not None:
            return int(value.value)  # type: ignore[arg-type]
    return None


def model_metadata(con: duckdb.DuckDBPyConnection, node: Mapping[str, Any], previous: int | None) -> dict[str, Any]:
    """Row count and its change since the last materialization; a preview of the marts; segment sizes."""
    table = relation(node)
    if table is None:
        return {}
    count = int(con.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]
    metadata: dict[str, Any] = {"dagster/row_count": count}
    if previous is not None:
        metadata["row_count_change"] = count - previous
    if node["name"] in PREVIEW_MODELS:
        metadata["preview"] = dg.MetadataValue.md(preview(con, table))
    if node["name"] == SEGMENTS_MODEL:
        for tag, size in con.execute(f"select tag, count(*) from {table} group by tag order by tag").fetchall():
            metadata[f"segment/{tag}"] = int(size)  # numbers: the UI plots each over time
    return metadata


def preview(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The first rows as a markdown table, without the columns that hold personal data."""
    cursor = con.execute(f"select * from {table} limit 0")
    columns = [d[0] for d in cursor.description if not any(word in d[0].lower() for word in PERSONAL)]
    if not columns:
        return "(no columns without personal data)"
    names = ", ".join(f'"{c}"' for c in columns)
    rows = con.execute(f"select {names} from {table} order by all limit {PREVIEW_ROWS}").fetchall()
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "" if value is None else mask_emails(str(value)).replace("|", "/").replace("\n", " ")[:80]


def with_model_metadata(
    events: Iterable[Any],
    nodes: Mapping[str, Mapping[str, Any]],
    con: duckdb.DuckDBPyConnection,
    previous: Mapping[str, int | None],
) -> list[Any]:
    """``events`` of a dbt build, each model's output with its figures added (``previous``: row counts by
    unique id, as last materialized)."""
    out = []
    for event in events:
        if isinstance(event, dg.Output | dg.AssetMaterialization):
            unique_id = event.metadata.get("unique_id")
            node = nodes.get(unique_id.value) if unique_id is not None else None  # type: ignore[union-attr]
            if node is not None:
                extra = model_metadata(con, node, previous.get(node["unique_id"]))
                event = event.with_metadata({**event.metadata, **extra})
        out.append(event)
    return out
