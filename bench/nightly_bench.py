"""``make bench-nightly`` (last part of ``make bench``): the nightly job end to end on the 100,000-customer account.

    python -m bench.nightly_bench                # 100,000 customers: 1 full nightly, then 3 incremental ones
    python -m bench.nightly_bench --quick        # 10,000 customers, 2 incremental rounds (~10 minutes)
    python -m bench.nightly_bench --runs 5 --full-runs 2

About 30 minutes on the full account: generating it takes ~1 min; the full nightly ~15, of which ~10 extracting
1.4M objects at Stripe's test-mode rate limit; each incremental nightly ~4. Run it on an otherwise idle machine:
the report flags runs during which other processes used the CPU.

1. Starts the stand-ins, each in its own process: Stripe (``sandbox.serve_stripe``: the generator and seed of
   ``bench.run``, 100 ms per request, Stripe's test-mode limits) and Mailchimp + Customer.io
   (``sandbox.serve_destinations``: 200 ms per request, Mailchimp's 10 connections), as ``bench.push_bench``.
2. Full nightly: ``dagster job execute -m orchestration.definitions -j nightly_sync`` in its own process with
   the environment of a production run (``sandbox.environment.StandIns.env``) pointed at the stand-ins, on a
   fresh warehouse, DAGSTER_HOME and destinations. Timed as a whole; each step's duration from the run's event
   log in DAGSTER_HOME (STEP_START to STEP_SUCCESS); the memory of the process tree (the job's process and its
   children, dbt among them); Stripe requests and destination API calls as the stand-ins counted them.
3. Incremental nightly, ``--runs`` times: the Stripe stand-in changes ``--fraction`` of the customers and of the
   charges (``POST /_bench/mutate``) and moves its clock on; the job runs again on the same warehouse, DAGSTER_HOME
   and destinations (what the next night's run does).
4. Writes its section of BENCHMARKS.md (``bench/results/quick.md`` with ``--quick``) and the raw results as
   JSON in ``bench/results/``.

Ceilings: Stripe, 100 objects a request at the 25 requests/s of test mode; Mailchimp, 10 connections x 500
members a call / 200 ms; Customer.io, the configured request rate x the ops of the run's average size that fit in
a 500 KB request. dbt, the asset checks and Dagster's own work have no external ceiling: the whole run's ceiling
is the sum of the API phases' ceilings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audiences.customerio_client import DEFAULT_TRACK_REQUESTS_PER_SECOND, MAX_REQUEST_BYTES
from audiences.stripe_streams import STREAMS
from bench.common import PAGE_SIZE, ServerProcess, write_section
from bench.run import RESULTS, log, machine, machine_cpu_seconds, median, shown
from sandbox.environment import STRIPE_KEY, StandIns

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
JOB = "nightly_sync"
SECTION = "# Benchmarks: end-to-end nightly run"
MAILCHIMP_BATCH = 500  # members per batch call (POST /lists/{id})

# The job's steps (its op names) by phase; every other step is an asset check.
PHASES: dict[str, str] = {
    "stripe_extract": "extract",
    "warehouse_models": "dbt",
    "mailchimp__audience_members": "mailchimp",
    "mailchimp__store": "mailchimp_store",
    "customerio__people": "customerio_people",
    "customerio__person_events": "customerio_events",
}
CHECKS = "checks"
PHASE_TITLES = {
    "extract": "Stripe extract",
    "dbt": "dbt build",
    CHECKS: "asset checks",
    "mailchimp": "Mailchimp push",
    "mailchimp_store": "Mailchimp store",
    "customerio_people": "Customer.io people",
    "customerio_events": "Customer.io events",
}


# -- pure logic (tests/unit/test_nightly_bench.py) --------------------------------------------------------------
@dataclass(frozen=True)
class StepEvent:
    """One step event of a run's event log: ``kind`` is start, success or failure."""

    step: str
    kind: str
    timestamp: float


def step_durations(events: Iterable[StepEvent]) -> dict[str, dict[str, Any]]:
    """Each step, in the order the steps started: seconds from its first start to its last success or failure
    (retries included), its status and attempts; a step that never ended is ``unfinished`` with no seconds."""
    out: dict[str, dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e.timestamp):
        if e.kind == "start":
            step = out.setdefault(e.step, {"start": e.timestamp, "seconds": None, "status": "unfinished"})
            step["attempts"] = step.get("attempts", 0) + 1
        elif e.step in out and e.kind in ("success", "failure"):
            out[e.step]["seconds"] = round(e.timestamp - out[e.step]["start"], 3)
            out[e.step]["status"] = e.kind
    return out


