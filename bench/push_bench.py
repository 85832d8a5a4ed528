"""Reverse-ETL benchmark: 100,000 profiles pushed to the Mailchimp and Customer.io stand-ins, side by side.

    python -m bench.push_bench                       # full: a 100,000-customer account, 3 rounds
    python -m bench.push_bench --customers 5000 --runs 1 --output /tmp/push.md   # a quick check

1. Builds the profiles once: the Stripe stand-in generates the account (``--customers``), our extract lands it
   in a warehouse (no latency, limits lifted: this part is not what is measured), ``dbt build`` makes the marts.
2. Each round starts fresh destination stand-ins (``sandbox.serve_destinations``, ``--latency`` per request,
   Mailchimp's 10 connections enforced) and runs, one command after the other in its own process:
   our Mailchimp push of every profile, the nightly push after 1% of the profiles changed, the same two for
   Customer.io, then the naive peers (one official-SDK call per person, ``--peer-seconds`` each).
3. Writes the report (``--output``) and the raw results next to it as JSON.

Ceilings: Mailchimp, 10 connections x 500 members per call, each call taking the stand-in's latency:
``10 x 500 / latency`` members/s. Customer.io, the configured request rate x the ops that fit a 500 KB request
(from the push's own average op size).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ServerProcess
from bench.run import log, machine_cpu_seconds, median, shown

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
STRIPE_KEY = "sk_test_bench_0123456789"
MAILCHIMP_BATCH = 500
MAX_REQUEST_BYTES = 500_000


def http(method: str, url: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as response:
        return json.loads(response.read())


def run_command(name: str, argv: list[str], workdir: Path, server: ServerProcess | None = None) -> dict[str, Any]:
    """Run ``argv`` in its own process: its JSON line plus wall time, peak RSS, CPU (its own and the server's)."""
    log(f"{name}: {shown(argv)}")
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    server_cpu = server.cpu_seconds() if server else 0.0
    machine_cpu = machine_cpu_seconds()
    started = time.monotonic()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{name} failed:\n{err.read_text()[-3000:]}")
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    result: dict[str, Any] = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    result["command"] = shown(argv)
    result["process_wall_seconds"] = round(time.monotonic() - started, 3)
    result["peak_rss_mb"] = round(usage.ru_maxrss * 1024 / 1e6, 1)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    if server:
        result["server_cpu_seconds"] = round(server.cpu_seconds() - server_cpu, 1)
    other = machine_cpu_seconds() - machine_cpu - result["cpu_seconds"] - result.get("server_cpu_seconds", 0.0)
    result["other_cpu_seconds"] = round(max(0.0, other), 1)
    return result


def build_warehouse(args: argparse.Namespace, workdir: Path) -> Path:
    """A warehouse with the marts of a generated account (the profiles every round pushes)."""
    if args.warehouse:
        return Path(args.warehouse).resolve()
    warehouse = workdir / "profiles.duckdb"
    stripe = ServerProcess(
        [
            PY,
            "-m",
            "sandbox.serve_stripe",
            "--customers",
            str(args.customers),
            "--seed",
            str(args.seed),
            "--latency",
            "0",
            "--global-rps",
            "0",
            "--endpoint-rps",
            "0",
            "--api-key",
            STRIPE_KEY,
        ],
        workdir / "stripe.log",
        REPO,
    )
    info = stripe.start()
    try:
        log(f"Stripe stand-in: {info['customers']:,} customers; extracting")
        run_command(
            "extract",
            [
                PY,
                "-m",
                "bench.backfill_ours",
                "--url",
                info["url"],
                "--key",
                STRIPE_KEY,
                "--warehouse",
                str(warehouse),
                "--rps",
                "1000",
                "--endpoint-rps",
                "1000",
            ],
            workdir,
        )
    finally:
        stripe.stop()
    dbt = Path(PY).parent / "dbt"
    log("dbt build")
    subprocess.run(
        [str(dbt), "build", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project", "--quiet"],
        cwd=REPO,
        env={**os.environ, "WAREHOUSE_PATH": str(warehouse)},
        check=True,
    )
    return warehouse


def one_round(args: argparse.Namespace, warehouse: Path, workdir: Path, i: int) -> dict[str, Any]:
    server = ServerProcess(
        [PY, "-m", "sandbox.serve_destinations", "--latency", str(args.latency)],
        workdir / f"destinations-{i}.log",
        REPO,
    )
    info = server.start()
    results: dict[str, Any] = {}
    try:
        mc = ["--url", info["mailchimp"], "--key", info["mailchimp_key"]]
        cio = ["--url", info["customerio"], "--key", info["customerio_key"], "--site-id", info["customerio_site_id"]]
        for destination, extra in (("mailchimp", [*mc, "--audience", info["audience_id"]]), ("customerio", cio)):
            state = workdir / f"state-{destination}-{i}.duckdb"
            base = [PY, "-m", "bench.push_ours", "--destination", destination, "--warehouse", str(warehouse),
                    "--state", str(state), *extra]  # fmt: skip
            if destination == "customerio":
                base += ["--concurrency", str(args.cio_concurrency)]
            for mode, more in (("first", []), ("nightly", ["--change-fraction", str(args.fraction)])):
                url = info[destination]
                http("POST", url + "/_bench/reset")
                result = run_command(f"{destination}-{mode}-{i}", base + more, workdir, server)
                result["server"] = http("GET", url + "/_bench/stats")
                results[f"{destination}_{mode}"] = result
                log(
                    f"{destination} {mode}: {result['considered']:,} profiles, {result['sent']:,} sent in "
                    f"{result['seconds']:.1f}s, {result['api_calls']:,} API calls, stand-in CPU "
                    f"{result['server_cpu_seconds']:.0f}s"
                )
        for destination, extra in (("mailchimp", [*mc, "--audience", info["peer_audience_id"]]), ("customerio", cio)):
            http("POST", info[destination] + "/_bench/reset")
            result = run_command(
                f"{destination}-naive-{i}",
                [
                    PY,
                    "-m",
                    "bench.push_naive",
                    "--destination",
                    destination,
                    "--warehouse",
                    str(warehouse),
                    "--seconds",
                    str(args.peer_seconds),
                    *extra,
                ],
                workdir,
                server,
            )
            results[f"{destination}_naive"] = result
            log(f"{destination} naive: {result['profiles']:,} profiles in {result['seconds']:.1f}s")
    finally:
        server.stop()
    return results


def report(results: dict[str, Any]) -> str:
    s = results["settings"]
    rounds = results["rounds"]
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks: reverse ETL")
    add("")
    add(f"Generated by `{results['command']}` on {results['started']}, commit {results['commit']}.")
    add("")
    latency = s["latency"]
    mc_ceiling = 10 * MAILCHIMP_BATCH / latency
    source = (
        f"the warehouse `{s['warehouse']}`"
        if s.get("warehouse")
        else f"a generated account of {s['customers']:,} customers"
    )
    add(f"- Profiles: `marts.customer_profiles` of {source} ({results['profiles']:,} profiles).")
    add(
        f"- Stand-ins in their own process, {latency * 1000:.0f} ms added to every request; Mailchimp refuses an "
        "11th simultaneous connection (429); every request body is validated against the OpenAPI documents."
    )
    add(
        f"- Mailchimp ceiling: 10 connections x {MAILCHIMP_BATCH} members per call / {latency:g} s = "
        f"**{mc_ceiling:,.0f} profiles/s**."
    )
    add("")
    add("| figure | median (min-max) over rounds |")
    add("| --- | --- |")

    def fig(key: str, f: Any) -> list[float]:
        return [f(r[key]) for r in rounds]

    def show(values: list[float], fmt: str = "{:,.0f}") -> str:
        return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"

    mc_rate = fig("mailchimp_first", lambda r: r["sent"] / r["seconds"])
    add(
        f"| Mailchimp, ours, first push: profiles/s | {show(mc_rate)} = {median(mc_rate) / mc_ceiling:.0%} of the "
        "ceiling |"
    )
    add(f"| Mailchimp, ours, first push: API calls | {show(fig('mailchimp_first', lambda r: r['api_calls']))} |")
    naive = fig("mailchimp_naive", lambda r: r["profiles"] / r["seconds"])
    add(
        f"| Mailchimp, naive SDK loop: profiles/s | {show(naive, '{:,.1f}')} (ours ÷ it: "
        f"{median(mc_rate) / max(median(naive), 1e-9):,.0f}x) |"
    )
    add(
        f"| Mailchimp, nightly after {s['fraction']:.0%} changed: API calls | "
        f"{show(fig('mailchimp_nightly', lambda r: r['api_calls']))} |"
    )
    cio_rate = fig("customerio_first", lambda r: r["sent"] / r["seconds"])
    add(f"| Customer.io, ours, first push: profiles/s | {show(cio_rate)} |")
    add(f"| Customer.io, ours, first push: API calls | {show(fig('customerio_first', lambda r: r['api_calls']))} |")
    cio_naive = fig("customerio_naive", lambda r: r["profiles"] / r["seconds"])
    add(
        f"| Customer.io, naive SDK loop: profiles/s | {show(cio_naive, '{:,.1f}')} (ours ÷ it: "
        f"{median(cio_rate) / max(median(cio_naive), 1e-9):,.0f}x) |"
    )
    add(
        f"| Customer.io, nightly after {s['fraction']:.0%} changed: API calls | "
        f"{show(fig('customerio_nightly', lambda r: r['api_calls']))} |"
    )
    add(
        f"| stand-in CPU during our Mailchimp first push (s) | "
        f"{show(fig('mailchimp_first', lambda r: r['server_cpu_seconds']), '{:,.1f}')} |"
    )
    add("")
    add("Per round, every command's figures (seconds, calls, CPU, peak RSS, requests by route) are in the raw JSON.")
    add("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--warehouse", help="an already built warehouse to take the profiles from")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--peer-seconds", type=float, default=20.0)
    parser.add_argument("--cio-concurrency", type=int, default=4)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "push.md")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="push-bench-"))
    log(f"work directory {workdir}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    results: dict[str, Any] = {
        "command": shown([PY, "-m", "bench.push_bench", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit.stdout.strip(),
        "settings": vars(args) | {"output": str(args.output)},
        "rounds": [],
    }
    try:
        warehouse = build_warehouse(args, workdir)
        import duckdb

        con = duckdb.connect(str(warehouse), read_only=True)
        results["profiles"] = con.execute("select count(*) from marts.customer_profiles").fetchone()[0]
        con.close()
        for i in range(1, args.runs + 1):
            results["rounds"].append(one_round(args, warehouse, workdir, i))
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    args.output.write_text(report(results))
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
