"""Incremental runs: read ``/v1/events`` since the cursor and apply each object's newest state.

Stripe's ``created`` filters only reveal new objects; updates and deletions show only in events, which Stripe
lists for 30 days. Each event's ``data.object`` is the whole object as of that event, so the latest event of an
object is its current state; ``<object>.deleted`` events of customers and products become tombstones.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb

from audiences.stripe_reader import PAGE_SIZE, StripeReader
from audiences.stripe_streams import CHARGES, Stream, event_queries

OVERLAP_SECONDS = 300  # re-read this much before the cursor: events can appear in lists a little late
# Ranges longer than this (a first run's 30 days) are listed in parallel spans; a nightly run's day is not, so an
# unchanged account still costs one request per filter.
SLICE_AFTER_SECONDS = 3 * 86_400


@dataclass
class EventBatch:
    events: list[dict[str, Any]]  # oldest first, one per id
    since: int
    newest_created: int | None


def _list_all(reader: StripeReader, query: dict[str, Any], since: int, until: int | None) -> list[dict[str, Any]]:
    """Every event of one filter created in ``[since, until)``, newest first (as Stripe lists them)."""
    created = {"gte": since} if until is None else {"gte": since, "lt": until}
    params: dict[str, Any] = {"limit": PAGE_SIZE, "created": created, **query}
    events: list[dict[str, Any]] = []
    while True:
        page, _ = reader.list("/v1/events", params)
        events.extend(page["data"])
        if not page.get("has_more") or not page["data"]:
            return events
        params = {**params, "starting_after": page["data"][-1]["id"]}


def time_slices(since: int, now: int, slices: int) -> list[tuple[int, int | None]]:
    """``[since, ∞)`` cut into ``slices`` spans of time (the last one open), so long ranges list in parallel."""
    if slices <= 1 or now - since < SLICE_AFTER_SECONDS:
        return [(since, None)]
    step = (now - since) // slices
    bounds = [since + i * step for i in range(slices)]
    return [(lo, bounds[i + 1]) for i, lo in enumerate(bounds[:-1])] + [(bounds[-1], None)]


def fetch_events(reader: StripeReader, since: int, workers: int = 4, now: int | None = None) -> EventBatch:
    """Every event of the types we use created at or after ``since``, oldest first, deduplicated by id.

    Each filter is listed concurrently; a long range (the 30 days of a first run) is also cut into spans of
    time listed in parallel.
    """
    spans = time_slices(since, now, workers) if now is not None else [(since, None)]
    tasks = [(query, lo, hi) for query in event_queries() for lo, hi in spans]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks)))) as pool:
        listings = list(pool.map(lambda t: _list_all(reader, t[0], t[1], t[2]), tasks))
    by_id: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for events in listings:
        for position, event in enumerate(events):
            # Lists are newest first; inside one second, later in the list means older.
            by_id.setdefault(event["id"], (int(event["created"]), -position, event))
    ordered = [event for _, _, event in sorted(by_id.values(), key=lambda x: (x[0], x[1]))]
    newest = max((int(e["created"]) for e in ordered), default=None)
    return EventBatch(ordered, since, newest)


def latest_states(
    stream: Stream, events: list[dict[str, Any]], since: int
) -> tuple[list[dict[str, Any]], list[float | None]]:
    """The newest object state per id among ``events`` (oldest first) and its deletion time, if deleted."""
    latest: dict[str, tuple[dict[str, Any], float | None]] = {}
    for event in events:
        obj = (event.get("data") or {}).get("object")
        if not isinstance(obj, dict) or obj.get("object") != stream.object_type or int(event["created"]) < since:
            continue
        deleted = stream.tombstones and event["type"].endswith(".deleted")
        latest[obj["id"]] = (obj, float(event["created"]) if deleted else None)
    return [o for o, _ in latest.values()], [d for _, d in latest.values()]


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
    batch: EventBatch,
    since: int,
    extracted_at: float,
) -> int:
    """Upsert the newest state of every object of ``stream`` changed since ``since``; returns rows changed."""
    objects, deleted_at = latest_states(stream, batch.events, since)
    if not objects:
        return 0
    if stream is CHARGES:
        fill_balance_transactions(con, reader, objects, since)
    return stream.upsert(con, stream.to_arrow(objects, extracted_at, deleted_at))


def store_events(
    con: duckdb.DuckDBPyConnection, events_stream: Stream, batch: EventBatch, since: int, extracted_at: float
) -> int:
    events = [e for e in batch.events if int(e["created"]) >= since]
    if not events:
        return 0
    return events_stream.upsert(con, events_stream.to_arrow(events, extracted_at))
