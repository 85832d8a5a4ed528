"""DuckDB warehouse: connections and bulk upserts of Arrow batches."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """The warehouse file as an absolute path (dbt runs in another directory)."""
    return Path(path).expanduser().resolve()


class WarehouseBusyError(RuntimeError):
    """Another process has the warehouse open: DuckDB allows one writing process (or several readers)."""


def busy_message(target: Path, error: duckdb.Error) -> str:
    holder = _LOCK_HOLDER.search(str(error))
    return (
        f"The warehouse {target} is open in another process{f' ({holder.group(1)})' if holder else ''}, and DuckDB "
        "allows one writing process. Runs of this project wait for each other (every asset is in the "
        "`duckdb_warehouse` pool, limited to one run at a time in dagster_home/dagster.yaml), so the other process "
        "is outside them: a second Dagster instance, a `dagster job execute` from a shell, a notebook or a SQL "
        "client holding the file. Close it or let it finish, then launch the run again."
    )


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*?\((PID \d+)\)")


def _open(target: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(target), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseBusyError(busy_message(target, error)) from None
        raise


_UMASK_LOCK = threading.Lock()
_open_writers: list[int] = []  # while write connections are open: the umask to restore when the last one closes


@contextmanager
def _owner_only_files() -> Iterator[None]:
    """The process creates files readable by their owner only while the block runs: DuckDB creates its
    write-ahead log (``.wal``, the pending writes: personal data) with the process umask. Nested and concurrent
    blocks share the setting; the last one out restores the umask the first one found."""
    with _UMASK_LOCK:
        previous = os.umask(0o077)
        _open_writers.append(previous if not _open_writers else _open_writers[0])
    try:
        yield
    finally:
        with _UMASK_LOCK:
            original = _open_writers.pop()
            if not _open_writers:
                os.umask(original)


def _make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents readable by the owner only (existing ones are left alone)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        os.chmod(path, 0o700)


@contextmanager
def connect(path: str | os.PathLike[str], *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, creating its folder (and missing parents) and file readable by the owner only when
    missing; while a write connection is open, files the process creates (DuckDB's ``.wal``) are owner-only too.

    Raises :class:`WarehouseBusyError`, saying what to do, when another process holds the file."""
    target = resolve_path(path)
    if read_only:
        con = _open(target, read_only=True)
        try:
            yield con
        finally:
            con.close()
        return
    _make_private_dirs(target.parent)
    with _owner_only_files():
        created = not target.exists()
        con = _open(target, read_only=False)
        try:
            if created:
                os.chmod(target, 0o600)
            wal = target.with_name(target.name + ".wal")
            if wal.exists():  # left by a process that died (dbt's own connection, say), with its umask
                os.chmod(wal, 0o600)
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
