"""Profiles -> Mailchimp audience members: merge fields, tags, consent-safe status.

Rules (see ../shared/contracts/NOTES.md):
- members are keyed by ``md5(lowercased email)``;
- a new member is ``subscribed`` only with marketing consent, otherwise ``transactional``;
- ``status`` is never sent, so an existing member's status (unsubscribed, cleaned...) never changes;
- segments are tags: active while the customer is in the segment, inactive once they leave it; a contact
  no profile has any more (customer deleted in Stripe, email changed) keeps its member record and loses them;
- new contacts go through the 500-member batch endpoint (``update_existing: false``, so no existing member's
  status can change) with their tags (which the endpoint applies to the members it creates); changed ones go
  through one ``PUT`` each, and their tag moves through the tags' static segments in bulk.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import duckdb

from audiences.combining import Combining, InFlight
from audiences.field_mapping import FieldMapping
from audiences.mailchimp_client import MailchimpClient, MailchimpError, subscriber_hash, worker_pool
from audiences.mailchimp_tags import TagChanges, apply_tag_changes
from audiences.payload_sql import contact_keys_sql, contacts_sql, mailchimp_payload_sql, non_ascii_email_keys
from audiences.profiles import Profile, ProfileSource, stage_profiles
from audiences.sync_result import SyncResult
from audiences.sync_state import (
    Plan,
    Rejection,
    hash_parts,
    payload_hash,
    plan_changes,
    plan_parts,
    record_accepted,
    record_outcome,
    record_planned,
    record_rejections,
)
from audiences.warehouse import registered

log = logging.getLogger(__name__)
DESTINATION = "mailchimp"


NEW_DATE_FORMAT = "MM/DD/YYYY"  # the format of the date fields we create (Mailchimp's default, asked explicitly)


@dataclass
class MergeFields:
    """The audience's merge fields as the mapping needs them: the date format of each date field, those the
    fields still ``missing`` will have included (their create bodies ask for it), so the contacts' payloads can
    be planned while the fields are being created."""

    date_formats: dict[str, str]
    missing: list[dict[str, Any]]


def _date_format(field: Mapping[str, Any]) -> str:
    return str((field.get("options") or {}).get("date_format") or "YYYY-MM-DD")


def read_merge_fields(client: MailchimpClient, list_id: str, mapping: FieldMapping) -> MergeFields:
    """The mapped merge fields the audience lacks, and every date field's format; a field of another type than
    the mapping says stops the run."""
    existing = {f["tag"]: f for f in client.merge_fields(list_id)}
    missing: list[dict[str, Any]] = []
    for merge_field in mapping.merge_fields:
        if merge_field.tag in existing:
            if existing[merge_field.tag].get("type") != merge_field.type:
                raise MailchimpError(
                    400,
                    "Merge field type mismatch",
                    f"audience field {merge_field.tag} is {existing[merge_field.tag].get('type')}, "
                    f"mapping says {merge_field.type}",
                )
            continue
        body: dict[str, Any] = {
            "tag": merge_field.tag,
            "name": merge_field.name,
            "type": merge_field.type,
            "public": False,
        }
        if merge_field.type == "date":
            body["options"] = {"date_format": NEW_DATE_FORMAT}
        missing.append(body)
    fields = [*existing.values(), *missing]
    return MergeFields({str(f["tag"]): _date_format(f) for f in fields if f.get("type") == "date"}, missing)


def create_merge_fields(client: MailchimpClient, list_id: str, fields: MergeFields) -> None:
    """Create the missing merge fields, side by side (a first push creates them all: not 200 ms after 200 ms).
    A date field created with another format than the one planned with stops the run: its dates would be
    misread."""
    if not fields.missing:
        return
    with worker_pool(len(fields.missing)) as pool:
        made = pool.map(lambda body: client.create_merge_field(list_id, body), fields.missing)
        for body, field in zip(fields.missing, made, strict=True):
            log.info("created Mailchimp merge field %s (%s)", body["tag"], body["type"])
            if body["type"] == "date" and _date_format(field) != fields.date_formats[body["tag"]]:
                raise MailchimpError(
                    400,
                    "Merge field date format",
                    f"audience field {body['tag']} was created with format {_date_format(field)}, "
                    f"asked for {fields.date_formats[body['tag']]}",
                )


def contact_rejections(con: duckdb.DuckDBPyConnection, contacts: str) -> list[Rejection]:
    """The profiles that are not contacts: no email, an invalid one, or the same email (any case) as a profile
    that wins the contact (the highest lifetime spend, then the lowest customer id): recorded with the reason."""
    rows = con.execute(
        f"select customer_id, email, __email, __valid, __key, __winner from {contacts} "
        "where not __valid or __rank > 1 order by customer_id"
    ).fetchall()
    rejections: list[Rejection] = []
    no_email = payload_hash({})
    for customer_id, email, address, valid, key, winner in rows:
        if not address:  # none, or only spaces
            rejections.append(Rejection(customer_id, "missing email", True, no_email))
        elif not valid:
            rejections.append(Rejection(customer_id, "invalid email address", True, payload_hash({"email": email})))
        else:
            reason = f"duplicate email: merged into contact of {winner}"
            rejections.append(Rejection(customer_id, reason, True, key))
    return rejections


def plan_contacts(
    con: duckdb.DuckDBPyConnection,
    source: ProfileSource,
    mapping: FieldMapping,
    date_formats: Mapping[str, str] | Callable[[], Mapping[str, str]],
    *,
    full_resync: bool,
    withdraw_departed: bool,
    parts: Sequence[str] = ("true",),
    on_part: Callable[[Plan, list[str]], None] | None = None,
) -> tuple[Plan, list[Rejection]]:
    """The contacts' payloads, computed and compared with what was pushed in the warehouse; and the profiles
    that cannot be contacts. ``date_formats``: the audience's, or how to get them (asked once the contacts are
    keyed, so the audience can be read meanwhile); ``parts``, ``on_part``: as for ``plan_changes``."""
    columns = source.columns(con)
    contacts = "_mailchimp_contacts"
    with registered(con, "_email_keys", non_ascii_email_keys(con, source, subscriber_hash)):
        con.execute(f"create or replace temp table {contacts} as {contact_keys_sql(source, columns, '_email_keys')}")
    try:
        formats = date_formats() if callable(date_formats) else date_formats

        def payloads(part: str) -> str:  # the part's contacts with their profiles, then their payloads
            rows = contacts_sql(source, columns, None, keys=f"(select * from {contacts} where {part})")
            return mailchimp_payload_sql(f"({rows})", columns, mapping, formats)

        plan = plan_changes(
            con,
            DESTINATION,
            payloads,
            full_resync=full_resync,
            departed=departed_payload if withdraw_departed else None,
            extras=("member", "tag_count"),
            parts=parts,
            on_part=on_part,
        )
        invalid = contact_rejections(con, contacts)
    finally:
        con.execute(f"drop table if exists {contacts}")
    return plan, invalid


MEMBER_BATCH = 500  # POST /lists/{id}: at most 500 members per call
CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"
MEMBER_KEYS = ("email_address", "status_if_new", "merge_fields")


def departed_payload(key: str, previous: dict[str, Any]) -> dict[str, Any]:
    """A contact we pushed that no profile has any more (customer deleted in Stripe, or email changed): it keeps
    its member record and status at Mailchimp and loses our segment tags."""
    return {"customer_id": previous.get("customer_id"), "email_address": previous.get("email_address"), "tags": []}


def _member_body(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: payload[k] for k in MEMBER_KEYS}


@dataclass
class MemberPlan:
    """How each record to send reaches Mailchimp.

    - ``create``: contacts we never pushed go through the 500-member batch endpoint with
      ``update_existing: false``, so a ``status`` can only ever apply to a new member, and with their tags,
      which the endpoint sets on the members it creates (``create_tags`` of them); one that already exists
      (added by someone else) comes back as ``ERROR_CONTACT_EXISTS`` and is then written with ``put``, its
      tags through the segments;
    - ``put``: contacts we pushed before whose member data changed: one ``PUT`` with ``status_if_new`` each
      (the batch endpoint would need ``status``, which overwrites an existing member's status);
    - ``tags``: per tag, the known members to tag and untag, in bulk through the tag's static segment.
    """

    create: list[str] = dataclass_field(default_factory=list)
    put: list[str] = dataclass_field(default_factory=list)
    tags: TagChanges = dataclass_field(default_factory=TagChanges)
    create_tags: int = 0

    def operations(self) -> dict[str, int]:
        return {
            "member_creates": len(self.create),
            "member_updates": len(self.put),
            "tag_additions": self.create_tags + self.tags.additions,
            "tag_removals": self.tags.removals,
        }


def plan_members(plan: Plan) -> MemberPlan:
    members = MemberPlan()
    for key in sorted(plan.to_send):
        previous = plan.previous.get(key)
        if key not in plan.gone and previous is None:  # its tags go with it in the batch
            members.create.append(key)
            members.create_tags += _extra(plan, key)[1]
            continue
        payload, previous = plan.to_send[key], previous or {}
        if key not in plan.gone and any(previous.get(k) != payload.get(k) for k in MEMBER_KEYS):
            members.put.append(key)  # (a departed contact only loses its tags)
        wanted, before = set(payload["tags"]), set(previous.get("tags", []))
        if wanted - before or before - wanted:
            members.tags.set(key, payload["email_address"], wanted - before, before - wanted)
    return members


def _extra(plan: Plan, key: str) -> tuple[str, int]:
    """(the batch endpoint's new member as JSON, its tag count), as the payload query made them: a new contact
    with ``status`` (applied only because ``update_existing`` is false), its non-empty merge fields and tags."""
    return plan.extras[key]  # type: ignore[return-value]


class BatchCreates:
    """New contacts through the batch endpoint, sent as the plan finds them: ``take`` is ``plan_changes``'s
    ``on_part``, so the first 500 go out while the warehouse plans the rest.

    No batch leaves before ``ready()`` returns (the merge fields exist). Each batch is handled as soon as it is
    answered, on the thread that sent it: members that exist already (added by someone else) go to ``existing``,
    refused ones to ``refused``; the created keys go to ``on_created`` (a new member is complete then, its tags
    included) on a recorder thread, which takes those of batches answered meanwhile in the same call, so no
    connection waits for the warehouse. A refused key, or a failure of ``on_created``, stops the run (``take``,
    ``finish``).
    """

    def __init__(
        self,
        client: MailchimpClient,
        list_id: str,
        pool: ThreadPoolExecutor,
        on_created: Callable[[Plan, list[str]], None] = lambda plan, keys: None,
        ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.client, self.list_id, self.ready = client, list_id, ready
        self.lock = threading.Lock()
        self.waiting: list[str] = []
        self.in_flight = InFlight(pool)
        self.created: list[str] = []
        self.existing: list[str] = []
        self.refused: dict[str, Rejection] = {}
        self.recorded: Combining[tuple[Plan, list[str]]] = Combining(
            lambda answered: on_created(answered[0][0], [key for _, keys in answered for key in keys])
        )

    def take(self, plan: Plan, keys: list[str]) -> None:
        self.waiting += [k for k in sorted(keys) if k not in plan.gone and k not in plan.previous]
        while len(self.waiting) >= MEMBER_BATCH:
            self._send(plan, self.waiting[:MEMBER_BATCH])
            del self.waiting[:MEMBER_BATCH]
        self.in_flight.check()
        self.recorded.check()

    def flush(self, plan: Plan) -> None:
        """Send what is left."""
        if self.waiting:
            self._send(plan, self.waiting)
        self.waiting = []

    def finish(self) -> None:
        """Wait for every answer, and until every new member is recorded."""
        self.waiting = []
        try:
            self.in_flight.check(block=True)
        finally:
            self.recorded.close()

    def _send(self, plan: Plan, chunk: list[str]) -> None:
        self.in_flight.submit(self._deliver, plan, chunk, [_extra(plan, k)[0] for k in chunk])

    def _deliver(self, plan: Plan, chunk: list[str], members: list[dict[str, Any] | str]) -> None:
        self.ready()  # the merge fields exist
        try:
            answer, error = self.client.batch_members(self.list_id, members, update_existing=False), None
        except Exception as exc:
            answer, error = {}, exc
        if error is not None:
            refused = {k: _failure(k, error, plan) for k in chunk}
            with self.lock:
                self.refused.update(refused)
            return
        by_email = {subscriber_hash(str(e.get("email_address") or "")): e for e in answer.get("errors") or []}
        created: list[str] = []
        for key in chunk:
            problem = by_email.get(key)
            if problem is None:
                created.append(key)
            elif problem.get("error_code") == CONTACT_EXISTS:
                with self.lock:
                    self.existing.append(key)
            else:  # the member's own data was refused (fake email, compliance state, forgotten...)
                reason = f"{problem.get('error_code', 'ERROR')}: {problem.get('error', '')}"
                if problem.get("field_message"):  # which value: the error alone can be generic
                    reason += f" ({problem.get('field') or 'member'}: {problem['field_message']})"
                with self.lock:
                    self.refused[key] = Rejection(key, reason[:500], True, plan.hashes[key])
        with self.lock:
            self.created += created
        self.recorded.put((plan, created))


def _failure(key: str, error: BaseException, plan: Plan) -> Rejection:
    """The rejection of ``key`` for a failed call; a bad key stops the whole run instead."""
    if isinstance(error, MailchimpError):
        if error.status in (401, 403):
            raise error
        return Rejection(key, error.reason, error.permanent, plan.hashes[key])
    # timeouts and resets that outlived the retries: sent again next run
    return Rejection(key, f"transient: {type(error).__name__}: {error}"[:500], False, plan.hashes[key])


def _put_each(
    client: MailchimpClient,
    list_id: str,
    plan: Plan,
    keys: list[str],
    max_connections: int,
    on_put: Callable[[list[tuple[str, dict[str, Any]]]], None] = lambda written: None,
) -> dict[str, Rejection]:
    """PUT each of ``keys`` (``status_if_new``, never ``status``); returns the refused ones. ``on_put`` gets the
    written keys with the members as Mailchimp answered them, as they are answered (on the calling thread; the
    answers that came in while it handled the last ones, together)."""

    def work(key: str) -> dict[str, Any] | Exception:
        try:
            payload = plan.to_send[key]
            return client.upsert_member(list_id, payload["email_address"], _member_body(payload))
        except Exception as exc:  # MailchimpError, or timeouts and resets that outlived the retries
            return exc

    refused: dict[str, Rejection] = {}
    with worker_pool(max_connections) as pool:
        futures = {pool.submit(work, key): key for key in keys}
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            written: list[tuple[str, dict[str, Any]]] = []
            for future in done:
                key, answer = futures[future], future.result()
                if isinstance(answer, Exception):
                    refused[key] = _failure(key, answer, plan)
                else:
                    written.append((key, answer))
            if written:
                on_put(written)
    return refused


def _group(tag: str) -> str:
    return tag.partition(":")[0] if ":" in tag else ""


class HeldMembers:
    """What Mailchimp holds of each member this run writes, recorded as each write is answered.

    A member may take several writes (its PUT, then a call per tag that moves): after each, the payload it holds
    now (the new member data with the tags moved so far) is stored as pushed, so a run that dies between them
    sends only what is left (what the stored payload lacks), and what was answered is never written again."""

    def __init__(self, con: duckdb.DuckDBPyConnection, plan: Plan, members: MemberPlan, existing: list[str]) -> None:
        self.con, self.plan, self.tags = con, plan, members.tags
        self.existing = set(existing)
        self.held: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, int] = dict.fromkeys(existing + members.put, 1)
        self.recorded: set[str] = set()
        for per_tag in (self.tags.add, self.tags.remove):
            for emails in per_tag.values():
                for email in emails:
                    key = self.tags.keys[email.lower()]
                    self.pending[key] = self.pending.get(key, 0) + 1

    def put(self, written: list[tuple[str, dict[str, Any]]]) -> None:
        for key, member in written:
            self._put(key, member)
        self._answered([key for key, _ in written])

    def _put(self, key: str, member: dict[str, Any]) -> None:
        payload = self.plan.to_send[key]
        held = {**(self.plan.previous.get(key) or {}), **{k: payload[k] for k in MEMBER_KEYS}}
        if key in self.existing:  # already a member (someone else's, or a lost run of ours): it gets the tags it
            # lacks and loses those of our segment groups it should not have (other tags are not ours to remove)
            wanted = set(payload["tags"])
            ours = {t for t in (str(t.get("name")) for t in member.get("tags") or []) if _group(t) in self.groups}
            self.tags.set(key, payload["email_address"], wanted - ours, ours - wanted)
            self.pending[key] += len(wanted ^ ours)
            held = {**payload, "tags": sorted(ours)}
        self.held[key] = held

    def tagged(self, tag: str, added: list[str], removed: list[str]) -> None:
        for key in added:
            held = self._holding(key)
            held["tags"] = sorted(set(held.get("tags", [])) | {tag})
        for key in removed:
            held = self._holding(key)
            held["tags"] = sorted(set(held.get("tags", [])) - {tag})
        self._answered(added + removed)

    @functools.cached_property
    def groups(self) -> set[str]:
        """The segment groups (``<group>:<segment>``) of the tags we push."""
        return {_group(t) for payload in self.plan.to_send.values() for t in payload.get("tags", [])} - {""}

    def _holding(self, key: str) -> dict[str, Any]:
        if key not in self.held:
            self.held[key] = dict(self.plan.previous.get(key) or {})
        return self.held[key]

    def _answered(self, keys: list[str]) -> None:
        rows: list[tuple[str, str, dict[str, Any] | str]] = []
        for key in keys:
            self.pending[key] -= 1
            if self.pending[key] == 0:  # all its writes answered: it holds the planned payload
                rows.append((key, self.plan.hashes[key], self.plan.texts[key]))
                self.recorded.add(key)
            else:
                rows.append((key, payload_hash(self.held[key]), self.held[key]))
        record_accepted(self.con, DESTINATION, rows)


def sync_members(
    con: duckdb.DuckDBPyConnection,
    client: MailchimpClient,
    list_id: str,
    profiles: ProfileSource | Sequence[Profile],
    mapping: FieldMapping,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    full_resync: bool = False,
    max_connections: int = 10,
    withdraw_departed: bool = True,
) -> SyncResult:
    """Write each changed contact and its tags; ``withdraw_departed``: untag contacts no profile has any more
    (off when only some profiles are given, e.g. a run config ``limit``). ``profiles``: where they are in the
    warehouse (a list is staged there first)."""
    started = time.monotonic()
    source = profiles if isinstance(profiles, ProfileSource) else stage_profiles(con, profiles)
    result = SyncResult(DESTINATION, dry_run=dry_run, considered=source.count(con))

    parts = plan_parts(con, DESTINATION, result.considered, full_resync=full_resync)
    recording = con.cursor()  # the batches' answers are recorded on a thread of their own

    def record_created(plan: Plan, keys: list[str]) -> None:
        # each batch's new members are recorded as it is answered: a run that dies later (or in another batch)
        # does not create them again (the tables exist: the plan made them)
        record_planned(recording, DESTINATION, plan, keys, ensure=False)

    with worker_pool(max_connections) as pool:
        # the audience and its merge fields are read while the warehouse keys the contacts; the missing fields are
        # created while it plans, and new contacts are sent as they are planned, once the fields exist
        checked = pool.submit(client.get_audience, list_id)  # fails on a wrong audience id or key
        fields = pool.submit(read_merge_fields, client, list_id, mapping)
        made: list[Future[None]] = []

        def date_formats() -> dict[str, str]:
            checked.result()
            if not dry_run:  # before any member is sent (FIFO: before the first batch too)
                made.append(pool.submit(create_merge_fields, client, list_id, fields.result()))
            return fields.result().date_formats

        def fields_made() -> None:
            for future in made:
                future.result()

        creates = BatchCreates(client, list_id, pool, record_created, ready=fields_made)
        try:
            plan, invalid = plan_contacts(
                con,
                source,
                mapping,
                date_formats,
                full_resync=full_resync,
                withdraw_departed=withdraw_departed,
                parts=hash_parts(1 if dry_run else parts, column="__key"),
                on_part=None if dry_run else creates.take,
            )
            if not dry_run:
                creates.flush(plan)
            # while the last batches are answered: the plan of the other writes, the profiles that are not contacts
            members = plan_members(plan)
            keys = sorted(plan.to_send)
            new_invalid = [r for r in invalid if plan.is_new_rejection(r)]
            if not dry_run:
                record_rejections(con, DESTINATION, new_invalid, run_id, ensure=False)  # the plan made the tables
        finally:  # what was sent is handled (and recorded) even when planning failed
            try:
                creates.finish()
            finally:
                recording.close()
        fields_made()
    result.still_rejected = plan.still_rejected + len(invalid) - len(new_invalid)
    result.unchanged = plan.unchanged
    result.departed = plan.departed
    result.planned = members.operations()
    if dry_run:
        result.planned_sample = [plan.to_send[k] for k in keys[:10]]
        return result.finish(started=started, client=client, sent=0, rejections=new_invalid)

    sending = creates.in_flight.first_sent or time.monotonic()
    refused: dict[str, Rejection] = dict(creates.refused)
    created, existing = creates.created, sorted(creates.existing)
    # Members written more than once (a PUT, then a call per tag moved) are recorded after each write too.
    held = HeldMembers(con, plan, members, existing)
    refused.update(_put_each(client, list_id, plan, existing + members.put, max_connections, held.put))
    tags = members.tags.without(refused)  # only for members that exist now
    for key, reason in apply_tag_changes(client, list_id, tags, max_connections, held.tagged).items():
        refused.setdefault(key, Rejection(key, reason, False, plan.hashes[key]))
    result.send_seconds = time.monotonic() - sending

    created_now = set(created)  # recorded as they were answered
    for key in refused:  # none should be (a batch refuses only members it did not create): counted once if so
        created_now.discard(key)
    others = [key for key in keys if key not in created_now and key not in refused]  # the other writes accepted
    result.created = len(created_now)
    result.updated = sum(1 for key in others if key not in plan.gone)  # departed contacts are counted apart
    rejections = [refused[k] for k in sorted(refused)]
    record_outcome(con, DESTINATION, plan, [k for k in others if k not in held.recorded], rejections, run_id)
    return result.finish(
        started=started, client=client, sent=len(created_now) + len(others), rejections=new_invalid + rejections
    )
