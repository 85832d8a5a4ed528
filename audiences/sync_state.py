"""Change detection and rejection records shared by every destination.

The warehouse keeps, per destination and record key, the hash (and the payload) of the last payload the
destination accepted. A run sends only records whose payload hash differs; a permanently rejected payload
is not sent again until its data changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from audiences.warehouse import registered

SCHEMA_SQL = (
    "create schema if not exists sync",
    """
    create table if not exists sync.pushed_records (
        destination varchar not null,
        record_key varchar not null,
        payload_hash varchar not null,
        payload json,
        pushed_at timestamptz not null,
        primary key (destination, record_key)
    )
    """,
    """
    create table if not exists sync.rejections (
        destination varchar not null,
        record_key varchar not null,
        reason varchar not null,
        permanent boolean not null,
        payload_hash varchar,
        rejected_at timestamptz not null,
        run_id varchar
    )
    """,
    """
    create table if not exists sync.runs (
        run_id varchar,
        destination varchar not null,
        started_at timestamptz not null,
        finished_at timestamptz not null,
        dry_run boolean not null,
        considered integer,
        unchanged integer,
        sent integer,
        created integer,
        updated integer,
        rejected integer,
        api_calls integer
    )
    """,
    # Added later: what a run planned (operations by kind) and, for a dry run, sample payloads.
    "alter table sync.runs add column if not exists planned json",
    "alter table sync.runs add column if not exists sample json",
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for sql in SCHEMA_SQL:
        con.execute(sql)


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The payload as the text its hash is taken of (and stored as): sorted keys, no spaces."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def same_value(a: Any, b: Any) -> bool:
    """Whether two decoded JSON values are the same value: ``1`` and ``1.0`` or ``true`` are not."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def payload_hash(payload: Mapping[str, Any]) -> str:
    return _digest(canonical_json(payload))


@dataclass(frozen=True)
class Rejection:
    record_key: str
    reason: str
    permanent: bool
    payload_hash: str | None = None


