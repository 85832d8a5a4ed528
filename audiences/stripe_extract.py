"""One extraction run: backfill the streams that need it, then apply the events since each stream's cursor.

- A stream with no cursor, a cursor older than 29 days (events last 30), or ``full_refresh``: backfill through
  its list endpoint (parallel `created` windows, resumable), then hand over to events from the moment the
  backfill started.
- Otherwise: read ``/v1/events`` since the cursor (minus an overlap, deduplicated by id) and upsert each
  changed object's newest state; deletions become tombstones.
- A cursor moves only in the transaction that lands the data it covers: a run that dies at any point loses
  nothing and duplicates nothing (rows are keyed by Stripe id).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb

from audiences import stripe_state
from audiences.stripe_backfill import Backfill, Window
from audiences.stripe_events import OVERLAP_SECONDS, EventFetch, apply_events, fetch_events
from audiences.stripe_reader import StripeReader
from audiences.stripe_streams import EVENTS, Stream

log = logging.getLogger(__name__)
EVENT_RETENTION_SECONDS = 30 * 86_400
# DuckDB's cap while extracting: memory stays flat as the account grows (it spills to disk beyond). Enough for
# an account of a million charges; the run says clearly when it is not.
DEFAULT_MEMORY_LIMIT = "256MB"
# While backfilling, DuckDB checkpoints (writes the WAL into the file) only once this much is written: a
# checkpoint rewrites the whole primary-key index, so doing it every 16 MB (the default) costs O(rows) per
# chunk and the writer slows as the table grows. Commits stay durable in the WAL either way.
BACKFILL_CHECKPOINT_THRESHOLD = "1GB"


class MemoryLimitError(RuntimeError):
    """DuckDB needed more than the extraction's memory_limit."""


STALE_CURSOR_SECONDS = 29 * 86_400


@dataclass
class StreamReport:
    stream: str
    mode: str  # "backfill", "resumed backfill" or "incremental"
    fetched: int = 0
    changed: int = 0
    tombstoned: int = 0  # rows a full backfill did not list any more: deleted in Stripe while events were missed
    cursor: int | None = None


@dataclass
class ExtractReport:
    streams: dict[str, StreamReport] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    events_read: int = 0
    # Where the run's time went, in seconds: the backfill's fetching (wall), its writer landing pages, its
    # workers waiting for the writer, reading the events, and applying them.
    timings: dict[str, float] = field(default_factory=dict)


def ensure_table(con: duckdb.DuckDBPyConnection, stream: Stream) -> None:
    """Create the table, or add the columns a newer version of the stream has (so old warehouses upgrade)."""
    con.execute("create schema if not exists stripe")
    con.execute(stream.ddl())
    existing = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'stripe' and table_name = ?",
            [stream.name],
        ).fetchall()
    }
    for column in stream.all_columns:
        if column.name not in existing:
            con.execute(f"alter table {stream.table} add column {column.name} {column.sql_type}")


