"""Profiles -> Customer.io people, identified by Stripe customer id through ``/api/v2/batch``.

The payloads (attribute values as ``payload_sql`` converts them) and the ops are computed in the warehouse.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
from audiences.payload_sql import customerio_payload_sql
from audiences.profiles import Profile, ProfileSource, stage_profiles
from audiences.sync_result import SyncResult
from audiences.sync_state import Rejection, plan_changes, record_outcome

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
) -> tuple[list[str], list[Rejection]]:
    """Send ``encoded[i]`` (the op of ``keys[i]``) in size-packed batches; returns (accepted keys, rejections).

    A per-op error (207) is a permanent rejection of that record; a batch that failed as a whole (after the
    retries) is a transient one for each of its records, sent again next run. A refused key stops the run.
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
            for i in indexes:
                key = keys[i]
                if error is not None:
                    reason = f"transient: {type(error).__name__}: {error}"[:500]
                    rejections.append(Rejection(key, reason, False, hashes[key]))
                elif i in op_errors:
                    rejections.append(Rejection(key, op_errors[i], True, hashes[key]))
                else:
                    accepted.append(key)
    return accepted, rejections


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
    )
    departed = departed_payload if withdraw_departed else None
    plan = plan_changes(con, DESTINATION, query, full_resync=full_resync, departed=departed, extras=("op", "problem"))
    result.unchanged = plan.unchanged
    result.departed = plan.departed
    result.still_rejected = plan.still_rejected
    encoded: list[bytes] = []
    sendable: list[str] = []
    rejections: list[Rejection] = []
    for key in sorted(plan.to_send):
        if key in plan.extras:  # the op and its limits, from the payload query
            text, problem = plan.extras[key]
            op = text.encode()
        else:  # a departed person
            op = encode_op(identify_op(plan.to_send[key]))
            problem = check_limits(key, op, plan.to_send[key])
        if problem:
            rejections.append(Rejection(key, problem, True, plan.hashes[key]))
        else:
            encoded.append(op)
            sendable.append(key)
    if dry_run:
        result.planned_sample = [identify_op(plan.to_send[k]) for k in sendable[:10]]
        return result.finish(started=started, client=client, sent=0, rejections=rejections)

    sending = time.monotonic()
    accepted, failed = deliver(client, sendable, encoded, plan.hashes, concurrency)
    result.send_seconds = time.monotonic() - sending
    rejections += failed
    for key in accepted:
        if key in plan.previous:
            result.updated += 1
        else:
            result.created += 1
    record_outcome(con, DESTINATION, plan, accepted, rejections, run_id)
    return result.finish(started=started, client=client, sent=len(accepted), rejections=rejections)
