"""DuckDB warehouse: connections and bulk upserts of Arrow batches."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """The warehouse file as an absolute path (dbt runs in another directory)."""
    return Path(path).expanduser().resolve()


@contextmanager
def connect(path: str | os.PathLike[str], *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, creating its folder and file (readable by the owner only) when missing."""
    target = resolve_path(path)
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            old_umask = os.umask(0o077)
            try:
                con = duckdb.connect(str(target))
            finally:
                os.umask(old_umask)
            os.chmod(target, 0o600)
        else:
            con = duckdb.connect(str(target))
    else:
        con = duckdb.connect(str(target), read_only=True)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """``table`` visible to SQL as ``name`` for the block.

    When the block fails, DuckDB may refuse the unregister too (the transaction is aborted): that second error
    is dropped so the first one, the cause, is what the caller sees.
    """
    con.register(name, table)
    try:
        yield
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)
        raise
    con.unregister(name)


def upsert_arrow(
    con: duckdb.DuckDBPyConnection,
    table: str,
    batch: pa.Table,
    *,
    key: str = "id",
    select_sql: str = "*",
    same_sql: str = "t.raw = b.raw::JSON",
    columns: list[str] | None = None,
) -> int:
    """Insert or replace ``batch`` rows into ``table`` by its primary key, in one statement.

    Rows repeating a key inside the batch keep the last occurrence (DuckDB refuses duplicate keys within
    one INSERT OR REPLACE). Rows whose ``raw`` equals the stored one are left alone, so re-reading an unchanged
    object changes nothing (``same_sql`` says when a stored row ``t`` equals a batch row ``b``).
    ``select_sql`` lists the target columns' expressions (e.g. ``raw::JSON as raw``).
    Returns the number of rows inserted or replaced.
    """
    if batch.num_rows == 0:
        return 0
    with registered(con, "_upsert_batch", batch):
        row = con.execute(
            f"""
            insert or replace into {table} {"(" + ", ".join(columns) + ")" if columns else ""}
            select {select_sql} from (
                select *, row_number() over (partition by {key} order by _batch_pos desc) as _rank
                from (select *, row_number() over () as _batch_pos from _upsert_batch)
            ) as b
            where _rank = 1
              and not exists (select 1 from {table} as t where t.{key} = b.{key} and {same_sql})
            """
        ).fetchone()
    return int(row[0]) if row else 0
