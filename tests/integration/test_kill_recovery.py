"""The nightly job SIGKILLed at 20+ points across extract, dbt and push; each next run recovers.

Runs are real processes running the ``dagster job execute`` command line (forked from a parent that imported the
code location once, see ``forked_jobs``), each killed with its dbt child as a whole process group. The kill points
come from a seeded generator, placed by the run's own progress: the n-th Stripe request of the run (the stand-in
kills the run before answering it), the n-th dbt node the run reports (then a random delay), the n-th write a
destination receives (killed before it is applied, or after it is applied and before it is answered). The kills
are chained: the run after a kill is the one killed at the next point. After each kill the warehouse must open and
hold a consistent state (invariants in ``check_consistent``); one clean run (the real CLI) ends the test.

"Sent twice", precisely: a write that reaches a destination carrying a record whose content the destination holds
already, so that it changes nothing there: a Mailchimp batch entry for an existing member, a member PUT that
changes neither its status nor its merge fields, a tag added to a member who has it or removed from one who has
not; a Customer.io identify that changes no attribute; a Customer.io event whose id the workspace has already.
The destinations are idempotent, so such a resend is harmless to the data, but it is what the issue forbids. It
is allowed only for a record the killed run delivered and had not yet recorded as delivered (it was in flight):
every resend must be of such a record, each is counted against the kill that caused it, and a kill's resends are
at most the records it left in flight.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from audiences.customerio_client import CustomerIOClient
from audiences.customerio_events import forward_events
from audiences.customerio_sync import sync_people
from audiences.field_mapping import load_mapping
from audiences.mailchimp_client import MailchimpClient, subscriber_hash
from audiences.mailchimp_sync import sync_members
from audiences.profiles import ProfileSource
from sandbox.customerio_api import CustomerIOStandIn
from sandbox.environment import CIO_KEY, CIO_SITE_ID, MAILCHIMP_KEY, StandIns, run_job, running_stand_ins
from sandbox.http_server import Request, Response
from sandbox.mailchimp_api import MailchimpStandIn
from tests.conftest import MANIFEST
from tests.integration.forked_jobs import ForkedRun, JobForker
from tests.integration.scenario import build_scenario

SEED = 20_261_202
STEP = re.compile(r" - (\S+) - STEP_START - ")
DESTINATIONS = ("mailchimp", "customerio", "customerio_events")


@dataclass
class Point:
    """Where to kill a run: at its ``n``-th Stripe request, after its ``n``-th dbt node (+ ``delay``), or at its
    ``n``-th write to ``destination`` (before the stand-in applies it, or once applied, before answering)."""

    kind: str  # "stripe", "dbt" or "write"
    n: int
    destination: str = ""
    after_apply: bool = False
    delay: float = 0.0
    job: str = "nightly_sync"
    path: str = ""  # writes: count only those to paths matching this


@dataclass
class Write:
    run: int
    destination: str
    key: str
    resend: bool  # changed nothing at the destination: its content was there already


@dataclass
class Kill:
    run: int
    point: Point
    phase: str = ""
    in_flight_requests: int = 0
    dbt_building: bool = False
    in_flight: set[tuple[str, str]] = field(default_factory=set)  # the records of the requests in flight
    uncommitted: set[tuple[str, str]] = field(default_factory=set)
    carried: set[tuple[str, str]] = field(default_factory=set)  # left in flight by an earlier kill, not yet recorded
    resends: int = 0


class Tap:
    """Wraps the stand-ins' dispatch (the requests still go over HTTP and are answered as always): counts each run's
    requests, fires the kill point, and records each write's records and whether it changed anything."""

    def __init__(self, stand_ins: StandIns, forker: JobForker) -> None:
        self.stand_ins = stand_ins
        self.forker = forker
        self.lock = threading.RLock()
        self.run = 0
        self.point: Point | None = None
        self.fired = threading.Event()
        self.counts: Counter[str] = Counter()
        self.writes: list[Write] = []
        self.in_flight = 0
        self.in_flight_at_kill = 0
        self.flying: dict[int, set[tuple[str, str]]] = {}  # request -> the records it carries, while handled
        self.flying_at_kill: set[tuple[str, str]] = set()
        self.dbt_building = False
        for name, probe in (
            ("stripe", None),
            ("mailchimp", self._mailchimp_records),
            ("customerio", self._customerio_records),
        ):
            server = getattr(stand_ins, name)
            server.dispatch = self._wrap(name, server.dispatch, probe)  # type: ignore[method-assign]

    def arm(self, run: int, point: Point | None) -> None:
        with self.lock:
            self.run, self.point = run, point
            self.counts.clear()
            self.fired.clear()
            self.dbt_building = False

    def kill(self) -> None:
        with self.lock:
            if self.fired.is_set():
                return
            self.in_flight_at_kill = self.in_flight
            self.flying_at_kill = set().union(*self.flying.values())
            self.fired.set()
            self.forker.kill()

    def _wrap(
        self,
        name: str,
        dispatch: Callable[[Request], Response | None],
        probe: Callable[[Request], list[tuple[str, str, Callable[[], Any]]]] | None,
    ) -> Callable[[Request], Response | None]:
        def tapped(request: Request) -> Response | None:
            if self.fired.is_set():  # the run is dead: nothing after the kill is its doing
                return None
            write = request.method in {"POST", "PUT", "PATCH"} and probe is not None
            with self.lock:
                self.counts[name] += 1
                if write:
                    self.counts[name + " writes"] += 1
                point, run = self.point, self.run
                mine = False
                if point is not None and point.kind == "stripe" and name == "stripe":
                    mine = self.counts[name] == point.n
                elif (
                    point is not None
                    and point.kind == "write"
                    and write
                    and name == point.destination
                    and re.search(point.path, request.path)
                ):
                    self.counts["target"] += 1
                    mine = self.counts["target"] == point.n
                self.in_flight += 1
            try:
                records = probe(request) if write and probe is not None else []
                with self.lock:
                    self.flying[id(request)] = {(destination, key) for destination, key, _ in records}
                if mine and point is not None and not point.after_apply:
                    self.kill()
                    return None
                before = [look() for _, _, look in records]
                response = dispatch(request)
                if response is not None and response.status < 300:
                    with self.lock:
                        for (destination, key, look), old in zip(records, before, strict=True):
                            new = look()
                            if new is not None:  # (a record the destination refused was not delivered)
                                self.writes.append(Write(run, destination, key, old is not None and new == old))
                if mine:
                    self.kill()
                return response
            finally:
                with self.lock:
                    self.in_flight -= 1
                    self.flying.pop(id(request), None)

        return tapped

    # -- what a write carries, and how to look at each record's state at the destination ---------------------
    def _mailchimp_records(self, request: Request) -> list[tuple[str, str, Callable[[], Any]]]:
        mc, audience = self.stand_ins.mailchimp, self.stand_ins.audience_id
        body = request.json() or {}

        def member(email: str, *parts: str) -> Callable[[], Any]:
            def look() -> Any:
                found = mc.member(audience, email)
                if found is None:
                    return None
                state = {"status": found["status"], "merge_fields": found["merge_fields"]}
                state["tags"] = sorted(mc.member_tags(audience, email))
                return tuple(state[p] for p in parts)

            return look

        out: list[tuple[str, str, Callable[[], Any]]] = []
        if re.fullmatch(r"/3\.0/lists/[^/]+", request.path):  # the batch endpoint
            for entry in body.get("members", []):
                email = entry["email_address"]
                out.append(("mailchimp", subscriber_hash(email), member(email, "status", "merge_fields", "tags")))
        elif "/members/" in request.path and request.method == "PUT":
            email = body["email_address"]
            out.append(("mailchimp", subscriber_hash(email), member(email, "status", "merge_fields")))
        elif match := re.fullmatch(r"/3\.0/lists/[^/]+/segments/(\d+)", request.path):
            names = {str(s["id"]): s["name"] for s in mc.segments(audience)}
            tag = names.get(match.group(1), "")
            for email in body.get("members_to_add", []) + body.get("members_to_remove", []):

                def has_tag(email: str = email) -> Any:
                    return None if mc.member(audience, email) is None else tag in mc.member_tags(audience, email)

                out.append(("mailchimp", subscriber_hash(email), has_tag))
        return out

    def _customerio_records(self, request: Request) -> list[tuple[str, str, Callable[[], Any]]]:
        cio = self.stand_ins.customerio
        out: list[tuple[str, str, Callable[[], Any]]] = []
        if request.path != "/api/v2/batch":
            return out
        for op in (request.json() or {}).get("batch", []):
            person = op["identifiers"]["id"]
            if op["action"] == "identify":
                out.append(("customerio", person, lambda person=person: cio.person(person)))
            elif op["action"] == "event":

                def has_event(person: str = person, event_id: str = op["id"]) -> Any:
                    return True if event_id in {e["id"] for e in cio.events(person)} else None

                out.append(("customerio_events", op["attributes"]["stripe_event_id"], has_event))
        return out


