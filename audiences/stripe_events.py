"""Incremental runs: read ``/v1/events`` since the cursor and apply each object's newest state.

Stripe's ``created`` filters only reveal new objects; updates and deletions show only in events, which Stripe
lists for 30 days. Each event's ``data.object`` is the whole object as of that event, so the latest event of an
object is its current state; ``<object>.deleted`` events of customers and products become tombstones.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from audiences.stripe_checkout import fill_line_items
from audiences.stripe_reader import PAGE_SIZE, StripeReader
from audiences.stripe_streams import CHARGES, CHECKOUT_SESSIONS, EVENTS, Stream, event_queries
from audiences.warehouse import registered

OVERLAP_SECONDS = 300  # re-read this much before the cursor: events can appear in lists a little late
# Ranges longer than this (a first run's 30 days) are listed in parallel spans; a nightly run's day is not, so an
# unchanged account still costs one request per filter.
SLICE_AFTER_SECONDS = 3 * 86_400
CHUNK_ROWS = 5_000  # events per bulk write: memory stays flat however many there are
# Objects per upsert when applying events. Replacing existing rows costs DuckDB far more memory than inserting
# new ones: 5,000 at a time into a table of a million charges needed over 256 MB; 1,000 fit.
APPLY_CHUNK_ROWS = 1_000
ORDER_TABLE = "stripe_event_order"  # a temporary table of this connection: where each fetched event was listed
_ORDER_SCHEMA = pa.schema([("id", pa.string()), ("listing", pa.int32()), ("position", pa.int64())])


@dataclass
class EventFetch:
    """What :func:`fetch_events` read; the events themselves are in ``stripe.events``."""

    since: int
    read: int = 0
    changed: int = 0  # rows of stripe.events inserted or updated
    newest_created: int | None = None


@dataclass
class _Page:
    listing: int
    position: int  # of the page's first event in its listing (newest first)
    events: list[dict[str, Any]]


def _list_all(
    reader: StripeReader,
    out: queue.Queue[_Page],
    stop: threading.Event,
    listing: int,
    query: dict[str, Any],
    since: int,
    until: int | None,
) -> None:
    """Every event of one filter created in ``[since, until)``, newest first (as Stripe lists them), page by page."""
    created = {"gte": since} if until is None else {"gte": since, "lt": until}
    params: dict[str, Any] = {"limit": PAGE_SIZE, "created": created, **query}
    position = 0
    while not stop.is_set():
        page, _ = reader.list("/v1/events", params)
        out.put(_Page(listing, position, page["data"]))
        position += len(page["data"])
        if not page.get("has_more") or not page["data"]:
            return
        params = {**params, "starting_after": page["data"][-1]["id"]}


def time_slices(since: int, now: int, slices: int) -> list[tuple[int, int | None]]:
    """``[since, ∞)`` cut into ``slices`` spans of time (the last one open), so long ranges list in parallel."""
    if slices <= 1 or now - since < SLICE_AFTER_SECONDS:
        return [(since, None)]
    step = (now - since) // slices
    bounds = [since + i * step for i in range(slices)]
    return [(lo, bounds[i + 1]) for i, lo in enumerate(bounds[:-1])] + [(bounds[-1], None)]


def fetch_events(
    con: duckdb.DuckDBPyConnection,
    reader: StripeReader,
    since: int,
    extracted_at: float,
    workers: int = 4,
    now: int | None = None,
    stop: threading.Event | None = None,
) -> EventFetch:
    """Land every event of the types we use created at or after ``since`` in ``stripe.events``.

    Each filter is listed concurrently; a long range (the 30 days of a first run) is also cut into spans of
    time listed in parallel. Pages are written in bulk as they come (an event is stored once, by id, and an
    unchanged one is not rewritten), and where each was listed goes to the connection's temporary
    ``stripe_event_order``, which orders events of the same second for :func:`apply_events`. Setting ``stop``
    (another part of the run failed) ends the listings early, with what was written so far.
    """
    con.execute(f"create or replace temp table {ORDER_TABLE} (id varchar, listing integer, position bigint)")
    spans = time_slices(since, now, workers) if now is not None else [(since, None)]
    tasks = [(query, lo, hi) for query in event_queries() for lo, hi in spans]
    result = EventFetch(since)
    pages: queue.Queue[_Page] = queue.Queue(maxsize=2 * CHUNK_ROWS // PAGE_SIZE)
    buffered: list[_Page] = []
    rows = 0
    stop = stop or threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks)))) as pool:
        futures = [pool.submit(_list_all, reader, pages, stop, i, *task) for i, task in enumerate(tasks)]
        try:
            while True:
                try:
                    page = pages.get(timeout=0.1)
                except queue.Empty:
                    if any(f.done() and f.exception() is not None for f in futures):
                        break  # a listing failed: its events are not all here, so the run fails below
                    if all(f.done() for f in futures) and pages.empty():
                        break
                    continue
                buffered.append(page)
                rows += len(page.events)
                if rows >= CHUNK_ROWS:
                    _write(con, buffered, result, extracted_at)
                    buffered, rows = [], 0
            for future in futures:  # a listing that failed fails the run: its events are not all here
                if future.done() and (error := future.exception()) is not None:
                    raise error
            _write(con, buffered, result, extracted_at)
        finally:
            stop.set()
            while any(not f.done() for f in futures):  # unblock listings waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    pages.get(timeout=0.05)
    return result


def _write(con: duckdb.DuckDBPyConnection, pages: list[_Page], result: EventFetch, extracted_at: float) -> None:
    events = [event for page in pages for event in page.events]
    if not events:
        return
    order = pa.table(
        {
            "id": [e["id"] for e in events],
            "listing": [page.listing for page in pages for _ in page.events],
            "position": [page.position + i for page in pages for i in range(len(page.events))],
        },
        schema=_ORDER_SCHEMA,
    )
    con.execute("begin transaction")
    try:
        result.changed += EVENTS.upsert(con, EVENTS.to_arrow(events, extracted_at))
        with registered(con, "_event_order_batch", order):
            con.execute(f"insert into {ORDER_TABLE} select * from _event_order_batch")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    result.read += len(events)
    newest = max(int(e["created"]) for e in events)
    result.newest_created = max(newest, result.newest_created or newest)


def latest_states(
    con: duckdb.DuckDBPyConnection, stream: Stream, since: int
) -> Iterator[tuple[list[dict[str, Any]], list[float | None]]]:
    """The newest state of each object of ``stream`` in the events fetched since ``since``, in chunks.

    Each event's ``data.object`` is the whole object as of that event. Among an object's events the newest
    wins; inside one second, the one listed first (Stripe lists newest first). A ``.deleted`` event of a
    stream with tombstones also gives the deletion time.
    """
    after = ""
    while True:
        rows = con.execute(
            f"""
            select e.object_id, e.raw, e.type, epoch(e.created)
            from stripe.events as e
            join (select id, min(listing) as listing, min(position) as position from {ORDER_TABLE} group by id)
                as o using (id)
            where e.object_type = ? and e.created >= to_timestamp(?) and e.object_id > ?
            qualify row_number() over (partition by e.object_id order by e.created desc, o.listing, o.position) = 1
            order by e.object_id
            limit {APPLY_CHUNK_ROWS}
            """,
            [stream.object_type, since, after],
        ).fetchall()
        if not rows:
            return
        objects = [orjson.loads(raw)["data"]["object"] for _, raw, _, _ in rows]
        deleted_at = [
            float(created) if stream.tombstones and event_type.endswith(".deleted") else None
            for _, _, event_type, created in rows
        ]
        yield objects, deleted_at
        after = rows[-1][0]


def fill_balance_transactions(
    con: duckdb.DuckDBPyConnection, reader: StripeReader, charges: list[dict[str, Any]], since: int
) -> None:
    """Event payloads carry a charge's balance transaction as an id: give it back its amount and rate.

    Kept from the stored row when the id is the same; for new charges, read from one list of the balance
    transactions created since the cursor (100 per request, not one request per charge).
    """
    wanted = {c["id"]: c["balance_transaction"] for c in charges if isinstance(c.get("balance_transaction"), str)}
    if not wanted:
        return
    stored = {
        charge_id: (bt_id, amount, currency, rate)
        for charge_id, bt_id, amount, currency, rate in con.execute(
            "select id, balance_transaction_id, bt_amount, bt_currency, bt_exchange_rate from stripe.charges "
            "where list_contains(?, id)",
            [list(wanted)],
        ).fetchall()
    }
    missing = {bt for cid, bt in wanted.items() if stored.get(cid, (None,))[0] != bt or stored[cid][1] is None}
    fetched: dict[str, dict[str, Any]] = {}
    if missing:
        params: dict[str, Any] = {"limit": PAGE_SIZE, "created": {"gte": since}}
        while missing - fetched.keys():
            page, _ = reader.list("/v1/balance_transactions", params)
            for bt in page["data"]:
                if bt["id"] in missing:
                    fetched[bt["id"]] = bt
            if not page.get("has_more") or not page["data"]:
                break
            params = {**params, "starting_after": page["data"][-1]["id"]}
    for charge in charges:
        bt_id = wanted.get(charge["id"])
        if bt_id is None:
            continue
        if bt_id in fetched:
            charge["balance_transaction"] = fetched[bt_id]
        elif charge["id"] in stored and stored[charge["id"]][0] == bt_id:
            _, amount, currency, rate = stored[charge["id"]]
            charge["balance_transaction"] = {
                "id": bt_id,
                "object": "balance_transaction",
                "amount": amount,
                "currency": currency,
                "exchange_rate": rate,
            }


def apply_events(
    con: duckdb.DuckDBPyConnection,
    reader: StripeReader,
    stream: Stream,
    since: int,
    extracted_at: float,
) -> int:
    """Upsert the newest state of every object of ``stream`` changed since ``since``; returns rows changed."""
    changed = 0
    for objects, deleted_at in latest_states(con, stream, since):
        if stream is CHARGES:
            fill_balance_transactions(con, reader, objects, since)
        elif stream is CHECKOUT_SESSIONS:
            fill_line_items(con, reader, objects, since)
        changed += stream.upsert(con, stream.to_arrow(objects, extracted_at, deleted_at))
    return changed
