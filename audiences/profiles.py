"""Read the marts the reverse ETL pushes: profiles and their segment tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

PROFILES_TABLE = "marts.customer_profiles"
SEGMENTS_TABLE = "marts.customer_segments"


@dataclass
class Profile:
    customer_id: str
    fields: dict[str, Any]
    tags: list[str]

    @property
    def email(self) -> str | None:
        return self.fields.get("email")


def load_profiles(con: duckdb.DuckDBPyConnection, limit: int | None = None) -> list[Profile]:
    """Every profile in customer id order (stable, so a ``limit`` picks the same people each time)."""
    sql = f"select * from {PROFILES_TABLE} order by customer_id"
    if limit is not None:
        sql += f" limit {int(limit)}"
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    tags: dict[str, list[str]] = {}
    for customer_id, tag in con.execute(
        f"select customer_id, tag from {SEGMENTS_TABLE} order by customer_id, tag"
    ).fetchall():
        tags.setdefault(customer_id, []).append(tag)
    return [Profile(row["customer_id"], row, tags.get(row["customer_id"], [])) for row in rows]
