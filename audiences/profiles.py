"""The marts the reverse ETL pushes: profiles and their segment tags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from audiences.warehouse import registered

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


@dataclass(frozen=True)
class ProfileSource:
    """Where the profiles are: the marts (a ``limit`` takes the first N by customer id, as ``load_profiles``)."""

    profiles: str = PROFILES_TABLE
    segments: str = SEGMENTS_TABLE
    limit: int | None = None

    def table(self) -> str:
        """The profiles (with a ``limit``, the first N by customer id), as a table expression."""
        if self.limit is None:
            return self.profiles
        return f"(select * from {self.profiles} order by customer_id limit {int(self.limit)})"

    def select(self, customers: str | None = None) -> str:
        """Every profile column, and ``__tags``: the customer's segment tags, sorted. ``customers``: a query of the
        customer ids to read (all when None)."""
        only = f" where customer_id in {customers}" if customers else ""
        return (
            f"select p.*, coalesce(t.tags, []::varchar[]) as __tags from (select * from {self.table()}{only}) p "
            f"left join (select customer_id, list_sort(list(tag)) as tags from {self.segments}{only} "
            "group by customer_id) t using (customer_id)"
        )

    def columns(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """Column name -> DuckDB type of the profiles."""
        return {row[0]: str(row[1]) for row in con.execute(f"describe select * from {self.profiles}").fetchall()}

    def count(self, con: duckdb.DuckDBPyConnection) -> int:
        return int(con.execute(f"select count(*) from {self.table()}").fetchone()[0])  # type: ignore[index]


def stage_profiles(con: duckdb.DuckDBPyConnection, profiles: Sequence[Profile]) -> ProfileSource:
    """``profiles`` as temporary tables shaped like the marts (column types inferred from the values), for a
    push of profiles that are not in the warehouse (tests, scripts)."""
    names = list(dict.fromkeys(name for p in profiles for name in p.fields if name not in ("customer_id", "email")))
    table = pa.table(
        {
            "customer_id": pa.array([p.customer_id for p in profiles], pa.string()),
            "email": pa.array([p.email for p in profiles], pa.string()),
            **{name: pa.array([p.fields.get(name) for p in profiles]) for name in names},
        }
    )
    tags = pa.table(
        {
            "customer_id": pa.array([p.customer_id for p in profiles for _ in p.tags], pa.string()),
            "tag": pa.array([tag for p in profiles for tag in p.tags], pa.string()),
        }
    )
    for name, data in (("_staged_profiles", table), ("_staged_segments", tags)):
        with registered(con, "_staging", data):
            con.execute(f"create or replace temp table {name} as select * from _staging")
    return ProfileSource("_staged_profiles", "_staged_segments")
