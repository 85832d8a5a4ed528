"""Where each Stripe stream stands: its events cursor and the backfill windows already landed.

Cursors are unix seconds of Stripe's clock (event ``created``), never this machine's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from audiences.warehouse import registered

SCHEMA_SQL = (
    "create schema if not exists sync",
    """
    create table if not exists sync.stripe_streams (
        stream varchar primary key,
        events_cursor bigint,          -- events created at or after this (minus an overlap) are still to apply
        backfill_cursor bigint,        -- set while a backfill runs: the events cursor it will hand over
        last_backfill_at timestamptz,
        updated_at timestamptz not null
    )
    """,
    """
    create table if not exists sync.stripe_backfill_windows (
        stream varchar not null,
        backfill_cursor bigint not null,
        created_gte bigint not null,
        created_lt bigint not null,
        objects integer not null,
        completed_at timestamptz not null
    )
    """,
    """
    create table if not exists sync.stripe_backfill_listed (
        stream varchar not null,
        backfill_cursor bigint not null,
        id varchar not null
    )
    """,
)

CREATED_MIN = 0
CREATED_MAX = 2**33  # beyond any `created` Stripe will hand out for centuries


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for sql in SCHEMA_SQL:
        con.execute(sql)


@dataclass
class StreamState:
    stream: str
    events_cursor: int | None = None
    backfill_cursor: int | None = None


def load(con: duckdb.DuckDBPyConnection, stream: str) -> StreamState:
    ensure_schema(con)
    row = con.execute(
        "select events_cursor, backfill_cursor from sync.stripe_streams where stream = ?", [stream]
    ).fetchone()
    return StreamState(stream, *row) if row else StreamState(stream)


def save(con: duckdb.DuckDBPyConnection, state: StreamState, *, backfill_done: bool = False) -> None:
    con.execute(
        """
        insert into sync.stripe_streams values (?, ?, ?, case when ? then now() end, now())
        on conflict (stream) do update set
            events_cursor = excluded.events_cursor,
            backfill_cursor = excluded.backfill_cursor,
            last_backfill_at = coalesce(excluded.last_backfill_at, sync.stripe_streams.last_backfill_at),
            updated_at = now()
        """,
        [state.stream, state.events_cursor, state.backfill_cursor, backfill_done],
    )


def record_windows(con: duckdb.DuckDBPyConnection, windows: list[tuple[str, int, int, int, int]]) -> None:
    """Record completed ``(stream, backfill_cursor, created_gte, created_lt, objects)`` ranges."""
    if windows:
        con.executemany("insert into sync.stripe_backfill_windows values (?, ?, ?, ?, ?, now())", windows)


def record_listed(con: duckdb.DuckDBPyConnection, stream: str, backfill_cursor: int, ids: pa.Table) -> None:
    """Remember the ids a backfill listed (a one-column ``id`` table), to tombstone the rest when it completes."""
    with registered(con, "_listed_ids", ids):
        con.execute(
            "insert into sync.stripe_backfill_listed select ?, ?, id from _listed_ids", [stream, backfill_cursor]
        )


def tombstone_unlisted(con: duckdb.DuckDBPyConnection, table: str, stream: str, backfill_cursor: int) -> int:
    """After a complete backfill: rows it did not list were deleted in Stripe while no run read their events.

    They stay, flagged ``is_deleted``; the deletion happened at some point before the backfill started, so
    ``deleted_at`` is that moment (Stripe's clock), the latest time it can have happened.
    """
    row = con.execute(
        f"""
        update {table} set is_deleted = true, deleted_at = to_timestamp(?)
        where not coalesce(is_deleted, false)
          and id not in (
            select id from sync.stripe_backfill_listed where stream = ? and backfill_cursor = ?
          )
        """,
        [backfill_cursor, stream, backfill_cursor],
    ).fetchone()
    return int(row[0]) if row else 0


def remaining_ranges(con: duckdb.DuckDBPyConnection, stream: str, backfill_cursor: int) -> list[tuple[int, int]]:
    """``[CREATED_MIN, CREATED_MAX)`` less the windows this backfill already landed."""
    done = con.execute(
        "select created_gte, created_lt from sync.stripe_backfill_windows "
        "where stream = ? and backfill_cursor = ? order by 1, 2",
        [stream, backfill_cursor],
    ).fetchall()
    ranges: list[tuple[int, int]] = []
    position = CREATED_MIN
    for gte, lt in done:
        if gte > position:
            ranges.append((position, gte))
        position = max(position, lt)
    if position < CREATED_MAX:
        ranges.append((position, CREATED_MAX))
    return ranges


def clear_windows(con: duckdb.DuckDBPyConnection, stream: str) -> None:
    """Forget a backfill's progress: the windows it landed and the ids it listed."""
    con.execute("delete from sync.stripe_backfill_windows where stream = ?", [stream])
    con.execute("delete from sync.stripe_backfill_listed where stream = ?", [stream])