def extract(
    con: duckdb.DuckDBPyConnection,
    reader: StripeReader,
    streams: Sequence[Stream],
    *,
    full_refresh: bool = False,
    workers: int = 8,
    on_progress: Callable[[str, int], None] | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> ExtractReport:
    try:
        return _extract(con, reader, streams, full_refresh, workers, on_progress, memory_limit)
    except duckdb.OutOfMemoryException as exc:
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        raise MemoryLimitError(
            f"DuckDB needed more memory than its memory_limit of {memory_limit} while extracting; nothing past "
            "the last committed step was kept, so the next run resumes from there. Raise the limit (run config "
            f"`memory_limit`, e.g. '1GB'). DuckDB said: {str(exc).splitlines()[0]}"
        ) from exc


def _extract(
    con: duckdb.DuckDBPyConnection,
    reader: StripeReader,
    streams: Sequence[Stream],
    full_refresh: bool,
    workers: int,
    on_progress: Callable[[str, int], None] | None,
    memory_limit: str,
) -> ExtractReport:
    started = time.monotonic()
    # DuckDB keeps what it reads cached up to 80% of RAM by default: cap it, so memory stays flat as the
    # account grows (it spills to disk beyond the cap).
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute("set preserve_insertion_order = false")
    extracted_at = time.time()
    report = ExtractReport()
    stripe_state.ensure_schema(con)
    for stream in streams:
        ensure_table(con, stream)

    head, server_time = reader.list("/v1/events", {"limit": 1})
    now = int(server_time or time.time())
    newest_event = int(head["data"][0]["created"]) if head["data"] else None
    handover = newest_event if newest_event is not None else now

    # 1. Backfills (object streams only; the events stream "backfills" by reading the last 30 days).
    states = {s.name: stripe_state.load(con, s.name) for s in streams}
    windows: list[Window] = []
    backfilling: list[Stream] = []
    for stream in streams:
        state = states[stream.name]
        fresh = state.events_cursor is not None and state.events_cursor >= now - STALE_CURSOR_SECONDS
        if stream is EVENTS:
            if full_refresh or not fresh:
                state.events_cursor = now - EVENT_RETENTION_SECONDS + OVERLAP_SECONDS
                report.streams[stream.name] = StreamReport(stream.name, "backfill")
            continue
        if fresh and not full_refresh:
            continue
        resumable = (
            not full_refresh
            and state.backfill_cursor is not None
            and state.backfill_cursor >= now - STALE_CURSOR_SECONDS
        )
        if not resumable:
            state.backfill_cursor = handover
            stripe_state.clear_windows(con, stream.name)
            stripe_state.save(con, state)
        ranges = stripe_state.remaining_ranges(con, stream.name, state.backfill_cursor)
        windows += [Window(stream, state.backfill_cursor, gte, lt) for gte, lt in ranges]
        backfilling.append(stream)
        report.streams[stream.name] = StreamReport(stream.name, "resumed backfill" if resumable else "backfill")

    # 2. Events since the oldest cursor (a backfilled stream hands over at its backfill cursor), landed in
    #    stripe.events as they come. After a backfill they are read as soon as its last page is fetched, on a
    #    connection of their own, while the backfill's writer lands what it still holds.
    handed_over = [
        states[s.name].backfill_cursor if s in backfilling else states[s.name].events_cursor for s in streams
    ]
    since = min(int(cursor or now) for cursor in handed_over) - OVERLAP_SECONDS
    # The events' own connection: its temporary order table goes when it closes.
    with con.cursor() as events_con:
        stop_events = threading.Event()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stripe-events") as pool:
            fetching: list[Future[EventFetch]] = []
            events_phase = 0.0

            def fetch() -> None:
                nonlocal events_phase
                events_phase = time.monotonic()
                fetching.append(
                    pool.submit(fetch_events, events_con, reader, since, extracted_at, workers, now, stop_events)
                )

            if windows:
                try:
                    _backfill(
                        con, reader, windows, backfilling, states, report, workers, extracted_at, on_progress, fetch
                    )
                except BaseException:
                    stop_events.set()
                    raise
            if not fetching:
                fetch()
            fetched = fetching[0].result()
        report.timings["events_fetch"] = time.monotonic() - events_phase
        # 3. The events applied to each stream from its own cursor, on the connection that holds their order.
        phase = time.monotonic()
        report.events_read = fetched.read
        # Everything created up to a minute before Stripe's clock at the start is listed by now.
        new_cursor = max([now - 60] + ([fetched.newest_created] if fetched.newest_created else []))
        for stream in streams:
            state = states[stream.name]
            stream_since = int(state.events_cursor or now) - OVERLAP_SECONDS
            entry = report.streams.setdefault(stream.name, StreamReport(stream.name, "incremental"))
            events_con.execute("begin transaction")
            try:
                if stream is EVENTS:
                    changed = fetched.changed
                else:
                    changed = apply_events(events_con, reader, stream, stream_since, extracted_at)
                state.events_cursor = max(int(state.events_cursor or 0), new_cursor)
                stripe_state.save(events_con, state)
                events_con.execute("commit")
            except BaseException:
                events_con.execute("rollback")
                raise
            entry.changed += changed
            entry.cursor = state.events_cursor
        report.timings["events_apply"] = time.monotonic() - phase
    report.requests = reader.requests
    report.retries = reader.retry.retried
    report.seconds = time.monotonic() - started
    return report


def _backfill(
    con: duckdb.DuckDBPyConnection,
    reader: StripeReader,
    windows: list[Window],
    backfilling: list[Stream],
    states: dict[str, stripe_state.StreamState],
    report: ExtractReport,
    workers: int,
    extracted_at: float,
    on_progress: Callable[[str, int], None] | None,
    on_fetched: Callable[[], None],
) -> None:
    """List the windows, then hand each backfilled stream over to events from its backfill cursor."""
    phase = time.monotonic()
    con.execute(f"set checkpoint_threshold = '{BACKFILL_CHECKPOINT_THRESHOLD}'")
    try:
        backfill = Backfill(reader, con, workers=workers, extracted_at=extracted_at)
        stats = backfill.run(windows, on_progress, on_fetched)
    finally:
        con.execute("reset checkpoint_threshold")
    report.timings["backfill"] = time.monotonic() - phase
    report.timings["backfill_writer"] = stats.writer_seconds
    report.timings["backfill_blocked"] = stats.blocked_seconds
    for stream in backfilling:
        state = states[stream.name]
        report.streams[stream.name].fetched = stats.objects.get(stream.name, 0)
        report.streams[stream.name].changed = stats.changed.get(stream.name, 0)
        con.execute("begin transaction")
        try:
            if stream.tombstones:
                report.streams[stream.name].tombstoned = stripe_state.tombstone_unlisted(
                    con, stream.table, stream.name, state.backfill_cursor
                )
            state.events_cursor, state.backfill_cursor = state.backfill_cursor, None
            stripe_state.clear_windows(con, stream.name)
            stripe_state.save(con, state, backfill_done=True)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
