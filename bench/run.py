"""``make bench``: the Stripe extraction against the rate-limit ceiling, two peers, memory and incremental cost.

    python -m bench.run            # 100,000 customers (~1.06M charges), 3 runs of each
    python -m bench.run --quick    # 10,000 customers, 1 run of each, to check the harness (~5 minutes)

The full run takes about 25 minutes plus three of our backfills: 1.1M objects at the 2,500/s ceiling is
7.5 minutes each (~40 minutes in all); at the ~800/s measured before the first full run, ~23 minutes each
(~1.5 hours in all). ``--runs 1`` cuts it by two thirds. Run it on an otherwise idle machine: the report
flags commands during which other processes used the CPU.

1. Starts the Stripe stand-in in its own process (``python -m sandbox.serve_stripe``) with the latency and
   Stripe's documented test-mode rate limits; the account is generated before anything is timed.
2. For each run, one after the other (never concurrently), each command in its own process: our backfill
   (``bench.backfill_ours``), the plain sequential SDK loop (``bench.backfill_sequential``) and dlt's
   ``rest_api`` source (``bench.backfill_dlt``). Peak RSS comes from ``wait4`` on the command's process;
   requests and 429s from the stand-in's own counters.
3. Then, on the warehouse of our last backfill, each incremental round changes 1% of the customers and charges
   on the stand-in (and moves its clock an hour on) and runs our extraction again.
4. Writes the report (``BENCHMARKS.md``; ``bench/results/quick.md`` with ``--quick``) and the raw results
   as JSON next to it in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from bench.common import ENDPOINTS, PAGE_SIZE, ServerProcess, write_section

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
KEY = "sk_test_bench_0123456789"  # a test-mode key: Stripe allows 25 requests/s


@dataclass
class Settings:
    mode: str
    customers: int
    seed: int
    latency: float
    global_rps: float
    endpoint_rps: float
    runs: int
    peer_seconds: float  # per endpoint
    incremental_runs: int
    fraction: float
    advance: int
    workers: int
    peers: tuple[str, ...]

    @property
    def ceiling(self) -> float:
        """Objects/s if every allowed request returned a full page."""
        allowed = min(self.global_rps, self.endpoint_rps * len(ENDPOINTS))
        return PAGE_SIZE * allowed


# -- helpers ---------------------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def shown(argv: list[str]) -> str:
    """A command line as a person would type it from the repository root."""
    python = Path(sys.executable)
    head = [os.path.relpath(python, REPO) if python.is_relative_to(REPO) else str(python)]
    return shlex.join(head + argv[1:]) if argv[0] == sys.executable else shlex.join(argv)


def http(method: str, url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def machine_cpu_seconds() -> float:
    """CPU time used by every process on the machine so far (``/proc/stat``), to spot other load."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """``median (min-max)``, or the one value."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