class _Payloads(Mapping[str, dict[str, Any]]):
    """The payloads of a plan's records to send, parsed from their JSON text when first asked for."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def __getitem__(self, key: str) -> dict[str, Any]:
        parsed = self._plan.parsed
        if key not in parsed:
            parsed[key] = orjson.loads(self._plan.texts[key])
        return parsed[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plan.texts)

    def __len__(self) -> int:
        return len(self._plan.texts)

    def __contains__(self, key: object) -> bool:
        return key in self._plan.texts


@dataclass
class Plan:
    """What a run will send: new and changed records; what it skips and why.

    Only the records to send are held: their canonical JSON (``texts``), hash, last accepted payload and the
    extra columns the payload query gave (``extras``); ``to_send`` parses a payload when it is asked for.
    """

    texts: dict[str, str] = field(default_factory=dict)  # key to send -> canonical JSON of its payload
    hashes: dict[str, str] = field(default_factory=dict)  # key to send -> hash of that text
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)  # key to send -> last accepted payload
    extras: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # key to send -> the query's extra columns
    gone: set[str] = field(default_factory=set)  # keys to send that no profile has any more (``departed``)
    rehashed: list[tuple[str, str, str]] = field(default_factory=list)  # same payload, new text: (key, hash, text)
    unchanged: int = 0
    departed: int = 0  # records pushed before that no profile has any more, sent as ``departed(...)`` says
    still_rejected: int = 0  # same payload as a permanent rejection: not retried until it changes
    rejected_before: set[tuple[str, str]] = field(default_factory=set)  # (key, hash) of permanent rejections
    parsed: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def to_send(self) -> Mapping[str, dict[str, Any]]:
        return _Payloads(self)

    def send(self, key: str, text: str, digest: str, payload: dict[str, Any] | None = None) -> None:
        self.texts[key], self.hashes[key] = text, digest
        if payload is not None:
            self.parsed[key] = payload

    def is_new_rejection(self, rejection: Rejection) -> bool:
        """False when the same record was already refused for the same payload (record it once, not nightly)."""
        return (rejection.record_key, rejection.payload_hash or "") not in self.rejected_before


PLAN_TABLE = "_sync_plan"
PARTS = 8  # a push that sends most records is planned in parts: the first part is sent while the rest is planned


def plan_changes(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    payloads: Mapping[str, dict[str, Any]] | str | Callable[[str], str],
    *,
    full_resync: bool = False,
    departed: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    extras: Sequence[str] = (),
    parts: Sequence[str] = ("true",),
    on_part: Callable[[Plan, list[str]], None] | None = None,
) -> Plan:
    """Split the payloads into what to send and what is unchanged or still refused, in the warehouse.

    ``payloads``: key -> payload, or a query with the columns ``record_key``, ``payload`` (its canonical JSON
    text) and ``extras`` (kept in ``Plan.extras`` for the records to send). A record is unchanged when its text is
    the last accepted one (the text its stored hash was taken of), or when the texts differ but hold the same JSON
    value (text and hash are then rewritten, so a change of encoding resends nothing).

    ``departed(key, last payload)``: for records pushed before whose key the payloads no longer have, the
    payload that withdraws what we set (e.g. segment tags); nothing is deleted at the destination. Without it,
    such records are left alone.

    ``parts``: conditions that split the records (``hash_parts``), planned one after the other: on the query's
    columns, or, when ``payloads`` is a function of the condition that returns the query, where it puts them.
    ``on_part(plan, keys)`` gets the keys to send of each part as soon as it is planned (the plan holds their
    payloads then), and last those of the departed records, so a sync can send the first records while the
    warehouse plans the rest. The connection is free during the call.
    """
    ensure_schema(con)
    if isinstance(payloads, str) or callable(payloads):
        return _plan(con, destination, payloads, {}, full_resync, departed, extras, parts, on_part)
    texts = {key: canonical_json(payload) for key, payload in payloads.items()}
    table = pa.table(
        {
            "record_key": pa.array(list(texts), pa.string()),
            "payload": pa.array(list(texts.values()), pa.string()),
        }
    )
    with registered(con, "_sync_payloads", table):
        query = "select record_key, payload from _sync_payloads"
        return _plan(con, destination, query, dict(payloads), full_resync, departed, extras, parts, on_part)


def hash_parts(count: int, first: str | None = None, column: str = "record_key") -> tuple[str, ...]:
    """``plan_changes`` parts: ``count`` parts by the hash of ``column``; with ``first``, the records meeting that
    condition make a part of their own before them."""
    spread = tuple(f"hash({column}) % {count} = {i}" for i in range(count)) if count > 1 else ("true",)
    if first is None:
        return spread
    return (first, *(f"not ({first}) and {part}" for part in spread))


PART_TABLE = "_sync_plan_part"


def plan_parts(con: duckdb.DuckDBPyConnection, destination: str, considered: int, *, full_resync: bool) -> int:
    """How many parts to plan a push in: several when it will likely send most records (a first push, a full
    resync, a destination that holds less than half of them), so sending starts while the rest is planned; one
    otherwise (a nightly run sends few records, and each part reads the profiles again)."""
    ensure_schema(con)
    pushed = con.execute("select count(*) from sync.pushed_records where destination = ?", [destination]).fetchone()
    return PARTS if full_resync or int(pushed[0] if pushed else 0) * 2 < considered else 1


def _plan(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    query: str | Callable[[str], str],
    known: dict[str, dict[str, Any]],
    full_resync: bool,
    departed: Callable[[str, dict[str, Any]], dict[str, Any]] | None,
    extras: Sequence[str],
    parts: Sequence[str],
    on_part: Callable[[Plan, list[str]], None] | None,
) -> Plan:
    plan = Plan(
        rejected_before={
            (key, digest)
            for key, digest in con.execute(
                "select record_key, payload_hash from sync.rejections where destination = ? and permanent",
                [destination],
            ).fetchall()
        }
    )
    extra_sql = "".join(f", p.{name}" for name in extras)
    con.execute(f"create or replace temp table {PLAN_TABLE} (record_key varchar)")  # every key planned
    try:
        for part in parts:
            sql = query(part) if callable(query) else f"select * from ({query}) where {part}"
            con.execute(f"create or replace temp table {PART_TABLE} as {sql}")
            try:
                total = int(con.execute(f"select count(*) from {PART_TABLE}").fetchone()[0])  # type: ignore[index]
                # unchanged: the same text as the last accepted payload (what its stored hash was taken of)
                rows = con.execute(
                    f"""
                    select p.record_key, p.payload, sha256(p.payload), s.payload::varchar{extra_sql}
                    from {PART_TABLE} p
                    left join (select record_key, payload from sync.pushed_records where destination = $destination) s
                        using (record_key)
                    where $full or s.payload is null or s.payload::varchar <> p.payload
                    """,
                    {"destination": destination, "full": full_resync},
                ).fetchall()
                con.execute(f"insert into {PLAN_TABLE} select record_key from {PART_TABLE}")
            finally:
                con.execute(f"drop table if exists {PART_TABLE}")
            plan.unchanged += 0 if full_resync else total - len(rows)
            added = _take(plan, rows, known, full_resync)
            if on_part is not None and added:
                on_part(plan, added)
        gone = (
            con.execute(
                "select record_key, payload_hash, payload::varchar from sync.pushed_records s where destination = ? "
                f"and not exists (select 1 from {PLAN_TABLE} p where p.record_key = s.record_key)",
                [destination],
            ).fetchall()
            if departed is not None
            else []
        )
    finally:
        con.execute(f"drop table if exists {PLAN_TABLE}")
    added = []
    for key, pushed_hash, stored in gone:
        previous = orjson.loads(stored) if stored else {}
        payload = departed(key, previous)  # type: ignore[misc]
        text = canonical_json(payload)
        digest = _digest(text)
        if digest != pushed_hash:
            plan.departed += 1
        if not full_resync and digest == pushed_hash:
            plan.unchanged += 1
        elif not full_resync and (key, digest) in plan.rejected_before:
            plan.still_rejected += 1
        else:
            plan.send(key, text, digest, payload)
            plan.previous[key] = previous
            plan.gone.add(key)
            added.append(key)
    if on_part is not None and added:
        on_part(plan, added)
    return plan


def _take(plan: Plan, rows: list[tuple[Any, ...]], known: dict[str, dict[str, Any]], full_resync: bool) -> list[str]:
    """Add a part's new and changed records to ``plan``; returns the keys to send."""
    added: list[str] = []
    for key, text, digest, stored, *extra in rows:  # digest: ``_digest(text)``, taken by the warehouse
        if not full_resync and (key, digest) in plan.rejected_before:
            plan.still_rejected += 1
            continue
        previous = orjson.loads(stored) if stored else None
        if not full_resync and previous is not None and same_value(orjson.loads(text), previous):
            plan.unchanged += 1  # the same value in another text (e.g. another encoder's escapes)
            plan.rehashed.append((key, digest, text))
            continue
        plan.send(key, text, digest, known.get(key))
        added.append(key)
        if previous is not None:
            plan.previous[key] = previous
        if extra:
            plan.extras[key] = tuple(extra)
    return added


