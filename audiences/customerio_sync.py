"""Profiles -> Customer.io people, identified by Stripe customer id through ``/api/v2/batch``.

The payloads (attribute values as ``payload_sql`` converts them) and the ops are computed in the warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb

from audiences.customerio_client import (
    DEFAULT_CONCURRENCY,
    MAX_OP_BYTES,
    CustomerIOClient,
    CustomerIOError,
    encode_op,
    pack_ops,
)
from audiences.field_mapping import FieldMapping
from audiences.mailchimp_client import subscriber_hash
from audiences.payload_sql import customerio_payload_sql, non_ascii_email_keys
from audiences.profiles import Profile, ProfileSource, stage_profiles
from audiences.sync_result import SyncResult
from audiences.sync_state import Plan, Rejection, plan_changes, record_accepted, record_outcome, record_rejections
from audiences.warehouse import registered

DESTINATION = "customerio"
MAX_IDENTIFIER_BYTES = 150
MAX_VALUE_BYTES = 1000


def identify_op(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "person",
        "identifiers": {"id": payload["id"]},
        "action": "identify",
        "attributes": payload["attributes"],
    }


def check_limits(key: str, op: bytes, payload: dict[str, Any]) -> str | None:
    """Why Customer.io would refuse this op, checked before sending; None when it fits."""
    if len(key.encode()) > MAX_IDENTIFIER_BYTES:
        return f"identifier longer than {MAX_IDENTIFIER_BYTES} bytes"
    if len(op) >= MAX_OP_BYTES:
        return f"operation of {len(op)} bytes exceeds the {MAX_OP_BYTES}-byte limit"
    for name, value in payload["attributes"].items():
        if len(str(value).encode()) > MAX_VALUE_BYTES:
            return f"attribute {name} longer than {MAX_VALUE_BYTES} bytes"
    return None


def departed_payload(key: str, previous: dict[str, Any]) -> dict[str, Any]:
    """A person whose customer no profile has any more: deleted in Stripe. Nothing is deleted at Customer.io:
    the person is flagged and loses its segments."""
    return {"id": key, "attributes": {"stripe_deleted": True, "segments": []}}


def deliver(
    client: CustomerIOClient,
    keys: list[str],
    encoded: list[bytes],
    hashes: dict[str, str],
    concurrency: int,
    on_batch: Callable[[list[str], list[Rejection]], None] | None = None,
) -> tuple[list[str], list[Rejection]]:
    """Send ``encoded[i]`` (the op of ``keys[i]``) in size-packed batches; returns (accepted keys, rejections).

    A per-op error (207) is a permanent rejection of that record; a batch that failed as a whole (after the
    retries) is a transient one for each of its records, sent again next run. A refused key stops the run.
    ``on_batch(accepted, rejections)`` gets each batch's outcome as it is answered (on the calling thread), so a
    run that dies halfway has recorded what was delivered and sends again only what was in flight.
    """

    def send(indexes: list[int]) -> tuple[list[int], dict[int, str], Exception | None]:
        try:
            errors = client.send_batch([encoded[i] for i in indexes])
            return indexes, {indexes[e.index]: e.reason for e in errors}, None
        except Exception as exc:  # recorded per record below, as transient
            return indexes, {}, exc

    accepted: list[str] = []
    rejections: list[Rejection] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for indexes, op_errors, error in pool.map(send, list(pack_ops(encoded))):
            if isinstance(error, CustomerIOError) and error.status in (401, 403):
                raise error
            batch_accepted: list[str] = []
            batch_rejections: list[Rejection] = []
            for i in indexes:
                key = keys[i]
                if error is not None:
                    reason = f"transient: {type(error).__name__}: {error}"[:500]
                    batch_rejections.append(Rejection(key, reason, False, hashes[key]))
                elif i in op_errors:
                    batch_rejections.append(Rejection(key, op_errors[i], True, hashes[key]))
                else:
                    batch_accepted.append(key)
            if on_batch is not None:
                on_batch(batch_accepted, batch_rejections)
            accepted += batch_accepted
            rejections += batch_rejections
    return accepted, rejections


def recorder(
    con: duckdb.DuckDBPyConnection, destination: str, plan: Plan, run_id: str | None
) -> Callable[[list[str], list[Rejection]], None]:
    """``deliver``'s ``on_batch``: store a batch's accepted records and rejections in the warehouse."""

    def record(accepted: list[str], rejections: list[Rejection]) -> None:
        record_accepted(con, destination, [(key, plan.hashes[key], plan.texts[key]) for key in accepted])
        record_rejections(con, destination, rejections, run_id)

    return record


def sync_people(
    con: duckdb.DuckDBPyConnection,
    client: CustomerIOClient,
    profiles: ProfileSource | Sequence[Profile],
    mapping: FieldMapping,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    full_resync: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    withdraw_departed: bool = True,
) -> SyncResult:
    """Identify each changed person; ``withdraw_departed``: flag the people whose customer was deleted.
    ``profiles``: where they are in the warehouse (a list is staged there first)."""
    started = time.monotonic()
    source = profiles if isinstance(profiles, ProfileSource) else stage_profiles(con, profiles)
    result = SyncResult(DESTINATION, dry_run=dry_run, considered=source.count(con))
    query = customerio_payload_sql(
        source,
        source.columns(con),
        mapping,
        max_identifier_bytes=MAX_IDENTIFIER_BYTES,
        max_op_bytes=MAX_OP_BYTES,
        max_value_bytes=MAX_VALUE_BYTES,
        email_keys="_email_keys",
    )
    departed = departed_payload if withdraw_departed else None
    extras = ("op", "problem", "yields_email")
    with registered(con, "_email_keys", non_ascii_email_keys(con, source, subscriber_hash)):
        plan = plan_changes(con, DESTINATION, query, full_resync=full_resync, departed=departed, extras=extras)
    result.unchanged = plan.unchanged
    result.departed = plan.departed
    result.still_rejected = plan.still_rejected
    encoded: list[bytes] = []
    sendable: list[str] = []
    rejections: list[Rejection] = []
    yielding = 0  # the first ones: ops removing an address from a person that lost it (sent in a round of their own)
    for key in sorted(plan.to_send, key=lambda k: (not (k in plan.extras and plan.extras[k][2]), k)):
        if key in plan.extras:  # the op and its limits, from the payload query
            text, problem, yields_email = plan.extras[key]
            op = text.encode()
        else:  # a departed person
            op = encode_op(identify_op(plan.to_send[key]))
            problem, yields_email = check_limits(key, op, plan.to_send[key]), False
        if problem:
            rejections.append(Rejection(key, problem, True, plan.hashes[key]))
        else:
            encoded.append(op)
            sendable.append(key)
            yielding += bool(yields_email)
    if dry_run:
        result.planned_sample = [identify_op(plan.to_send[k]) for k in sendable[:10]]
        return result.finish(started=started, client=client, sent=0, rejections=rejections)

    sending = time.monotonic()
    accepted: list[str] = []
    failed: list[Rejection] = []
    for part in (slice(0, yielding), slice(yielding, None)):  # an address leaves one person before another takes it
        if sendable[part]:
            done, refused = deliver(
                client,
                sendable[part],
                encoded[part],
                plan.hashes,
                concurrency,
                recorder(con, DESTINATION, plan, run_id),
            )
            accepted += done
            failed += refused
    result.send_seconds = time.monotonic() - sending
    for key in accepted:
        if key in plan.previous:
            result.updated += 1
        else:
            result.created += 1
    record_outcome(con, DESTINATION, plan, [], rejections, run_id)  # the batches' outcomes are recorded already
    return result.finish(started=started, client=client, sent=len(accepted), rejections=rejections + failed)
