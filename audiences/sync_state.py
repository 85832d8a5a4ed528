"""Change detection and rejection records shared by every destination.

The warehouse keeps, per destination and record key, the hash (and the payload) of the last payload the
destination accepted. A run sends only records whose payload hash differs; a permanently rejected payload
is not sent again until its data changes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
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


def payload_hash(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Rejection:
    record_key: str
    reason: str
    permanent: bool
    payload_hash: str | None = None


@dataclass
class Plan:
    """What a run will send: new and changed records; what it skips and why."""

    to_send: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> payload
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> last accepted payload
    hashes: dict[str, str] = field(default_factory=dict)
    unchanged: int = 0
    departed: int = 0  # records pushed before that no profile has any more, sent as ``departed(...)`` says
    still_rejected: int = 0  # same payload as a permanent rejection: not retried until it changes
    rejected_before: set[tuple[str, str]] = field(default_factory=set)  # (key, hash) of permanent rejections

    def is_new_rejection(self, rejection: Rejection) -> bool:
        """False when the same record was already refused for the same payload (record it once, not nightly)."""
        return (rejection.record_key, rejection.payload_hash or "") not in self.rejected_before


def plan_changes(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    payloads: Mapping[str, dict[str, Any]],
    *,
    full_resync: bool = False,
    departed: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
) -> Plan:
    """Split ``payloads`` into what to send and what is unchanged or still refused.

    ``departed(key, last payload)``: for records pushed before whose key ``payloads`` no longer has, the
    payload that withdraws what we set (e.g. segment tags); nothing is deleted at the destination. Without it,
    such records are left alone.
    """
    ensure_schema(con)
    pushed = {
        key: (digest, json.loads(payload) if payload else {})
        for key, digest, payload in con.execute(
            "select record_key, payload_hash, payload from sync.pushed_records where destination = ?",
            [destination],
        ).fetchall()
    }
    rejected: set[tuple[str, str]] = {
        (key, digest)
        for key, digest in con.execute(
            "select record_key, payload_hash from sync.rejections where destination = ? and permanent",
            [destination],
        ).fetchall()
    }
    plan = Plan(rejected_before=rejected)
    if departed is not None:
        gone = {key: departed(key, last[1]) for key, last in pushed.items() if key not in payloads}
        plan.departed = sum(1 for key, payload in gone.items() if payload_hash(payload) != pushed[key][0])
        payloads = {**payloads, **gone}
    for key, payload in payloads.items():
        digest = payload_hash(payload)
        plan.hashes[key] = digest
        last = pushed.get(key)
        if last is not None:
            plan.previous[key] = last[1]
        if not full_resync and last is not None and last[0] == digest:
            plan.unchanged += 1
        elif not full_resync and (key, digest) in rejected:
            plan.still_rejected += 1
        else:
            plan.to_send[key] = payload
    return plan


def record_accepted(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    accepted: Iterable[tuple[str, str, dict[str, Any]]],
) -> int:
    """Store (key, hash, payload) of records the destination accepted."""
    keys: list[str] = []
    digests: list[str] = []
    payloads: list[str] = []
    for key, digest, payload in accepted:
        keys.append(key)
        digests.append(digest)
        payloads.append(json.dumps(payload, sort_keys=True, default=str))
    if keys:
        ensure_schema(con)
        batch = pa.table({"record_key": keys, "payload_hash": digests, "payload": payloads})
        with registered(con, "_accepted", batch):
            con.execute(
                "insert or replace into sync.pushed_records "
                "select ?, record_key, payload_hash, payload::JSON, now() from _accepted",
                [destination],
            )
    return len(keys)


def record_rejections(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    rejections: Iterable[Rejection],
    run_id: str | None,
) -> int:
    rows = [(destination, r.record_key, r.reason[:2000], r.permanent, r.payload_hash, run_id) for r in rejections]
    if rows:
        ensure_schema(con)
        con.executemany("insert into sync.rejections values (?, ?, ?, ?, ?, now(), ?)", rows)
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
    record_accepted(con, destination, [(key, plan.hashes[key], plan.to_send[key]) for key in accepted])
    record_rejections(con, destination, rejections, run_id)