def phase_seconds(steps: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Seconds per phase: the job's named steps, and its asset checks summed as ``checks``."""
    out: dict[str, float] = {}
    for step, s in steps.items():
        phase = PHASES.get(step, CHECKS)
        out[phase] = round(out.get(phase, 0.0) + (s["seconds"] or 0.0), 3)
    return out


def calls_floor(records: int, per_call: int) -> int:
    """The fewest calls that carry ``records`` when every call is full."""
    return math.ceil(records / per_call) if records > 0 else 0


def stripe_floor(objects_by_stream: Mapping[str, int], page: int = PAGE_SIZE) -> int:
    """The fewest list requests that read these objects: full pages, and one request even for an empty stream."""
    return sum(max(1, calls_floor(n, page)) for n in objects_by_stream.values())


def stripe_ceiling_seconds(requests: int, requests_per_second: float) -> float:
    return requests / requests_per_second


def mailchimp_ceiling_seconds(members: int, latency: float, connections: int, batch: int = MAILCHIMP_BATCH) -> float:
    """``connections`` calls of ``batch`` members at once, each taking ``latency``: members / (c x b / latency)."""
    return members * latency / (connections * batch)


def customerio_ops_per_request(op_bytes: float, max_bytes: int = MAX_REQUEST_BYTES) -> int:
    """The ops of ``op_bytes`` each that fit in one batch request."""
    return max(1, int(max_bytes // op_bytes)) if op_bytes > 0 else 1


def customerio_ceiling_seconds(ops: int, requests_per_second: float, ops_per_request: int) -> float:
    return ops / (requests_per_second * ops_per_request)


def descendants(parents: Mapping[int, int], root: int) -> set[int]:
    """``root`` and every process below it, from each process's parent (``pid -> ppid``)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return out


# -- the process tree's memory -----------------------------------------------------------------------------------
def _parents() -> dict[int, int]:
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _kib(pid: int, name: str, fields: tuple[str, ...]) -> dict[str, int]:
    """``fields`` (e.g. ``VmRSS:``) of ``/proc/<pid>/<name>``, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        key = line.split(":", 1)[0] + ":"
        if key in fields:
            out[key] = int(line.split()[1])
    return out


def _label(pid: int) -> str:
    """A short name for the process: ``dagster job execute``, ``dbt build``, ``python -m x``."""
    argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    if len(argv) > 1 and Path(argv[0]).name.startswith("python") and not argv[1].startswith("-"):
        argv = argv[1:]  # an entry-point script (dagster, dbt) run by its interpreter
    return " ".join([Path(argv[0]).name, *argv[1:3]])[:60]


@dataclass
class TreeMemory:
    """Polls the memory of a process and its descendants every ``interval`` seconds from ``/proc``.

    Each process's own peak is its ``VmHWM`` (the kernel's high-water mark), as last read before it ended; the sum
    is of what each process held at the same sample, so its peak is the largest sampled one: a lower bound. (RSS
    counts a page two processes share in both; PSS would share it out, but reading it walks every page table, tens
    of milliseconds for a process of a few GB: too dear to poll on the machine being measured.)"""

    root: int
    interval: float = 0.2
    samples: int = 0
    peak_rss_kib: int = 0
    at_peak: dict[str, float] = field(default_factory=dict)  # label -> RSS MB at the sample of the largest RSS sum
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)  # pid -> label, peak (VmHWM) KiB
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tree-memory", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        rss_sum = 0
        now: dict[str, float] = {}
        for pid in sorted(descendants(_parents(), self.root)):
            try:
                status = _kib(pid, "status", ("VmRSS:", "VmHWM:"))
                proc = self.processes.get(pid) or {"command": _label(pid), "peak_kib": 0}
            except (OSError, IndexError, ValueError):  # it ended meanwhile
                continue
            if "VmRSS:" not in status:  # a zombie
                continue
            proc["peak_kib"] = max(proc["peak_kib"], status.get("VmHWM:", 0))
            self.processes[pid] = proc
            rss_sum += status["VmRSS:"]
            now[f"{proc['command']} ({pid})"] = round(status["VmRSS:"] * 1024 / 1e6, 1)
        self.samples += 1
        if rss_sum > self.peak_rss_kib:
            self.peak_rss_kib, self.at_peak = rss_sum, now

    def report(self, wait4_maxrss_kib: int) -> dict[str, Any]:
        largest = max(self.processes.values(), key=lambda p: p["peak_kib"], default=None)
        return {
            "largest_process_mb": round(wait4_maxrss_kib * 1024 / 1e6, 1),
            "largest_process_sampled": largest["command"] if largest else None,
            "tree_rss_sum_peak_mb": round(self.peak_rss_kib * 1024 / 1e6, 1),
            "at_peak_rss_mb": self.at_peak,
            "processes": [
                {"pid": pid, "command": p["command"], "peak_rss_mb": round(p["peak_kib"] * 1024 / 1e6, 1)}
                for pid, p in sorted(self.processes.items())
            ],
            "samples": self.samples,
            "interval_seconds": self.interval,
        }


# -- the stand-ins and the job -----------------------------------------------------------------------------------
@dataclass
class Settings:
    mode: str
    customers: int
    seed: int
    stripe_latency: float
    global_rps: float
    endpoint_rps: float
    destination_latency: float
    max_connections: int
    cio_rps: float
    cio_rps_set: bool  # CUSTOMERIO_REQUESTS_PER_SECOND given to the job (else its default)
    full_runs: int
    runs: int
    fraction: float
    advance: int
    interval: float

    @property
    def stripe_rps(self) -> float:
        """Requests/s the limits allow across the job's list endpoints."""
        return min(self.global_rps, self.endpoint_rps * len(STREAMS))


def http(method: str, url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def stripe_argv(s: Settings) -> list[str]:
    return [PY, "-m", "sandbox.serve_stripe", "--customers", str(s.customers), "--seed", str(s.seed),
            "--latency", f"{s.stripe_latency:g}", "--global-rps", f"{s.global_rps:g}",
            "--endpoint-rps", f"{s.endpoint_rps:g}", "--api-key", STRIPE_KEY, "--port", "0"]  # fmt: skip


def destinations_argv(s: Settings) -> list[str]:
    return [PY, "-m", "sandbox.serve_destinations", "--latency", f"{s.destination_latency:g}",
            "--max-connections", str(s.max_connections)]  # fmt: skip


@dataclass(frozen=True)
class _Served:
    """What ``StandIns.env`` reads of a stand-in: its base URL."""

    url: str


def job_env(stripe_url: str, dest: Mapping[str, Any], warehouse: Path, home: Path, s: Settings) -> dict[str, str]:
    """The environment of a production run (``StandIns.env``), with the benchmark stand-ins' URLs and
    credentials (``serve_destinations`` has its own audience and Customer.io site)."""
    served = StandIns(_Served(stripe_url), _Served(dest["mailchimp"]), _Served(dest["customerio"]))  # type: ignore[arg-type]
    env = served.env(warehouse, home)
    env.update(
        MAILCHIMP_API_KEY=dest["mailchimp_key"],
        MAILCHIMP_AUDIENCE_ID=dest["audience_id"],
        CUSTOMERIO_SITE_ID=dest["customerio_site_id"],
        CUSTOMERIO_API_KEY=dest["customerio_key"],
    )
    if s.cio_rps_set:
        env["CUSTOMERIO_REQUESTS_PER_SECOND"] = f"{s.cio_rps:g}"
    return env


def job_argv() -> list[str]:
    return [str(Path(PY).parent / "dagster"), "job", "execute", "-m", "orchestration.definitions", "-j", JOB]


def read_run(home: Path) -> dict[str, Any]:
    """The newest run of the instance in ``home``: its steps, its duration and its materializations' metadata."""
    from dagster import DagsterEventType, DagsterInstance

    kinds = {
        DagsterEventType.STEP_START: "start",
        DagsterEventType.STEP_SUCCESS: "success",
        DagsterEventType.STEP_FAILURE: "failure",
    }
    instance = DagsterInstance.from_config(str(home))
    try:
        run = instance.get_runs(limit=1)[0]
        entries = instance.all_logs(
            run.run_id,
            of_type={
                *kinds,
                DagsterEventType.RUN_START,
                DagsterEventType.RUN_SUCCESS,
                DagsterEventType.RUN_FAILURE,
                DagsterEventType.ASSET_MATERIALIZATION,
            },
        )
    finally:
        instance.dispose()
    events, run_times, materialized = [], {}, {}
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type in kinds and entry.step_key:
            events.append(StepEvent(entry.step_key, kinds[event.event_type], entry.timestamp))
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            m = entry.asset_materialization
            assert m is not None
            materialized["/".join(m.asset_key.path)] = {k: _plain(v.value) for k, v in m.metadata.items()}
        else:
            run_times[event.event_type] = entry.timestamp
    start = run_times.get(DagsterEventType.RUN_START)
    end = run_times.get(DagsterEventType.RUN_SUCCESS, run_times.get(DagsterEventType.RUN_FAILURE))
    return {
        "run_id": run.run_id,
        "status": run.status.value,
        "dagster_run_seconds": round(end - start, 3) if start and end else None,
        "steps": step_durations(events),
        "materialized": materialized,
    }


def _plain(value: Any) -> Any:
    """A metadata value as JSON can hold it."""
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


class StandInsRunning:
    """The Stripe stand-in (for the whole benchmark) and the destinations' (fresh for each full nightly)."""

    def __init__(self, s: Settings, workdir: Path) -> None:
        self.settings, self.workdir = s, workdir
        self.stripe = ServerProcess(stripe_argv(s), workdir / "stripe.log", REPO)
        self.destinations: ServerProcess | None = None
        self.generation = 0

    def start_stripe(self) -> dict[str, Any]:
        return self.stripe.start()

    def fresh_destinations(self) -> dict[str, Any]:
        if self.destinations is not None:
            self.destinations.stop()
        self.generation += 1
        log_path = self.workdir / f"destinations-{self.generation}.log"
        self.destinations = ServerProcess(destinations_argv(self.settings), log_path, REPO)
        return self.destinations.start()

    @property
    def dest(self) -> dict[str, Any]:
        assert self.destinations is not None
        return self.destinations.info

    def reset(self) -> None:
        http("POST", self.stripe.info["url"] + "/_bench/reset")
        for api in ("mailchimp", "customerio"):
            http("POST", self.dest[api] + "/_bench/reset")

    def stats(self) -> dict[str, Any]:
        return {
            "stripe": http("GET", self.stripe.info["url"] + "/_bench/stats"),
            "mailchimp": http("GET", self.dest["mailchimp"] + "/_bench/stats"),
            "customerio": http("GET", self.dest["customerio"] + "/_bench/stats"),
        }

    def cpu(self) -> dict[str, float]:
        assert self.destinations is not None
        return {"stripe": self.stripe.cpu_seconds(), "destinations": self.destinations.cpu_seconds()}

    def stop(self) -> None:
        if self.destinations is not None:
            self.destinations.stop()
        self.stripe.stop()


def run_job(name: str, env: dict[str, str], stand_ins: StandInsRunning, workdir: Path, s: Settings) -> dict[str, Any]:
    """One ``dagster job execute`` in its own process: wall time, memory of its process tree, CPU, the stand-ins'
    counters, and the run's steps from its event log."""
    argv = job_argv()
    stand_ins.reset()
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    log(f"{name}: dagster job execute -m orchestration.definitions -j {JOB}")
    stand_in_cpu = stand_ins.cpu()
    machine_cpu = machine_cpu_seconds()
    started = time.monotonic()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            argv, cwd=REPO, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )
        memory = TreeMemory(proc.pid, interval=s.interval)
        memory.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            memory.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{err.read_text()[-5000:]}")
    cpu = usage.ru_utime + usage.ru_stime  # the job's process and the children it waited for (dbt)
    stand_in_used = {k: round(v - stand_in_cpu[k], 1) for k, v in stand_ins.cpu().items()}
    other = machine_cpu_seconds() - machine_cpu - cpu - sum(stand_in_used.values())
    result: dict[str, Any] = {
        "name": name,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 1),
        "stand_in_cpu_seconds": stand_in_used,
        "other_cpu_seconds": round(max(0.0, other), 1),
        "memory": memory.report(usage.ru_maxrss),
        "servers": stand_ins.stats(),
        **read_run(Path(env["DAGSTER_HOME"])),
    }
    result["phases"] = phase_seconds(result["steps"])
    result["steps_seconds"] = round(sum(x["seconds"] or 0.0 for x in result["steps"].values()), 3)
    result["outside_steps_seconds"] = round(wall - result["steps_seconds"], 3)
    phases = ", ".join(f"{PHASE_TITLES[p]} {v:.1f}s" for p, v in result["phases"].items())
    mem, servers = result["memory"], result["servers"]
    log(
        f"{name}: {wall:.1f}s ({phases}); Stripe {servers['stripe']['requests']:,} requests, Mailchimp "
        f"{servers['mailchimp']['requests']:,} calls, Customer.io {servers['customerio']['requests']:,}; "
        f"largest process {mem['largest_process_mb']:,.0f} MB, tree RSS sum {mem['tree_rss_sum_peak_mb']:,.0f} MB"
    )
    return result


def _sent(run: Mapping[str, Any], key: str) -> int:
    return int(run["materialized"].get(key, {}).get("sent") or 0)


def ceilings(run: dict[str, Any], s: Settings, mutation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per API phase: its ceiling in seconds and the fewest calls it could have made, beside what it made.

    Full nightly: Stripe must read every object each stream listed or landed, whichever is more (the events
    stream lands the events it reads without listing them); an incremental one must read the events the changes
    emitted (``mutation``), 100 a page. Mailchimp must send the members it sent,
    500 a call; Customer.io the ops it sent, as many a request as fit in 500 KB at the run's average op size."""
    servers = run["servers"]
    if mutation is None:
        listed = {
            key: max(int(meta.get("objects_listed") or 0), int(meta.get("rows_changed") or 0))
            for key, meta in run["materialized"].items()
            if key.startswith("stripe/")
        }
        stripe_min = stripe_floor(listed)
        stripe_records = sum(listed.values())
    else:
        stripe_records = int(mutation["events_emitted"])
        stripe_min = max(1, calls_floor(stripe_records, PAGE_SIZE))
    cio = servers["customerio"]
    op_bytes = cio.get("batch_bytes", 0) / cio["batch_ops"] if cio.get("batch_ops") else 0.0
    per_request = customerio_ops_per_request(op_bytes)
    members = _sent(run, "mailchimp/audience_members")
    people, events = _sent(run, "customerio/people"), _sent(run, "customerio/person_events")
    out = {
        "extract": {
            "records": stripe_records,
            "calls": servers["stripe"]["requests"],
            "calls_floor": stripe_min,
            "seconds": stripe_ceiling_seconds(stripe_min, s.stripe_rps),
        },
        "mailchimp": {
            "records": members,
            "calls": servers["mailchimp"]["requests"],
            "calls_floor": calls_floor(members, MAILCHIMP_BATCH),
            "seconds": mailchimp_ceiling_seconds(members, s.destination_latency, s.max_connections),
        },
        "customerio_people": {
            "records": people,
            "calls_floor": calls_floor(people, per_request),
            "seconds": customerio_ceiling_seconds(people, s.cio_rps, per_request),
        },
        "customerio_events": {
            "records": events,
            "calls_floor": calls_floor(events, per_request),
            "seconds": customerio_ceiling_seconds(events, s.cio_rps, per_request),
        },
    }
    out["customerio"] = {
        "calls": cio["requests"],
        "calls_floor": out["customerio_people"]["calls_floor"] + out["customerio_events"]["calls_floor"],
        "op_bytes": round(op_bytes, 1),
        "ops_per_request": per_request,
    }
    out["total_seconds"] = sum(
        out[p]["seconds"] for p in ("extract", "mailchimp", "customerio_people", "customerio_events")
    )
    return out


def benchmark(s: Settings, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": asdict(s), "machine": machine(), "full": [], "incremental": []}
    stand_ins = StandInsRunning(s, workdir)
    log(f"generating the account ({s.customers:,} customers) and starting the Stripe stand-in")
    try:
        results["account"] = stand_ins.start_stripe()
        stripe_url = results["account"]["url"]
        results["stand_in_commands"] = [shown(stripe_argv(s)), shown(destinations_argv(s))]
        log(f"Stripe stand-in at {stripe_url}: {results['account']['customers']:,} customers")
        warehouse = home = None
        for i in range(1, s.full_runs + 1):
            if warehouse is not None and home is not None:  # only the last full run's state is kept
                shutil.rmtree(warehouse.parent, ignore_errors=True)
            state = workdir / f"full-{i}"
            warehouse, home = state / "warehouse.duckdb", state / "dagster_home"
            state.mkdir()
            dest = stand_ins.fresh_destinations()
            env = job_env(stripe_url, dest, warehouse, home, s)
            run = run_job(f"full-{i}", env, stand_ins, workdir, s)
            run["ceilings"] = ceilings(run, s)
            results["full"].append(run)
        assert warehouse is not None and home is not None
        results["job_env"] = {k: v.replace(str(workdir), "$WORK") for k, v in env.items()}
        for k in range(1, s.runs + 1):
            query = f"fraction={s.fraction:g}&seed={{}}&advance={s.advance}"
            mutation = http("POST", f"{stripe_url}/_bench/mutate?{query.format(k)}")
            results["mutate_command"] = f"curl -X POST '{stripe_url}/_bench/mutate?{query.format('K')}'"
            log(
                f"incremental {k}: changed {mutation['customers_updated']:,} customers and refunded "
                f"{mutation['charges_refunded']:,} charges ({mutation['events_emitted']:,} events), clock "
                f"{s.advance}s on"
            )
            run = run_job(f"incremental-{k}", env, stand_ins, workdir, s)
            run["mutation"] = mutation
            run["ceilings"] = ceilings(run, s, mutation)
            results["incremental"].append(run)
        results["stand_in_peak_rss_mb"] = {
            "stripe": stand_ins.stripe.peak_rss_mb(),
            "destinations": stand_ins.destinations.peak_rss_mb() if stand_ins.destinations else None,
        }
    finally:
        stand_ins.stop()
    results["job_command"] = shown(job_argv())
    return results


# -- the report --------------------------------------------------------------------------------------------------
def spread(values: list[float], fmt: str = "{:,.1f}") -> str:
    """``median (min-max)``, or the one value."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def share(measured: list[float], ceiling: list[float]) -> str:
    """The ceiling as a share of the time taken (100 % = at the ceiling), median (min-max) over the runs."""
    shares = [100 * c / m for c, m in zip(ceiling, measured, strict=True) if m]
    return spread(shares, "{:.0f} %") if shares else "-"


def report(results: dict[str, Any], raw: Path, quick: bool) -> str:
    s, m = results["settings"], results["machine"]
    full, incr = results["full"], results["incremental"]
    a = results["account"]
    lines: list[str] = []
    add = lines.append
    add(SECTION)
    add("")
    add(f"Generated by `make bench-nightly` (part of `make bench`) on {m['date']}, commit {m['commit']}.")
    add("")
    add(
        f"Machine: {m['nproc']} cores (`nproc`), {m['cpu']}, {m['memory_gib']} GiB RAM, {m['os']}, "
        f"Python {m['python']}."
    )
    add("")
    add("## Setup")
    add("")
    add(
        f"- Account: `generate_account(seed={s['seed']}, customers={s['customers']})`, the one of the Stripe "
        f"extraction benchmark: {a['customers']:,} customers, {a['charges']:,} charges, "
        f"{a['subscriptions']:,} subscriptions, {a['refunds']:,} refunds, {a['disputes']:,} disputes, "
        f"{a['events']:,} events in the last 30 days; generated "
        "before anything is timed."
    )
    add(
        f"- Stand-ins, each in its own process: Stripe (`sandbox.serve_stripe`) with "
        f"{s['stripe_latency'] * 1000:.0f} ms per request and Stripe's test-mode limits ({s['global_rps']:g} "
        f"requests/s per key, {s['endpoint_rps']:g}/s per endpoint, 429 beyond); Mailchimp and Customer.io "
        "(`sandbox.serve_destinations`) answering each request "
        f"{s['destination_latency'] * 1000:.0f} ms after it arrived, Mailchimp {s['max_connections']} connections at "
        "once. Fresh destinations for each full nightly; the incremental rounds use the destinations of the last one."
    )
    cio = f"{s['cio_rps']:g}/s" + (
        " (`CUSTOMERIO_REQUESTS_PER_SECOND`)"
        if s["cio_rps_set"]
        else " (the default: `CUSTOMERIO_REQUESTS_PER_SECOND` unset)"
    )
    add(
        f"- The job: `{results['job_command']}` in its own process, with the environment of a production run "
        f"(`sandbox.environment.StandIns.env`: {', '.join(f'`{k}`' for k in results['job_env'])}) pointed at the "
        f"stand-ins; Customer.io paced at {cio}. `MAILCHIMP_STORE_ID` is not set there, so the Mailchimp store step "
        "skips. A full nightly starts from an empty warehouse and DAGSTER_HOME; each incremental nightly runs on "
        f"those of the full one after the Stripe stand-in changed {s['fraction']:.0%} of the customers (a new email) "
        f"and of the charges (a partial refund, which creates a refund) and moved its clock {s['advance']} s on."
    )
    add(
        "- Time: the job's process from start to exit (*whole run*). Phases: each step's STEP_START to STEP_SUCCESS in "
        "the run's event log (DAGSTER_HOME); *outside the steps* is the rest of the process's life (imports, loading "
        "the definitions, Dagster's run bookkeeping)."
    )
    add(
        "- Memory of the job's process tree (its process and its children: dbt is a subprocess). *Largest process*: "
        "`ru_maxrss` from `wait4` on the job's process, which the kernel reports as the largest peak of that process "
        "and of every descendant it waited for: exact. *Tree sum at its peak*: the resident sets of all the tree's "
        f"processes added up at the same moment, polled from `/proc` every {s['interval']:g} s, largest sample: a "
        "lower bound (a peak between two samples is missed; a page two processes share counts in both)."
    )
    add(
        f"- **Ceilings** (the API phases): Stripe, 100 objects a request at "
        f"{min(s['global_rps'], len(STREAMS) * s['endpoint_rps']):g} requests/s, for the objects the run read "
        f"(full: Σ ⌈objects ÷ 100⌉ over the {len(STREAMS)} streams, events included; incremental: "
        "⌈events the changes emitted ÷ 100⌉); Mailchimp, "
        f"{s['max_connections']} connections x {MAILCHIMP_BATCH} members a call / {s['destination_latency']:g} s = "
        f"{s['max_connections'] * MAILCHIMP_BATCH / s['destination_latency']:,.0f} members/s for the members sent; "
        f"Customer.io, {s['cio_rps']:g} requests/s x the ops that fit in {MAX_REQUEST_BYTES:,} bytes at the run's "
        "average op size, for the people and events sent. The whole run's ceiling is their sum (dbt, the checks and "
        "Dagster have none): *share* = ceiling ÷ time taken. *Floor*: the fewest calls that carry what was sent "
        "(full pages and batches)."
    )
    add("")
    add("## Results")
    add("")
    measured = full + incr
    busy = [r for r in measured if r["other_cpu_seconds"] > 0.1 * r["wall_seconds"]]
    if busy:
        worst = max(r["other_cpu_seconds"] / r["wall_seconds"] for r in busy)
        add(
            f"> **The machine was not idle**: other processes used up to {worst:.1f} of its {m['nproc']} cores during "
            f"{len(busy)} of the {len(measured)} runs (column *other CPU*). The times are then pessimistic."
        )
        add("")
    n_full, n_incr = len(full), len(incr)
    add(
        f"{n_full} full nightly run{'s' if n_full != 1 else ''} and {n_incr} incremental "
        f"one{'s' if n_incr != 1 else ''}"
        + (" (the full run is long: one by default, `--full-runs N` for more)" if n_full == 1 else "")
        + "; median (min-max) where there are several."
    )
    add("")
    add(
        f"| figure | full nightly | ceiling | share | incremental nightly ({s['fraction']:.0%} changed) | ceiling "
        "| share |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def col(runs: list[dict[str, Any]], get: Any) -> list[float]:
        return [float(get(r)) for r in runs]

    def row(title: str, get: Any, ceil: Any | None = None) -> None:
        cells = [title]
        for runs in (full, incr):
            values = col(runs, get)
            cells.append(spread(values) if runs else "-")
            if ceil is None or not runs:
                cells += ["", ""]
            else:
                limits = col(runs, ceil)
                cells += [spread(limits, "{:,.2f}"), share(values, limits)]
        add("| " + " | ".join(cells) + " |")

    row("whole run, s", lambda r: r["wall_seconds"], lambda r: r["ceilings"]["total_seconds"])
    for phase in ("extract", "dbt", CHECKS, "mailchimp", "mailchimp_store", "customerio_people", "customerio_events"):
        if any(phase in r["phases"] for r in measured):
            ceil = (lambda r, p=phase: r["ceilings"][p]["seconds"]) if phase in full[0]["ceilings"] else None
            row(f"{PHASE_TITLES[phase]}, s", lambda r, p=phase: r["phases"].get(p, 0.0), ceil)
    row("outside the steps, s", lambda r: r["outside_steps_seconds"])
    row("Dagster's run (RUN_START to RUN_SUCCESS), s", lambda r: r["dagster_run_seconds"] or 0.0)
    add("")
    add("| figure | full nightly | floor | incremental nightly | floor |")
    add("| --- | ---: | ---: | ---: | ---: |")

    def calls(title: str, get: Any, floor: Any | None = None) -> None:
        cells = [title]
        for runs in (full, incr):
            if not runs:
                cells += ["-", "-"]
                continue
            cells += [spread(col(runs, get), "{:,.0f}"), spread(col(runs, floor), "{:,.0f}") if floor else ""]
        add("| " + " | ".join(cells) + " |")

    calls(
        "Stripe requests",
        lambda r: r["servers"]["stripe"]["requests"],
        lambda r: r["ceilings"]["extract"]["calls_floor"],
    )
    calls(
        "Stripe objects to read (full: listed; incremental: events emitted)",
        lambda r: r["ceilings"]["extract"]["records"],
    )
    calls("Stripe 429s", lambda r: r["servers"]["stripe"]["rate_limited"])
    calls(
        "Mailchimp API calls",
        lambda r: r["servers"]["mailchimp"]["requests"],
        lambda r: r["ceilings"]["mailchimp"]["calls_floor"],
    )
    calls("Mailchimp members sent", lambda r: r["ceilings"]["mailchimp"]["records"])
    calls(
        "Customer.io API calls",
        lambda r: r["servers"]["customerio"]["requests"],
        lambda r: r["ceilings"]["customerio"]["calls_floor"],
    )
    calls(
        "Customer.io people + events sent",
        lambda r: r["ceilings"]["customerio_people"]["records"] + r["ceilings"]["customerio_events"]["records"],
    )
    add("")
    add("| memory of the job's process tree | full nightly | incremental nightly |")
    add("| --- | ---: | ---: |")
    for title, key in (
        ("largest single process (exact, `wait4`), MB", "largest_process_mb"),
        ("sum of RSS at its peak (sampled), MB", "tree_rss_sum_peak_mb"),
    ):
        cells = [
            spread(col(runs, lambda r, k=key: r["memory"][k]), "{:,.0f}") if runs else "-" for runs in (full, incr)
        ]
        add(f"| {title} | {cells[0]} | {cells[1]} |")
    add("")

    add("### Each run")
    add("")
    add(
        "| run | whole (s) | extract (s) | dbt (s) | checks (s) | Mailchimp (s) | Customer.io people (s) | Customer.io "
        "events (s) | outside steps (s) | Stripe requests | Mailchimp calls | Customer.io calls | largest process (MB) "
        "| tree RSS sum (MB) | job CPU (s) | stand-ins CPU (s) | other CPU (s) |"
    )
    add("| --- " + "| ---: " * 16 + "|")
    for r in measured:
        p, sv, mem = r["phases"], r["servers"], r["memory"]
        add(
            f"| {r['name']} | {r['wall_seconds']:,.1f} | {p.get('extract', 0):,.1f} | {p.get('dbt', 0):,.1f} | "
            f"{p.get(CHECKS, 0):,.1f} | {p.get('mailchimp', 0):,.1f} | {p.get('customerio_people', 0):,.1f} | "
            f"{p.get('customerio_events', 0):,.1f} | {r['outside_steps_seconds']:,.1f} | "
            f"{sv['stripe']['requests']:,} | "
            f"{sv['mailchimp']['requests']:,} | {sv['customerio']['requests']:,} | {mem['largest_process_mb']:,.0f} | "
            f"{mem['tree_rss_sum_peak_mb']:,.0f} | {r['cpu_seconds']:,.0f} | "
            f"{sum(r['stand_in_cpu_seconds'].values()):,.0f} | {r['other_cpu_seconds']:,.0f} |"
        )
    add("")
    for r in (full[-1], incr[-1] if incr else None):
        if r is None:
            continue
        add(f"Steps of `{r['name']}` (event log of run `{r['run_id']}`):")
        add("")
        add("| step | phase | seconds | status |")
        add("| --- | --- | ---: | --- |")
        for step, x in r["steps"].items():
            seconds = "-" if x["seconds"] is None else f"{x['seconds']:,.2f}"
            add(f"| `{step}` | {PHASE_TITLES[PHASES.get(step, CHECKS)]} | {seconds} | {x['status']} |")
        add("")
        mem = r["memory"]
        procs = ", ".join(f"`{p['command']}` {p['peak_rss_mb']:,.0f} MB" for p in mem["processes"])
        at_peak = ", ".join(f"`{k}` {v:,.0f} MB" for k, v in mem["at_peak_rss_mb"].items())
        add(
            f"Processes of `{r['name']}` and their peaks (VmHWM, sampled): {procs}. At the largest RSS sum: {at_peak}. "
            f"Largest process by the samples: `{mem['largest_process_sampled']}`."
        )
        add("")
        routes = {api: r["servers"][api].get("by_route") or r["servers"][api].get("by_path") for api in r["servers"]}
        for api, title in (("stripe", "Stripe"), ("mailchimp", "Mailchimp"), ("customerio", "Customer.io")):
            add(f"- {title} requests by route: " + ", ".join(f"`{k}` {v:,}" for k, v in sorted(routes[api].items())))
        add("")
    if incr:
        mu = incr[-1]["mutation"]
        add(
            f"Each incremental round changed {mu['objects_changed']:,} objects on Stripe ({mu['customers_updated']:,} "
            f"customers, {mu['charges_refunded']:,} charges, {mu['refunds_created']:,} new refunds; "
            f"{mu['events_emitted']:,} events)."
        )
        add("")
    peaks = results.get("stand_in_peak_rss_mb", {})
    if peaks:
        add(
            f"Stand-ins' own peak RSS (not in the figures above): Stripe {peaks['stripe']:,.0f} MB, destinations "
            f"{peaks['destinations'] or 0:,.0f} MB."
        )
        add("")
    add("## Commands")
    add("")
    add("```sh")
    add("python -m bench.nightly_bench --quick" if quick else "make bench-nightly")
    add(f"# = {results['command']}")
    add("# the stand-ins (each its own process; each prints its URLs when ready):")
    for command in results["stand_in_commands"]:
        add(command)
    add("# the full nightly, then each incremental round after the changes ($WORK: the fresh state directory):")
    env = " ".join(f"{k}={v}" for k, v in results["job_env"].items())
    add(f"{env} {results['job_command']}")
    if incr:
        add(results["mutate_command"])
        add(f"{env} {results['job_command']}")
    add("```")
    add("")
    add(f"Raw results: `{os.path.relpath(raw, REPO) if raw.is_relative_to(REPO) else raw}`.")
    add("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="10,000 customers, 2 incremental rounds; bench/results only"
    )
    parser.add_argument("--customers", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, help="incremental rounds (default 3, --quick 2)")
    parser.add_argument("--full-runs", type=int, default=1, help="full nightly runs (each ~11 min on the full account)")
    parser.add_argument("--stripe-latency", type=float, default=0.1, help="seconds per Stripe request")
    parser.add_argument("--global-rps", type=float, default=25.0, help="Stripe test mode: 25")
    parser.add_argument("--endpoint-rps", type=float, default=25.0, help="Stripe: 25 per endpoint")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per Mailchimp / Customer.io request")
    parser.add_argument("--max-connections", type=int, default=10, help="Mailchimp's simultaneous connections")
    parser.add_argument("--cio-rps", type=float, help="CUSTOMERIO_REQUESTS_PER_SECOND (default: unset, the job's 100)")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of customers and charges changed")
    parser.add_argument("--advance", type=int, default=3600, help="seconds the Stripe clock moves on after changes")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between memory samples")
    parser.add_argument("--output", type=Path, help="default: BENCHMARKS.md, or bench/results/quick.md")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, warehouse, instance)")
    args = parser.parse_args(argv)
    if args.full_runs < 1 or (args.runs is not None and args.runs < 0):
        parser.error("--full-runs must be at least 1 and --runs at least 0")

    quick = args.quick
    settings = Settings(
        mode="quick" if quick else "full",
        customers=args.customers or (10_000 if quick else 100_000),
        seed=args.seed,
        stripe_latency=args.stripe_latency,
        global_rps=args.global_rps,
        endpoint_rps=args.endpoint_rps,
        destination_latency=args.latency,
        max_connections=args.max_connections,
        cio_rps=args.cio_rps or DEFAULT_TRACK_REQUESTS_PER_SECOND,
        cio_rps_set=args.cio_rps is not None,
        full_runs=args.full_runs,
        runs=args.runs if args.runs is not None else (2 if quick else 3),
        fraction=args.fraction,
        advance=args.advance,
        interval=args.interval,
    )
    output = (args.output or (RESULTS / "quick.md" if quick else REPO / "BENCHMARKS.md")).resolve()
    raw = (
        RESULTS / "nightly.json"
        if output == REPO / "BENCHMARKS.md"
        else output.with_name(f"{output.stem}-nightly.json")
    )
    workdir = Path(tempfile.mkdtemp(prefix="nightly-bench-"))
    log(f"work directory {workdir}")
    try:
        results = benchmark(settings, workdir)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["command"] = shown([PY, "-m", "bench.nightly_bench", *(argv if argv is not None else sys.argv[1:])])
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = report(results, raw, quick)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_section(output, SECTION, text)  # the other benchmarks' sections stay
    log(f"wrote the nightly section of {output} and {raw}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