def current_step(output: str) -> str:
    steps = STEP.findall(output)
    return steps[-1] if steps else ""


def phase_of(step: str) -> str:
    if step == "stripe_extract":
        return "extract"
    if step == "warehouse_models":
        return "dbt"
    if step.startswith(("mailchimp__", "customerio__")):
        return "push"
    return step or "start"


def watch_dbt(tap: Tap, run: ForkedRun, point: Point) -> None:
    """Kill ``run`` ``point.delay`` seconds after its ``dbt build`` process started (the step reports dbt's nodes
    only once the build is over: the build's own process is the progress there is to go by), noting whether the
    build was still running then."""
    while tap.forker.current is run and not tap.fired.is_set():
        if any("dbt build" in c for c in run.group_commands()):
            time.sleep(point.delay)
            tap.dbt_building = any("dbt build" in c for c in run.group_commands())
            tap.kill()
            return
        time.sleep(0.05)


def schedule(rng: random.Random) -> list[Point]:
    """20 points: 8 in the extract (backfill, then incremental runs), 4 in dbt, 8 in the push."""
    backfill = [Point("stripe", n) for n in sorted(rng.sample(range(1, 30), 4))]
    incremental = [Point("stripe", n) for n in sorted(rng.sample(range(1, 8), 4))]
    dbt = [Point("dbt", 0, delay=round(rng.uniform(1.0, 8.0), 2)) for _ in range(4)]
    push = [  # the first push (after the one dbt build that completes), then push_audiences runs
        Point("write", 1, "customerio", path="/batch"),  # the people batch, killed before it is applied
        Point("write", 1, "customerio", after_apply=True, path="/batch", job="push_audiences"),  # answer lost
        Point("write", rng.randint(1, 5), "mailchimp", after_apply=True, path="/merge-fields", job="push_audiences"),
        Point("write", 1, "mailchimp", after_apply=True, path=r"/lists/[^/]+$", job="push_audiences"),  # the batch
        Point("write", rng.randint(2, 6), "mailchimp", after_apply=True, path="/members/", job="push_audiences"),
        Point("write", 1, "customerio", after_apply=True, path="/batch", job="push_audiences"),  # the events
        Point("write", 1, "customerio", path="/batch", job="push_audiences"),  # their resend, before applied
        # tag moves (the account changes first: the runs before it wrote each member's tags with the member, or
        # found them there)
        Point("write", 1, "mailchimp", after_apply=True, path="/segments/"),
    ]
    return backfill + incremental + dbt + push


