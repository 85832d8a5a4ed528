"""Profiles -> Customer.io people, identified by Stripe customer id through ``/api/v2/batch``.

The payloads (attribute values as ``payload_sql`` converts them) and the ops are computed in the warehouse.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb

from audiences.combining import Combining, InFlight
from audiences.customerio_client import (
    DEFAULT_CONCURRENCY,
    MAX_OP_BYTES,
    CustomerIOClient,
    CustomerIOError,
    OpPacker,
    encode_op,
)
from audiences.field_mapping import FieldMapping
from audiences.mailchimp_client import subscriber_hash
from audiences.payload_sql import (
    YIELDS_EMAIL,
    contact_keys_sql,
    contacts_sql,
    customerio_payload_sql,
    non_ascii_email_keys,
)
from audiences.profiles import Profile, ProfileSource, stage_profiles
from audiences.sync_result import SyncResult
from audiences.sync_state import (
    Plan,
    Rejection,
    hash_parts,
    plan_changes,
    plan_parts,
    record_outcome,
    record_planned,
    record_rejections,
)
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


class Deliveries:
    """Ops sent in size-packed batches as the plan finds them (``add``), ``concurrency`` requests in flight.

    A per-op error (207) is a permanent rejection of that record; a batch that failed as a whole (after the
    retries) is a transient one for each of its records, sent again next run. A refused key stops the run.
    ``on_batch(plan, accepted, rejections)`` gets each batch's outcome as soon as it is answered, on a recorder
    thread (those of batches answered meanwhile in one call; no connection waits for the warehouse), so a run
    that dies halfway has recorded what was delivered and sends again only what was in flight. A failure of
    ``on_batch`` stops the run (``add``, ``flush``, ``close``)."""

    def __init__(
        self,
        client: CustomerIOClient,
        pool: ThreadPoolExecutor,
        on_batch: Callable[[Plan, list[str], list[Rejection]], None] = lambda plan, accepted, rejections: None,
    ) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.recorded: Combining[tuple[Plan, list[str], list[Rejection]]] = Combining(
            lambda answered: on_batch(
                answered[0][0],
                [key for _, accepted, _ in answered for key in accepted],
                [r for _, _, rejections in answered for r in rejections],
            )
        )
        self.packer: OpPacker[tuple[str, bytes]] = OpPacker()
        self.in_flight = InFlight(pool)
        self.accepted: list[str] = []
        self.rejections: list[Rejection] = []
        self.plan = Plan()

    def add(self, plan: Plan, key: str, op: bytes) -> None:
        self.plan = plan
        closed = self.packer.add((key, op), len(op))
        if closed:
            self.in_flight.submit(self._deliver, plan, closed)
            self.in_flight.check()
            self.recorded.check()

    def flush(self) -> None:
        """Send what is packed and wait for every answer: what is sent after comes after them."""
        rest = self.packer.rest()
        if rest:
            self.in_flight.submit(self._deliver, self.plan, rest)
        self.in_flight.check(block=True)
        self.recorded.check()

    def close(self) -> None:
        """Send what is packed, wait for every answer, and until every outcome is recorded."""
        try:
            self.flush()
        finally:
            self.recorded.close()

    def _deliver(self, plan: Plan, batch: list[tuple[str, bytes]]) -> None:
        try:
            op_errors, error = {e.index: e.reason for e in self.client.send_batch([op for _, op in batch])}, None
        except Exception as exc:  # recorded per record below, as transient
            op_errors, error = {}, exc
        if isinstance(error, CustomerIOError) and error.status in (401, 403):
            raise error
        accepted: list[str] = []
        rejections: list[Rejection] = []
        for i, (key, _) in enumerate(batch):
            if error is not None:
                reason = f"transient: {type(error).__name__}: {error}"[:500]
                rejections.append(Rejection(key, reason, False, plan.hashes[key]))
            elif i in op_errors:
                rejections.append(Rejection(key, op_errors[i], True, plan.hashes[key]))
            else:
                accepted.append(key)
        with self.lock:
            self.accepted += accepted
            self.rejections += rejections
        self.recorded.put((plan, accepted, rejections))


def recorder(
    cursor: duckdb.DuckDBPyConnection, destination: str, run_id: str | None
) -> Callable[[Plan, list[str], list[Rejection]], None]:
    """``Deliveries``' ``on_batch``: store a batch's accepted records and rejections in the warehouse, through
    ``cursor`` (a cursor of its own: the answers come in on other threads; the tables exist: the plan made them)."""

    def record(plan: Plan, accepted: list[str], rejections: list[Rejection]) -> None:
        record_planned(cursor, destination, plan, accepted, ensure=False)
        record_rejections(cursor, destination, rejections, run_id, ensure=False)

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
    ``profiles``: where they are in the warehouse (a list is staged there first).

    The ops that take an address away from a person (``yields_email``) are planned and delivered first, before
    any other op is sent; the others are sent as each part of the plan is made."""
    started = time.monotonic()
    source = profiles if isinstance(profiles, ProfileSource) else stage_profiles(con, profiles)
    result = SyncResult(DESTINATION, dry_run=dry_run, considered=source.count(con))
    columns = source.columns(con)
    contacts = "_customerio_contacts"  # the address rule's window over every profile, computed once
    with registered(con, "_email_keys", non_ascii_email_keys(con, source, subscriber_hash)):
        con.execute(f"create or replace temp table {contacts} as {contact_keys_sql(source, columns, '_email_keys')}")

    def query(part: str) -> str:  # the part's contacts with their profiles, then their payloads
        rows = contacts_sql(source, columns, None, keys=f"(select * from {contacts} where {part})")
        return customerio_payload_sql(
            source,
            columns,
            mapping,
            max_identifier_bytes=MAX_IDENTIFIER_BYTES,
            max_op_bytes=MAX_OP_BYTES,
            max_value_bytes=MAX_VALUE_BYTES,
            contacts=f"({rows})",
        )

    rejections: list[Rejection] = []
    sample: list[str] = []
    parts = plan_parts(con, DESTINATION, result.considered, full_resync=full_resync)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool, contextlib.closing(con.cursor()) as cursor:
        deliveries = Deliveries(client, pool, recorder(cursor, DESTINATION, run_id))

        def take(plan: Plan, keys: list[str]) -> None:
            yielding = False
            for key in sorted(keys):
                if key in plan.extras:  # the op and its limits, from the payload query
                    text, problem, yields_email = plan.extras[key]
                    op = text.encode()
                else:  # a departed person
                    op = encode_op(identify_op(plan.to_send[key]))
                    problem, yields_email = check_limits(key, op, plan.to_send[key]), False
                yielding = yielding or bool(yields_email)
                if problem:
                    rejections.append(Rejection(key, problem, True, plan.hashes[key]))
                elif dry_run:
                    sample.append(key)
                else:
                    deliveries.add(plan, key, op)
            if yielding:  # an address leaves one person before another takes it
                deliveries.flush()

        try:
            plan = plan_changes(
                con,
                DESTINATION,
                query,
                full_resync=full_resync,
                departed=departed_payload if withdraw_departed else None,
                extras=("op", "problem", "yields_email"),
                parts=hash_parts(1 if dry_run else parts, first=YIELDS_EMAIL, column="customer_id"),
                on_part=take,
            )
        finally:  # what was sent is handled (and recorded) even when planning failed
            con.execute(f"drop table if exists {contacts}")
            deliveries.close()
    result.unchanged = plan.unchanged
    result.departed = plan.departed
    result.still_rejected = plan.still_rejected
    if dry_run:
        result.planned_sample = [identify_op(plan.to_send[k]) for k in sample[:10]]
        return result.finish(started=started, client=client, sent=0, rejections=rejections)

    result.send_seconds = time.monotonic() - (deliveries.in_flight.first_sent or time.monotonic())
    for key in deliveries.accepted:
        if key in plan.previous:
            result.updated += 1
        else:
            result.created += 1
    record_outcome(con, DESTINATION, plan, [], rejections, run_id)  # the batches' outcomes are recorded already
    return result.finish(
        started=started, client=client, sent=len(deliveries.accepted), rejections=rejections + deliveries.rejections
    )