class Server(ServerProcess):
    """The Stripe stand-in's process."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        argv = [
            sys.executable,
            "-m",
            "sandbox.serve_stripe",
            "--customers",
            str(settings.customers),
            "--seed",
            str(settings.seed),
            "--latency",
            str(settings.latency),
            "--global-rps",
            str(settings.global_rps),
            "--endpoint-rps",
            str(settings.endpoint_rps),
            "--api-key",
            KEY,
            "--port",
            "0",
        ]
        super().__init__(argv, workdir / "server.log", REPO)

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def get(self, path: str) -> dict[str, Any]:
        return http("GET", self.url + path)

    def post(self, path: str) -> dict[str, Any]:
        return http("POST", self.url + path)


def measure(server: Server, workdir: Path, name: str, argv: list[str]) -> dict[str, Any]:
    """Run one command in its own process; its JSON line plus wall time, peak RSS (wait4) and server counts."""
    server.post("/_bench/reset")
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    log(f"{name}: {shown(argv)}")
    server_cpu = server.cpu_seconds()
    machine_cpu = machine_cpu_seconds()
    started = time.monotonic()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{err.read_text()[-3000:]}")
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1])
    result["command"] = shown(argv)
    result["process_wall_seconds"] = round(wall, 3)
    result["peak_rss_mb"] = round(usage.ru_maxrss * 1024 / 1e6, 1)  # ru_maxrss is in KiB
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    result["server_cpu_seconds"] = round(server.cpu_seconds() - server_cpu, 1)
    # CPU used meanwhile by anything but this command and the stand-in: should be ~0 on an idle machine
    other = machine_cpu_seconds() - machine_cpu - result["cpu_seconds"] - result["server_cpu_seconds"]
    result["other_cpu_seconds"] = round(max(0.0, other), 1)
    result["server"] = server.get("/_bench/stats")
    result["objects_per_second"] = result["objects"] / result["seconds"] if result["seconds"] else 0.0
    log(
        f"{name}: {result['objects']:,} objects in {result['seconds']:.1f}s = {result['objects_per_second']:,.0f}/s, "
        f"{result['server']['requests']:,} requests ({result['server']['rate_limited']} answered 429), "
        f"peak RSS {result['peak_rss_mb']:,.0f} MB, CPU {result['cpu_seconds']:,.0f}s "
        f"(stand-in {result['server_cpu_seconds']:,.0f}s, other processes {result['other_cpu_seconds']:,.0f}s)"
    )
    return result


def time_dbt_build(warehouse: Path, workdir: Path, name: str) -> dict[str, Any]:
    """``dbt build`` (every model, seed and test) on a backfilled warehouse: wall time and peak RSS."""
    dbt = Path(sys.executable).parent / "dbt"
    argv = [
        str(dbt),
        "build",
        "--project-dir",
        "dbt_project",
        "--profiles-dir",
        "dbt_project",
        "--target-path",
        str(workdir / "dbt-target"),
        "--log-path",
        str(workdir / "dbt-logs"),
    ]
    env = {**os.environ, "WAREHOUSE_PATH": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    log(f"{name}: WAREHOUSE_PATH={warehouse} {shown(argv)}")
    out = workdir / f"{name}.out"
    machine_cpu = machine_cpu_seconds()
    started = time.monotonic()
    with open(out, "w") as stdout:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stdout)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{name} failed:\n{out.read_text()[-3000:]}")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        profiles = con.execute("select count(*) from marts.customer_profiles").fetchone()[0]  # type: ignore[index]
    cpu = usage.ru_utime + usage.ru_stime
    result = {
        "command": f"WAREHOUSE_PATH={warehouse} " + shown(argv),
        "seconds": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss * 1024 / 1e6, 1),
        "cpu_seconds": round(cpu, 1),
        "other_cpu_seconds": round(max(0.0, machine_cpu_seconds() - machine_cpu - cpu), 1),
        "profiles": profiles,
    }
    log(f"{name}: {wall:.1f}s, {profiles:,} profiles, peak RSS {result['peak_rss_mb']:,.0f} MB")
    return result


def projected_rate(peer: dict[str, Any], weights: dict[str, int]) -> float:
    """The peer's objects/s over the whole account: each endpoint at the rate measured on its window.

    ``weights`` are the objects of each endpoint (what our backfill landed); the time the peer would need is
    the sum of objects/rate over the endpoints, so this is the objects-weighted harmonic mean of its rates.
    """
    total = seconds = 0.0
    for name, objects in weights.items():
        ep = peer["endpoints"].get(name)
        if not objects or ep is None:
            continue
        if not ep["objects"]:
            return float("nan")
        total += objects
        seconds += objects * ep["seconds"] / ep["objects"]
    return total / seconds if seconds else float("nan")


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    versions = {}
    for package in ("stripe", "duckdb", "pyarrow", "pandas", "dlt"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(  # (BENCHMARKS.md itself is rewritten section by section by `make bench`)
        ["git", "status", "--porcelain", "--", ".", ":!BENCHMARKS.md"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": nproc or str(os.cpu_count()),
        "cpu": cpu or platform.processor(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# -- the benchmark ---------------------------------------------------------------------------------------
def run(settings: Settings, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": asdict(settings), "machine": machine(), "rounds": [], "incremental": []}
    server = Server(settings, workdir)
    log(f"generating the account ({settings.customers:,} customers) and starting the stand-in")
    try:
        info = server.start()
        results["account"] = info
        results["server_command"] = shown(server.argv)
        log(f"stand-in ready at {server.url}: {info['customers']:,} customers, {info['charges']:,} charges")
        common = ["--url", server.url, "--key", KEY]
        python = [sys.executable, "-m"]
        warehouse = None
        for i in range(1, settings.runs + 1):
            round_: dict[str, Any] = {"run": i}
            if warehouse is not None:  # only the last backfill's warehouse is kept (for the incremental runs)
                warehouse.unlink(missing_ok=True)
            warehouse = workdir / f"ours-{i}.duckdb"
            ours_argv = [*python, "bench.backfill_ours", *common, "--warehouse", str(warehouse)]
            if settings.workers != 8:
                ours_argv += ["--workers", str(settings.workers)]
            round_["ours"] = measure(server, workdir, f"ours-{i}", ours_argv)
            for peer in settings.peers:
                peer_warehouse = workdir / f"{peer}-{i}.duckdb"
                argv = [
                    *python,
                    f"bench.backfill_{peer}",
                    *common,
                    "--warehouse",
                    str(peer_warehouse),
                    "--seconds-per-endpoint",
                    f"{settings.peer_seconds:g}",
                ]
                result = measure(server, workdir, f"{peer}-{i}", argv)
                result["projected_objects_per_second"] = projected_rate(result, round_["ours"]["rows"])
                result["ratio"] = round_["ours"]["objects_per_second"] / result["projected_objects_per_second"]
                result["window_ratio"] = round_["ours"]["objects_per_second"] / result["objects_per_second"]
                round_[peer] = result
                peer_warehouse.unlink(missing_ok=True)
                shutil.rmtree(workdir / f"{peer}-{i}_dlt_pipelines", ignore_errors=True)
            results["rounds"].append(round_)

        assert warehouse is not None
        for k in range(1, settings.incremental_runs + 1):
            with duckdb.connect(str(warehouse), read_only=True) as con:
                refunds_before = con.execute("select count(*) from stripe.refunds").fetchone()[0]  # type: ignore[index]
            mutation = server.post(f"/_bench/mutate?fraction={settings.fraction}&seed={k}&advance={settings.advance}")
            results["mutate_command"] = (
                f"curl -X POST '{server.url}/_bench/mutate?fraction={settings.fraction}&seed=K"
                f"&advance={settings.advance}'"
            )
            log(
                f"incremental {k}: changed {mutation['customers_updated']:,} customers and refunded "
                f"{mutation['charges_refunded']:,} charges ({mutation['events_emitted']:,} events) in "
                f"{mutation['seconds']:.1f}s, clock moved {settings.advance}s on"
            )
            argv = [*python, "bench.backfill_ours", *common, "--warehouse", str(warehouse), "--incremental"]
            try:
                result = measure(server, workdir, f"incremental-{k}", argv)
            except RuntimeError as exc:  # keep the backfill rounds: report the failure instead of losing them
                log(str(exc)[-2000:])
                results["incremental_error"] = f"round {k}: " + str(exc).strip().splitlines()[-1][:500]
                break
            with duckdb.connect(str(warehouse), read_only=True) as con:
                emails = con.execute(
                    "select count(*) from stripe.customers where email like ?", [mutation["email_marker"] + ".%"]
                ).fetchone()[0]  # type: ignore[index]
                refunds_after = con.execute("select count(*) from stripe.refunds").fetchone()[0]  # type: ignore[index]
            result["mutation"] = mutation
            result["verified"] = {
                "new_emails_landed": emails,
                "new_refunds_landed": refunds_after - refunds_before,
                "complete": emails == mutation["customers_updated"]
                and refunds_after - refunds_before == mutation["refunds_created"],
            }
            results["incremental"].append(result)
        results["dbt_build"] = [
            time_dbt_build(warehouse, workdir, f"dbt-build-{i}") for i in range(1, settings.runs + 1)
        ]
    finally:
        server.stop()
    return results


# -- the report ------------------------------------------------------------------------------------------
def yes(met: bool) -> str:
    return "**yes**" if met else "**no**"


def report(results: dict[str, Any], settings: Settings, raw: Path) -> str:
    m = results["machine"]
    acct = results["account"]
    rounds = results["rounds"]
    ceiling = settings.ceiling
    ours = [r["ours"] for r in rounds]
    ours_rate = [o["objects_per_second"] for o in ours]
    ours_rss = [o["peak_rss_mb"] for o in ours]
    incremental = results["incremental"]
    quick = settings.mode == "quick"
    lines: list[str] = []
    add = lines.append

    add("# Benchmarks: Stripe extraction" + (" (quick run)" if quick else ""))
    add("")
    add(
        f"Generated by `{'make bench-quick' if quick else 'make bench'}` on {m['date']}, commit {m['commit']}. "
        f"{'A quick run checks the harness on a small account, one run each; `make bench` is the real one.' if quick else ''}"  # noqa: E501
    )
    add("")
    add(
        f"Machine: {m['nproc']} cores (`nproc`), {m['cpu']}, {m['memory_gib']} GiB RAM, {m['os']}, "
        f"Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + "."
    )
    add("")
    add("## Setup")
    add("")
    add(
        f"- Account: `generate_account(seed={settings.seed}, customers={settings.customers})`: "
        f"{acct['customers']:,} customers, {acct['charges']:,} charges, {acct['subscriptions']:,} subscriptions, "
        f"{acct['refunds']:,} refunds, {acct['disputes']:,} disputes, {acct['products']:,} products, "
        f"{acct['prices']:,} prices, {acct['events']:,} events in the last 30 days. Generated in "
        f"{acct['generation_seconds']:.0f} s by the stand-in's process before anything is timed."
    )
    add(
        f"- Stand-in: its own process, {settings.latency * 1000:.0f} ms added to every request, Stripe's "
        f"documented test-mode limits enforced ({settings.global_rps:g} requests/s per key over a sliding "
        f"second, {settings.endpoint_rps:g}/s per endpoint; 429 beyond). Our client uses the same limits "
        "(`stripe_limits` for a `sk_test_` key), with the Dagster asset's 8 workers."
    )
    add(
        f"- **Ceiling**: {PAGE_SIZE} objects per request x {ceiling / PAGE_SIZE:g} allowed requests/s = "
        f"**{ceiling:,.0f} objects/s**."
    )
    add(
        "- Objects/s = objects landed in DuckDB ÷ seconds of the extraction itself (timed inside the command, "
        "after imports; the process's wall time is in the per-run tables). Peak memory = `ru_maxrss` of the "
        "command's process from `wait4` (the client alone: the stand-in is another process). Requests and 429s "
        "are counted by the stand-in."
    )
    add(
        f"- Every command runs alone, one after the other; run *i* of each tool is paired with run *i* of ours. "
        f"Ours: {settings.runs} full backfill{'s' if settings.runs > 1 else ''} of the 8 streams (customers, "
        "charges with `expand[]=data.balance_transaction`, subscriptions `status=all`, products, prices, refunds, "
        "disputes, events of the last 30 days)."
    )
    add(
        f"- Peers: a full sequential backfill of this account takes most of an hour, so each peer reads each of "
        f"the same 8 endpoints for at most {settings.peer_seconds:g} s (small endpoints to their end) and is "
        "measured over that window. Its rate over the whole account is then **projected**: each endpoint at the "
        "rate measured on it, weighted by the objects our paired run landed from it (time = Σ objects ÷ rate); "
        "this corrects for the window's mix of endpoints (charges with their balance transaction cost more per "
        "object than customers). The ratio uses the projection; the plain window rate and its ratio are shown "
        "too."
    )
    add("")
    add("## Results")
    add("")
    measured = [r[tool] for r in rounds for tool in ("ours", *settings.peers)] + incremental
    busy = [x for x in measured if x["other_cpu_seconds"] > 0.1 * x["process_wall_seconds"]]
    if busy:
        worst = max(x["other_cpu_seconds"] / x["process_wall_seconds"] for x in busy)
        add(
            f"> **The machine was not idle**: other processes used up to {worst:.1f} of its {m['nproc']} "
            f"cores during {len(busy)} of the {len(measured)} measured commands (column *other CPU*). The "
            "figures below are then pessimistic; rerun on an idle machine."
        )
        add("")
    add("| figure | median (min-max) | target | met |")
    add("| --- | --- | --- | --- |")
    pct = [100 * r / ceiling for r in ours_rate]
    add(
        f"| ours: objects/s, full backfill | {spread(ours_rate)} = {spread(pct, '{:.0f}')} % of the "
        f"{ceiling:,.0f}/s ceiling | ≥ 85 % ({0.85 * ceiling:,.0f}/s) | {yes(median(pct) >= 85)} |"
    )
    for peer in settings.peers:
        ratios = [r[peer]["ratio"] for r in rounds]
        label = "plain sequential `auto_paging_iter` loop" if peer == "sequential" else "dlt `rest_api` source"
        target = "≥ 5x" if peer == "sequential" else "none"
        met = yes(median(ratios) >= 5) if peer == "sequential" else "-"
        add(f"| ours ÷ {label}, objects/s | {spread(ratios, '{:.1f}x')} | {target} | {met} |")
    add(f"| ours: peak memory of the backfill (RSS) | {spread(ours_rss)} MB | < 1 GB | {yes(max(ours_rss) < 1000)} |")
    builds = [b["seconds"] for b in results.get("dbt_build", [])]
    if builds:
        add(
            f"| `dbt build` of the whole project on this account, seconds | {spread(builds, '{:.1f}')} | < 60 | "
            f"{yes(median(builds) < 60)} |"
        )
    if incremental:
        reqs = [r["server"]["requests"] for r in incremental]
        backfill_reqs = median([o["server"]["requests"] for o in ours])
        add(
            f"| ours: requests of an incremental run after {settings.fraction:.0%} of the objects changed | "
            f"{spread(reqs)} (a backfill: {backfill_reqs:,.0f}) | - | - |"
        )
    add("")

    add("### Our backfill")
    add("")
    add(
        "| run | objects | seconds | objects/s | % of ceiling | requests | objects/request | 429s | retries | "
        "peak RSS (MB) | process wall (s) | client CPU (s) | stand-in CPU (s) | other CPU (s) |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rounds:
        o = r["ours"]
        reqs = o["server"]["requests"]
        add(
            f"| {r['run']} | {o['objects']:,} | {o['seconds']:,.1f} | {o['objects_per_second']:,.0f} | "
            f"{100 * o['objects_per_second'] / ceiling:.1f} | {reqs:,} | {o['objects'] / max(reqs, 1):.1f} | "
            f"{o['server']['rate_limited']} | {o['retries']} | {o['peak_rss_mb']:,.0f} | "
            f"{o['process_wall_seconds']:,.1f} | {o['cpu_seconds']:,.0f} | {o['server_cpu_seconds']:,.0f} | "
            f"{o['other_cpu_seconds']:,.0f} |"
        )
    add("")
    last = rounds[-1]["ours"]
    add("Objects landed per table (last run): " + ", ".join(f"{k} {v:,}" for k, v in last["rows"].items()) + ".")
    add("")
    best = max(ours, key=lambda o: o["objects_per_second"])
    reqs_per_s = best["server"]["requests"] / best["seconds"]
    add(
        f"Requests/s achieved (best run): {reqs_per_s:.1f} of {ceiling / PAGE_SIZE:g} allowed; objects per "
        f"request {best['objects'] / max(best['server']['requests'], 1):.1f} of {PAGE_SIZE}. The two factors "
        "multiply to the share of the ceiling. Client CPU close to the wall time means the client, not the "
        "rate limit, is the bottleneck (one Python process: the GIL lets it use about one core)."
    )
    add("")

    for peer in settings.peers:
        title = "Plain sequential SDK loop" if peer == "sequential" else "dlt rest_api"
        add(f"### {title} (bounded window, {settings.peer_seconds:g} s per endpoint)")
        add("")
        add(
            "| run | objects in window | seconds | window objects/s | projected objects/s | ours ÷ projected | "
            "ours ÷ window | requests | 429s | peak RSS (MB) | other CPU (s) |"
        )
        add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rounds:
            p = r[peer]
            add(
                f"| {r['run']} | {p['objects']:,} | {p['seconds']:,.1f} | {p['objects_per_second']:,.0f} | "
                f"{p['projected_objects_per_second']:,.0f} | {p['ratio']:.1f}x | {p['window_ratio']:.1f}x | "
                f"{p['server']['requests']:,} | {p['server']['rate_limited']} | {p['peak_rss_mb']:,.0f} | "
                f"{p['other_cpu_seconds']:,.0f} |"
            )
        add("")
        p = rounds[-1][peer]
        add("Per endpoint (last run): objects, seconds, objects/s, read to the end?")
        add("")
        add("| endpoint | objects | seconds | objects/s | complete |")
        add("| --- | ---: | ---: | ---: | --- |")
        for name, ep in p["endpoints"].items():
            rate = ep["objects"] / ep["seconds"] if ep["seconds"] else 0.0
            complete = "yes" if ep["complete"] else "no"
            add(f"| {name} | {ep['objects']:,} | {ep['seconds']:.1f} | {rate:,.0f} | {complete} |")
        add("")

    if results.get("incremental_error"):
        add(f"**An incremental run failed**, {results['incremental_error']}")
        add("")
    if incremental:
        add(f"### Incremental runs after {settings.fraction:.0%} of the objects changed")
        add("")
        add(
            f"On the warehouse of our last backfill. Before each run the stand-in changes {settings.fraction:.0%} "
            "of the customers (a new email) and of the charges (a partial refund, which also creates a refund "
            f"object), then moves its clock {settings.advance} s on (the next scheduled run), so each round sees "
            "only its own changes."
        )
        add("")
        add(
            "| round | objects changed on Stripe | events emitted | requests | seconds | rows changed | "
            "all changes landed | peak RSS (MB) | other CPU (s) |"
        )
        add("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
        for k, r in enumerate(incremental, 1):
            mu = r["mutation"]
            add(
                f"| {k} | {mu['objects_changed']:,} ({mu['customers_updated']:,} customers, "
                f"{mu['charges_refunded']:,} charges, {mu['refunds_created']:,} new refunds) | "
                f"{mu['events_emitted']:,} | {r['server']['requests']:,} | {r['seconds']:,.1f} | {r['objects']:,} | "
                f"{'yes' if r['verified']['complete'] else 'NO'} | {r['peak_rss_mb']:,.0f} | "
                f"{r['other_cpu_seconds']:,.0f} |"
            )
        add("")

    add("## Commands")
    add("")
    add("```sh")
    add("make bench-quick" if quick else "make bench")
    add(f"# = uv run --frozen --group bench python -m bench.run{' --quick' if quick else ''}")
    add("# the stand-in (its own process; prints its URL when ready):")
    add(results["server_command"])
    first = rounds[0]
    add("# each run, one process after the other (run 1 shown; the port and paths change from run to run):")
    add(first["ours"]["command"])
    for peer in settings.peers:
        add(first[peer]["command"])
    if incremental:
        add("# each incremental round:")
        add(results["mutate_command"])
        add(incremental[0]["command"])
    if results.get("dbt_build"):
        add("# then dbt, on that warehouse (each run):")
        add(results["dbt_build"][0]["command"])
    add("```")
    add("")
    if settings.peers:
        add("## How the peers are configured")
        add("")
    if "sequential" in settings.peers:
        add(
            "- **Sequential** (`bench/backfill_sequential.py`): `stripe.StripeClient(key, base_addresses=...)`; for "
            "each endpoint `client.v1.<resource>.list(params={'limit': 100, ...}).auto_paging_iter()` (charges "
            "with `expand: ['data.balance_transaction']`, subscriptions `status: 'all'`), each object kept as "
            "`{'id', 'created', 'data': json.dumps(obj.to_dict(for_json=True))}`, and every page of 100 inserted "
            "through a pandas DataFrame (`insert into t select ... from df`). One request at a time, so it never "
            "reaches the rate limit."
        )
    if "dlt" in settings.peers:
        add(
            "- **dlt** (`bench/backfill_dlt.py`): `dlt.sources.rest_api.rest_api_source` with the built-in "
            "`cursor` paginator (`cursor_path='data[-1].id'`, `cursor_param='starting_after'`, "
            "`has_more_path='has_more'`), bearer auth, `data_selector='data'`, `write_disposition='replace'`, the "
            "same endpoints and parameters (`expand[]`), into `dlt.destinations.duckdb`; dlt's defaults otherwise "
            "(resources extracted one after the other, nested objects normalized into columns and child tables). "
            "Each endpoint is its own `pipeline.run` (extract + normalize + load) limited with "
            "`add_limit(max_time=...)`; its time is the whole run's."
        )
    if settings.peers:
        add("- Peers list events unfiltered; ours asks only for the event types it uses.")
        add("")
    add(f"Raw results: `{os.path.relpath(raw, REPO) if raw.is_relative_to(REPO) else raw}`.")
    add("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 customers, 1 run of each, short peer windows")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request on the stand-in")
    parser.add_argument("--global-rps", type=float, default=25.0, help="Stripe test mode: 25")
    parser.add_argument("--endpoint-rps", type=float, default=25.0, help="Stripe: 25 per endpoint")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--peer-seconds", type=float, help="window per endpoint for the peers")
    parser.add_argument("--incremental-runs", type=int)
    parser.add_argument("--fraction", type=float, default=0.01, help="share of customers and charges changed")
    parser.add_argument("--advance", type=int, default=3600, help="seconds the clock moves on after the changes")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--peers", default="sequential,dlt", help="comma-separated: sequential, dlt")
    parser.add_argument("--output", type=Path, help="default: BENCHMARKS.md, or bench/results/quick.md")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, warehouses)")
    args = parser.parse_args(argv)

    quick = args.quick
    unknown = set(filter(None, args.peers.split(","))) - {"sequential", "dlt"}
    if unknown:
        parser.error(f"unknown peers: {', '.join(sorted(unknown))} (known: sequential, dlt)")
    settings = Settings(
        mode="quick" if quick else "full",
        customers=args.customers or (10_000 if quick else 100_000),
        seed=args.seed,
        latency=args.latency,
        global_rps=args.global_rps,
        endpoint_rps=args.endpoint_rps,
        runs=args.runs or (1 if quick else 3),
        peer_seconds=args.peer_seconds if args.peer_seconds is not None else (5.0 if quick else 15.0),
        incremental_runs=args.incremental_runs if args.incremental_runs is not None else (1 if quick else 3),
        fraction=args.fraction,
        advance=args.advance,
        workers=args.workers,
        peers=tuple(p for p in args.peers.split(",") if p),
    )
    output = (args.output or (RESULTS / "quick.md" if quick else REPO / "BENCHMARKS.md")).resolve()
    workdir = Path(tempfile.mkdtemp(prefix="stripe-bench-"))
    log(f"work directory {workdir}")
    try:
        results = run(settings, workdir)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    raw = RESULTS / "full.json" if output == REPO / "BENCHMARKS.md" else output.with_suffix(".json")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=2) + "\n")
    output.parent.mkdir(parents=True, exist_ok=True)
    text = report(results, settings, raw)
    write_section(output, text.splitlines()[0], text)  # the other benchmarks' sections stay
    log(f"wrote {output} and {raw}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