def change_the_account(stand_ins: StandIns, rng: random.Random, *, delete: bool = True) -> None:
    """Updates, a purchase, a refund, a cancellation and (``delete``) a deletion: work for the incremental runs."""
    account = stand_ins.stripe.account
    customers = sorted(account.customers)
    account.update_customer(customers[rng.randrange(len(customers))], name="Renamed Between Kills")
    buyer = customers[rng.randrange(len(customers))]
    account.add_charge(buyer, 7_700, "usd")
    charge = next(c for c in account.charges.values() if c["status"] == "succeeded" and c["amount_refunded"] == 0)
    account.refund_charge(charge["id"], amount=charge["amount"] // 2)
    subscription = next((s for s in account.subscriptions.values() if s["status"] == "active"), None)
    if subscription is not None:
        account.cancel_subscription(subscription["id"])
    if delete:
        account.delete_customer(customers[-1])
    account.add_customer(email="new.between.kills@gmail.com", name="New Between", metadata={"marketing_opt_in": "1"})


# -- the invariants after a kill -----------------------------------------------------------------------------------
def check_consistent(warehouse: Path, stand_ins: StandIns, excused: set[tuple[str, str]]) -> None:
    """The warehouse opens (and takes writes), and what it holds is consistent with itself and the destinations.

    ``excused``: records the killed run delivered without recording it; the destination may hold newer content.
    """
    if not warehouse.exists():
        return
    duckdb.connect(str(warehouse)).close()  # opens for writing, replaying what the WAL holds
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        q = con.execute
        tables = {f"{s}.{t}" for s, t in q("select table_schema, table_name from information_schema.tables").fetchall()}
        # Stripe: one row per id; a stream handed over to events holds every live object created before its cursor;
        # a backfill in progress holds at least the objects of the windows it recorded as landed.
        account = stand_ins.stripe.account
        for table in sorted(t for t in tables if t.startswith("stripe.")):
            total, distinct = q(f"select count(*), count(distinct id) from {table}").fetchone()  # type: ignore[misc]
            assert total == distinct, f"{table}: duplicate ids"
        streams = q("select stream, events_cursor, backfill_cursor from sync.stripe_streams").fetchall()
        for stream, events_cursor, backfill_cursor in streams if "sync.stripe_streams" in tables else []:
            live = {"customers": account.customers, "charges": account.charges}.get(stream)
            if live is not None and backfill_cursor is None and events_cursor is not None:
                landed = {r[0] for r in q(f"select id from stripe.{stream}").fetchall()}
                due = {i for i, o in live.items() if o["created"] < events_cursor - 300}
                assert due <= landed, f"stripe.{stream}: {len(due - landed)} objects before the cursor missing"
            if backfill_cursor is not None:
                windows = q(
                    "select created_gte, created_lt, objects from sync.stripe_backfill_windows where stream = ?",
                    [stream],
                ).fetchall()
                for gte, lt, objects in windows:
                    # A page done up to its oldest object records [oldest + 1, upper): its rows start at oldest.
                    (held,) = q(
                        f"select count(*) from stripe.{stream} where epoch(created) >= ? and epoch(created) < ?",
                        [gte - 1, lt],
                    ).fetchone()  # type: ignore[misc]
                    assert held >= objects, f"stripe.{stream}: window [{gte}, {lt}) recorded but not landed"
        # dbt: every relation reads whole (a table is swapped in by dbt, never half-written); profiles are unique.
        for table in sorted(t for t in tables if t.split(".")[0] in {"staging", "intermediate", "marts"}):
            q(f"select count(*) from {table}").fetchone()
        if "marts.customer_profiles" in tables:
            assert q("select count(*) = count(distinct customer_id) from marts.customer_profiles").fetchone() == (True,)
            orphans = q(
                "select count(*) from marts.customer_segments where customer_id not in "
                "(select customer_id from marts.customer_profiles)"
            ).fetchone()
            assert orphans == (0,)
        # Sync state vs the destinations: what the warehouse says was accepted is there.
        if "sync.pushed_records" in tables:
            check_pushed_are_delivered(con, stand_ins, excused)
            duplicates = q(
                "select count(*) from (select destination, record_key, payload_hash from sync.rejections "
                "where permanent group by all having count(*) > 1)"
            ).fetchone()
            assert duplicates == (0,), "a permanent rejection recorded twice"
    finally:
        con.close()


def check_pushed_are_delivered(
    con: duckdb.DuckDBPyConnection, stand_ins: StandIns, excused: set[tuple[str, str]]
) -> None:
    import orjson

    mc, cio, audience = stand_ins.mailchimp, stand_ins.customerio, stand_ins.audience_id
    rows = con.execute("select destination, record_key, payload::varchar from sync.pushed_records").fetchall()
    for destination, key, text in rows:
        if (destination, key) in excused:
            continue
        payload = orjson.loads(text)
        if destination == "mailchimp":
            member = mc.member(audience, payload["email_address"])
            assert member is not None, f"Mailchimp member {key} recorded as pushed, not there"
            assert mc.member_tags(audience, payload["email_address"]) == set(payload["tags"]), key
            if "status_if_new" in payload:
                assert member["status"] == payload["status_if_new"], key
        elif destination == "customerio":
            person = cio.person(key)
            assert person is not None, f"Customer.io person {key} recorded as pushed, not there"
            for name, value in payload["attributes"].items():
                assert person.get(name) == (None if value == "" else value), (key, name)
        elif destination == "customerio_events":
            ids = {e["id"] for e in cio.events(payload["identifiers"]["id"])}
            assert payload["id"] in ids, f"event {key} recorded as sent, not there"


def committed_since(warehouse: Path, started_at: float) -> set[tuple[str, str]]:
    """Records the warehouse recorded as delivered at or after ``started_at`` (wall clock)."""
    if not warehouse.exists():
        return set()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
        if "pushed_records" not in tables:
            return set()
        rows = con.execute(
            "select destination, record_key from sync.pushed_records where epoch(pushed_at) >= ?", [started_at - 1]
        ).fetchall()
        return {(d, k) for d, k in rows}
    finally:
        con.close()


# -- the expected end state: the final warehouse pushed afresh, by the same engines, to fresh stand-ins --------------
def destination_state(mc: MailchimpStandIn, audience: str, cio: CustomerIOStandIn) -> dict[str, Any]:
    members = {
        m["email_address"]: (m["status"], m["merge_fields"], sorted(mc.member_tags(audience, m["email_address"])))
        for m in mc.members(audience)
    }
    people = cio.persons()
    events = {p: sorted((e["id"], e["name"], e["timestamp"]) for e in cio.events(p)) for p in people}
    return {"members": members, "people": people, "events": events}


def reference_state(warehouse: Path, workdir: Path) -> dict[str, Any]:
    copy = workdir / "reference.duckdb"
    shutil.copy(warehouse, copy)
    con = duckdb.connect(str(copy))
    mc = MailchimpStandIn(api_key=MAILCHIMP_KEY)
    cio = CustomerIOStandIn(site_id=CIO_SITE_ID, api_key=CIO_KEY)
    audience = "fresh00001"
    mc.create_audience(list_id=audience, name="reference")
    mc.start()
    cio.start()
    try:
        con.execute("delete from sync.pushed_records")
        con.execute("delete from sync.rejections")
        mapping = load_mapping(MANIFEST)
        sync_members(con, MailchimpClient(MAILCHIMP_KEY, api_base=mc.url + "/3.0"), audience, ProfileSource(), mapping)
        cio_client = CustomerIOClient(CIO_SITE_ID, CIO_KEY, base_url=cio.url)
        sync_people(con, cio_client, ProfileSource(), mapping)
        forward_events(con, cio_client)
        return destination_state(mc, audience, cio)
    finally:
        con.close()
        mc.stop()
        cio.stop()


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    with running_stand_ins(build_scenario(seed=11, background_customers=24).account) as servers:
        yield servers


@pytest.mark.timeout(1200)
def test_runs_killed_at_random_points_recover_and_send_nothing_twice(
    stand_ins: StandIns, dbt_manifest: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    warehouse = tmp_path / "warehouse.duckdb"
    env = stand_ins.env(warehouse, tmp_path / "dagster_home")
    forker = JobForker(env, tmp_path)
    tap = Tap(stand_ins, forker)
    kills: list[Kill] = []
    outstanding: dict[tuple[str, str], int] = {}  # record -> the kill that left it in flight
    points = schedule(rng)
    try:
        for index, point in enumerate(points, start=1):
            if index == 5:  # the backfill kills are done: give the incremental runs something to read
                change_the_account(stand_ins, rng)
            if point.path == "/segments/":  # segments to move (no deletion: see the end)
                change_the_account(stand_ins, rng, delete=False)
            tap.arm(index, point)
            run = forker.start(point.job)
            wall = time.time()
            if point.kind == "dbt":
                threading.Thread(target=watch_dbt, args=(tap, run, point), daemon=True).start()
            forker.wait()
            output = run.output()
            if not tap.fired.is_set():  # the run ended before its point: no kill, it is a recovery run
                assert run.exit_code == 0, output[-4000:]
                settle(tap, index, outstanding, committed_since(warehouse, wall), kill=None)
                continue
            assert run.exit_code == -9, (point, run.exit_code, output[-3000:])
            kill = Kill(
                index,
                point,
                phase_of(current_step(output)),
                tap.in_flight_at_kill,
                tap.dbt_building,
                tap.flying_at_kill,
            )
            kills.append(kill)
            settle(tap, index, outstanding, committed_since(warehouse, wall), kill=kill)
            check_consistent(warehouse, stand_ins, kill.uncommitted)

        # (no deletion: a contact pushed and then deleted is withdrawn, which a fresh push cannot reproduce)
        change_the_account(stand_ins, rng, delete=False)
        tap.arm(len(points) + 1, None)
        final_wall = time.time()
        proc = run_job("nightly_sync", env)  # the real command line, once
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-6000:]
        settle(tap, len(points) + 1, outstanding, committed_since(warehouse, final_wall), kill=None)
        check_consistent(warehouse, stand_ins, set())
    finally:
        forker.close()

    # At least 20 kills, some in each phase.
    phases = Counter(k.phase for k in kills)
    summary = "\n".join(
        f"run {k.run:2d} {k.phase:7s} {k.point.kind}#{k.point.n} {k.point.destination}"
        f"{' after apply' if k.point.after_apply else ''}{' dbt building' if k.dbt_building else ''}: "
        f"{k.in_flight_requests} requests in flight, "
        f"{len(k.uncommitted)} records delivered and not recorded, {k.resends} resent next"
        for k in kills
    )
    cpu = os.times()
    print(
        f"\n{summary}\nphases {dict(phases)}, {time.monotonic() - started:.0f}s, CPU (this process and the runs it "
        f"reaped): {cpu.user + cpu.system + cpu.children_user + cpu.children_system:.0f}s"
    )
    assert len(kills) >= 20 and all(phases[p] >= 4 for p in ("extract", "dbt", "push")), (phases, summary)
    assert sum(k.dbt_building for k in kills) >= 3, "too few kills caught dbt build running"

    # Nothing lost, nothing extra: the destinations hold what the final warehouse pushed afresh would give.
    got = destination_state(stand_ins.mailchimp, stand_ins.audience_id, stand_ins.customerio)
    expected = reference_state(warehouse, tmp_path)
    for section in ("members", "people", "events"):
        differing = sorted(
            k for k in got[section].keys() | expected[section].keys() if got[section].get(k) != expected[section].get(k)
        )
        shown = [(k, got[section].get(k), expected[section].get(k)) for k in differing[:3]]
        assert not differing, f"{section}: {len(differing)} differ, e.g. (key, got, expected) {shown}"
    # Nothing sent twice but what a kill left in flight, each counted against its kill and bounded by it: the
    # records of the requests in flight at the kill (every write, member PUTs and tag moves included, is recorded
    # as it is answered), or records an earlier kill left in flight that this run had not finished writing (a
    # member an answer-lost batch created is found existing by the next batch, then written by a PUT: a kill
    # between the two carries it over).
    assert all(k.resends <= len(k.uncommitted) for k in kills), summary
    for k in kills:
        assert k.uncommitted <= k.in_flight | k.carried, (k.run, k.point, sorted(k.uncommitted - k.in_flight)[:5])
    assert any(k.uncommitted for k in kills), "no kill caught a delivery in flight: the push points missed"


def settle(
    tap: Tap,
    run: int,
    outstanding: dict[tuple[str, str], int],
    committed: set[tuple[str, str]],
    kill: Kill | None,
) -> None:
    """Account for ``run``'s writes: each resend must be of a record a kill left in flight (counted against that
    kill); what the run delivered and did not record is in flight now (when it was killed)."""
    with tap.lock:
        writes = [w for w in tap.writes if w.run == run]
    resent = {(w.destination, w.key) for w in writes if w.resend}
    delivered = {(w.destination, w.key) for w in writes}
    for record in sorted(resent):
        assert record in outstanding, f"run {run} sent {record} again, though it was recorded as delivered"
    by_kill = Counter(outstanding[r] for r in resent)
    for earlier in tap_kills(tap):
        earlier.resends += by_kill.get(earlier.run, 0)
    for record in committed:
        outstanding.pop(record, None)
    if kill is not None:
        kill.carried = set(outstanding)
        # (a record of a request in flight at the kill was delivered and not recorded as such, even if an earlier
        # write of it in this run was: a member's PUT, then the tag move in flight)
        kill.uncommitted = (delivered - committed) | (delivered & kill.in_flight)
        for record in kill.uncommitted:
            outstanding[record] = run
        tap_kills(tap).append(kill)


def tap_kills(tap: Tap) -> list[Kill]:
    if not hasattr(tap, "kills"):
        tap.kills = []  # type: ignore[attr-defined]
    return tap.kills  # type: ignore[attr-defined]