def record_accepted(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    accepted: Iterable[tuple[str, str, dict[str, Any] | str]],
    *,
    ensure: bool = True,
) -> int:
    """Store (key, hash, payload or its canonical JSON) of records the destination accepted. ``ensure``: create the
    tables first when they are missing (a run that planned has them: ``plan_changes`` made them)."""
    keys: list[str] = []
    digests: list[str] = []
    payloads: list[str] = []
    for key, digest, payload in accepted:
        keys.append(key)
        digests.append(digest)
        payloads.append(payload if isinstance(payload, str) else canonical_json(payload))
    return _insert_accepted(con, destination, keys, digests, payloads, ensure=ensure)


def record_planned(
    con: duckdb.DuckDBPyConnection, destination: str, plan: Plan, keys: Sequence[str], *, ensure: bool = True
) -> int:
    """Store the planned payloads of ``keys``, which the destination accepted (as ``record_accepted``). Those the
    plan found nothing stored for (``plan.previous`` lacks them) are added with a plain insert, which costs DuckDB
    a third of an ``insert or replace``; should one have a row after all, they are replaced as the others are."""
    hashes, texts, previous = plan.hashes, plan.texts, plan.previous
    for new in (True, False):
        part = [k for k in keys if (k not in previous) == new]
        _insert_accepted(
            con, destination, part, [hashes[k] for k in part], [texts[k] for k in part], ensure=ensure, new=new
        )
    return len(keys)


