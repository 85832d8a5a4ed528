"""Stripe events -> Customer.io person events (``marts.marketing_events``), each sent once.

An event goes to the person with its Stripe customer id, named as the ``marketing_event_catalogue`` seed says,
stamped with the Stripe event time. Its dedupe ``id`` is a ULID (the format the Track API requires) derived
from the Stripe event id and time, so the same Stripe event always has the same id: Customer.io drops a
repeat even if our own record of what was sent were lost. Customer.io only triggers campaigns on events of
the last 72 hours; older events not sent yet are counted as too old, not sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import duckdb

from audiences.customerio_client import DEFAULT_CONCURRENCY, CustomerIOClient, encode_op
from audiences.customerio_sync import MAX_IDENTIFIER_BYTES, Deliveries, recorder
from audiences.sync_result import SyncResult
from audiences.sync_state import Rejection, payload_hash, plan_changes, record_outcome

DESTINATION = "customerio_events"
EVENTS_TABLE = "marts.marketing_events"
CAMPAIGN_WINDOW_HOURS = 72
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ATTRIBUTE_COLUMNS = ("stripe_event_type", "stripe_object_id", "amount", "currency", "failure_code", "dispute_reason")


def event_ulid(stripe_event_id: str, occurred_at: dt.datetime) -> str:
    """A ULID for a Stripe event: its time in milliseconds, then 80 bits of a hash of its id."""
    millis = int(occurred_at.timestamp() * 1000) & ((1 << 48) - 1)
    entropy = int.from_bytes(hashlib.sha256(stripe_event_id.encode()).digest()[:10], "big")
    value = (millis << 80) | entropy
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def load_events(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cursor = con.execute(f"select * from {EVENTS_TABLE} order by occurred_at, event_id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def event_op(row: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {"stripe_event_id": row["event_id"]}
    for column in ATTRIBUTE_COLUMNS:
        value = row.get(column)
        if value is not None:
            attributes[column] = float(value) if isinstance(value, Decimal) else value
    return {
        "type": "person",
        "identifiers": {"id": row["customer_id"]},
        "action": "event",
        "name": row["event_name"],
        "id": event_ulid(row["event_id"], row["occurred_at"]),
        "timestamp": int(row["occurred_at"].timestamp()),
        "attributes": attributes,
    }


def forward_events(
    con: duckdb.DuckDBPyConnection,
    client: CustomerIOClient,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    max_age_hours: float | None = CAMPAIGN_WINDOW_HOURS,
    now: dt.datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> SyncResult:
    """Send the events of the last ``max_age_hours`` (None: all) that were not sent before."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    all_rows = load_events(con)
    since = None if max_age_hours is None else now - dt.timedelta(hours=max_age_hours)
    rows = [r for r in all_rows if since is None or r["occurred_at"] >= since]
    result = SyncResult(DESTINATION, dry_run=dry_run, considered=len(rows))
    result.too_old = len(all_rows) - len(rows)
    payloads: dict[str, dict[str, Any]] = {}
    rejections: list[Rejection] = []
    for row in rows:
        if not row["customer_id"]:
            reason = "no Stripe customer (e.g. a guest checkout): no person to send the event to"
            rejections.append(Rejection(row["event_id"], reason, True, payload_hash({"event": row["event_id"]})))
        elif len(str(row["customer_id"]).encode()) > MAX_IDENTIFIER_BYTES:
            reason = f"customer id longer than {MAX_IDENTIFIER_BYTES} bytes"
            rejections.append(Rejection(row["event_id"], reason, True, payload_hash({"event": row["event_id"]})))
        else:
            payloads[row["event_id"]] = event_op(row)
    plan = plan_changes(con, DESTINATION, payloads)
    result.unchanged = plan.unchanged
    new_rejections = [r for r in rejections if plan.is_new_rejection(r)]
    result.still_rejected = len(rejections) - len(new_rejections)
    keys = sorted(plan.to_send, key=lambda k: (plan.to_send[k]["timestamp"], k))
    result.planned = {"events": len(keys)}
    if dry_run:
        result.planned_sample = [plan.to_send[k] for k in keys[:10]]
        return result.finish(started=started, client=client, sent=0, rejections=new_rejections)
    sending = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool, contextlib.closing(con.cursor()) as cursor:
        deliveries = Deliveries(client, pool, recorder(cursor, DESTINATION, run_id))
        try:
            for key in keys:
                deliveries.add(plan, key, encode_op(plan.to_send[key]))
        finally:  # what was sent is handled (and recorded) whatever stopped the sending
            deliveries.close()
    result.send_seconds = time.monotonic() - sending
    accepted = deliveries.accepted
    result.created = len(accepted)
    all_rejections = new_rejections + deliveries.rejections
    record_outcome(con, DESTINATION, plan, [], new_rejections, run_id)  # the batches' outcomes are recorded already
    return result.finish(
        started=started,
        client=client,
        sent=len(accepted),
        rejections=all_rejections,
    )