def _insert_accepted(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    keys: Sequence[str],
    digests: Sequence[str],
    payloads: Sequence[str],
    *,
    ensure: bool,
    new: bool = False,
) -> int:
    if keys:
        if ensure:
            ensure_schema(con)
        batch = pa.table(
            {
                "record_key": pa.array(keys, pa.string()),
                "payload_hash": pa.array(digests, pa.string()),
                "payload": pa.array(payloads, pa.string()),
            }
        )
        rows = "select ?, record_key, payload_hash, payload::JSON, now() from _accepted"
        with registered(con, "_accepted", batch):
            if new:
                try:
                    con.execute(f"insert into sync.pushed_records {rows}", [destination])
                    return len(keys)
                except duckdb.ConstraintException:  # a key has a row after all; the failed insert changed nothing
                    pass
            con.execute(f"insert or replace into sync.pushed_records {rows}", [destination])
    return len(keys)


def record_rejections(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    rejections: Iterable[Rejection],
    run_id: str | None,
    *,
    ensure: bool = True,
) -> int:
    rows = list(rejections)
    if rows:
        if ensure:
            ensure_schema(con)
        batch = pa.table(
            {
                "record_key": pa.array([r.record_key for r in rows], pa.string()),
                "reason": pa.array([r.reason[:2000] for r in rows], pa.string()),
                "permanent": pa.array([r.permanent for r in rows], pa.bool_()),
                "payload_hash": pa.array([r.payload_hash for r in rows], pa.string()),
            }
        )
        with registered(con, "_rejections", batch):  # one insert: executemany takes ~1.5 ms a row
            con.execute(
                "insert into sync.rejections (destination, record_key, reason, permanent, payload_hash, "
                "rejected_at, run_id) select ?, record_key, reason, permanent, payload_hash, now(), ? from _rejections",
                [destination, run_id],
            )
    return len(rows)


def record_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str | None,
    destination: str,
    started_at: float,
    dry_run: bool,
    counts: Mapping[str, int],
    planned: Mapping[str, int] | None = None,
    sample: list[dict[str, Any]] | None = None,
) -> None:
    ensure_schema(con)
    con.execute(
        "insert into sync.runs values (?, ?, to_timestamp(?), to_timestamp(?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            destination,
            started_at,
            time.time(),
            dry_run,
            counts.get("considered", 0),
            counts.get("unchanged", 0),
            counts.get("sent", 0),
            counts.get("created", 0),
            counts.get("updated", 0),
            counts.get("rejected", 0),
            counts.get("api_calls", 0),
            json.dumps(dict(planned)) if planned else None,
            json.dumps(sample, default=str) if sample else None,
        ],
    )


def record_outcome(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    plan: Plan,
    accepted: Iterable[str],
    rejections: Iterable[Rejection],
    run_id: str | None,
) -> None:
    """Store what the destination accepted (by key, from the plan) and what it refused."""
    record_planned(con, destination, plan, list(accepted))
    record_accepted(con, destination, plan.rehashed)
    record_rejections(con, destination, rejections, run_id)
