"""Reverse-ETL benchmark: 100,000 profiles pushed to the Mailchimp and Customer.io stand-ins, side by side.

    python -m bench.push_bench                       # full: a 100,000-customer account, 3 rounds
    python -m bench.push_bench --customers 5000 --runs 1 --output /tmp/push.md   # a quick check
    python -m bench.push_bench --warehouse W          # the profiles of an already built warehouse

1. Builds the profiles once: the Stripe stand-in generates the account (``--customers``), our extract lands it
   in a warehouse (no latency, limits lifted: this part is not what is measured), ``dbt build`` makes the marts.
2. Each round starts fresh destination stand-ins (``sandbox.serve_destinations``, ``--latency`` per request,
   Mailchimp's 10 connections enforced) and runs, one command after the other in its own process:
   our Mailchimp push of every profile, the nightly push after 1% of the profiles changed, the same two for
   Customer.io, then the naive peers (one official-SDK call per person, ``--peer-seconds`` each).
3. Writes the report as the reverse-ETL section of ``--output`` (``BENCHMARKS.md``, the rest kept) and the raw
   results as JSON (``bench/results/push.json``).

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

from audiences.customerio_client import DEFAULT_CONCURRENCY, DEFAULT_TRACK_REQUESTS_PER_SECOND
from bench.common import ServerProcess, write_section
from bench.run import RESULTS, log, machine, machine_cpu_seconds, median, shown

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
                "--memory-limit",  # unthrottled, the writer and the events listing outgrow the default 256MB
                "1GB",
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


def server_argv(args: argparse.Namespace) -> list[str]:
    return [PY, "-m", "sandbox.serve_destinations", "--latency", str(args.latency)]


def cio_rates(setting: str) -> list[float]:
    """``--cio-rps 25,100`` -> [25.0, 100.0]."""
    return [float(x) for x in str(setting).split(",") if x.strip()]


def push_configs(cio_rps: str) -> list[tuple[str, float | None]]:
    """The pushes of a round: Mailchimp, then Customer.io once per rate."""
    return [("mailchimp", None), *(("customerio", r) for r in cio_rates(cio_rps))]


def push_key(destination: str, rate: float | None = None) -> str:
    return destination if rate is None else f"{destination}@{rate:g}"


def one_round(args: argparse.Namespace, warehouse: Path, workdir: Path, i: int) -> dict[str, Any]:
    """Each destination (Customer.io once per configured rate) against fresh stand-ins: its first push of every
    profile, then the nightly push after ``--fraction`` changed; then the naive peers."""
    results: dict[str, Any] = {}
    for destination, rate in push_configs(args.cio_rps):
        key = push_key(destination, rate)
        server = ServerProcess(server_argv(args), workdir / f"destinations-{key}-{i}.log", REPO)
        info = server.start()
        try:
            state = workdir / f"state-{key}-{i}.duckdb"
            base = [PY, "-m", "bench.push_ours", "--destination", destination, "--warehouse", str(warehouse),
                    "--state", str(state), *target_args(info, destination)]  # fmt: skip
            if rate is not None:
                base += ["--concurrency", str(args.cio_concurrency), "--rps", f"{rate:g}"]
            for mode, more in (("first", []), ("nightly", ["--change-fraction", str(args.fraction)])):
                url = info[destination]
                http("POST", url + "/_bench/reset")
                result = run_command(f"{key}-{mode}-{i}", base + more, workdir, server)
                result["server"] = http("GET", url + "/_bench/stats")
                results[f"{key}_{mode}"] = result
                log(
                    f"{key} {mode}: {result['considered']:,} profiles, {result['sent']:,} sent in "
                    f"{result['seconds']:.1f}s (sending {result['send_seconds']:.1f}s), {result['api_calls']:,} API "
                    f"calls, stand-in CPU {result['server_cpu_seconds']:.1f}s, client CPU {result['cpu_seconds']:.1f}s"
                )
        finally:
            server.stop()
    server = ServerProcess(server_argv(args), workdir / f"destinations-naive-{i}.log", REPO)
    info = server.start()
    try:
        for destination in ("mailchimp", "customerio"):
            http("POST", info[destination] + "/_bench/reset")
            argv = [PY, "-m", "bench.push_naive", "--destination", destination, "--warehouse", str(warehouse),
                    "--seconds", str(args.peer_seconds), *target_args(info, destination)]  # fmt: skip
            result = run_command(f"{destination}-naive-{i}", argv, workdir, server)
            results[f"{destination}_naive"] = result
            log(f"{destination} naive: {result['profiles']:,} profiles in {result['seconds']:.1f}s")
    finally:
        server.stop()
    return results


def target_args(info: dict[str, Any], destination: str) -> list[str]:
    if destination == "mailchimp":
        return ["--url", info["mailchimp"], "--key", info["mailchimp_key"], "--audience", info["audience_id"]]
    return ["--url", info["customerio"], "--key", info["customerio_key"], "--site-id", info["customerio_site_id"]]


SECTION = "# Benchmarks: reverse ETL"


def _rate(result: dict[str, Any], seconds_key: str) -> float:
    return result["sent"] / result[seconds_key] if result.get(seconds_key) else 0.0


def op_bytes(results: dict[str, Any]) -> float:
    """The average size of the identify ops our first pushes sent (bytes the stand-in received / ops)."""
    sizes = [
        r[k]["server"]["batch_bytes"] / max(1, r[k]["server"]["batch_ops"])
        for r in results["rounds"]
        for k in r
        if k.startswith("customerio@") and k.endswith("_first")
    ]
    return median(sizes)


def ceiling(results: dict[str, Any], destination: str, rate: float | None) -> float:
    """Mailchimp: 10 connections x 500 members a call, each call taking the stand-in's latency. Customer.io: the
    configured request rate x the ops of the push's average size that fit in a 500 KB request."""
    if destination == "mailchimp":
        return 10 * MAILCHIMP_BATCH / results["settings"]["latency"]
    assert rate is not None
    return rate * (MAX_REQUEST_BYTES // op_bytes(results))


def report(results: dict[str, Any]) -> str:
    s = results["settings"]
    rounds = results["rounds"]
    rates = cio_rates(s["cio_rps"])
    configs = push_configs(s["cio_rps"])
    ops_per_request = MAX_REQUEST_BYTES // op_bytes(results)
    lines: list[str] = []
    add = lines.append

    def fig(key: str, f: Any) -> list[float]:
        return [f(r[key]) for r in rounds]

    def show(values: list[float], fmt: str = "{:,.0f}") -> str:
        return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"

    def share(values: list[float], of: float) -> str:
        return f"{median(values) / of:.0%} ({min(values) / of:.0%}-{max(values) / of:.0%})"

    def title(destination: str, rate: float | None) -> str:
        return "Mailchimp" if rate is None else f"Customer.io at {rate:g} requests/s"

    m = results["machine"]
    add(SECTION)
    add("")
    add(f"Generated by `make bench-push` (part of `make bench`) on {m['date']}, commit {m['commit']}.")
    add("")
    add(
        f"Machine: {m['nproc']} cores (`nproc`), {m['cpu']}, {m['memory_gib']} GiB RAM, {m['os']}, "
        f"Python {m['python']}."
    )
    add("")
    add("## Setup")
    add("")
    generated = f"a generated account ({s['customers']:,} customers, seed {s['seed']})"
    source = f"the warehouse `{s['warehouse']}`" if s.get("warehouse") else generated
    add(
        f"- Profiles: `marts.customer_profiles` and `marts.customer_segments` of {source}: "
        f"{results['profiles']:,} profiles with their segment tags, copied into a fresh state warehouse for each "
        "push; fresh stand-ins for each destination and rate."
    )
    add(
        f"- Stand-ins (`sandbox.serve_destinations`) in their own process; each request is answered "
        f"{s['latency'] * 1000:.0f} ms after it arrived, or later when handling it takes longer (the latency is the "
        "response time, as the ceilings assume of each call); Mailchimp answers an 11th simultaneous connection "
        "with 429. Every request body is validated "
        "against the official OpenAPI documents by the compiled validator (`jsonschema_rs`); the tests run it "
        "beside the reference validator (`openapi-schema-validator`) on every body, and "
        "`tests/sandbox/test_contract_validators_agree.py` checks that both give the same verdicts."
    )
    add(
        f"- **Mailchimp ceiling**: 10 connections x {MAILCHIMP_BATCH} members per call / {s['latency']:g} s = "
        f"**{ceiling(results, 'mailchimp', None):,.0f} profiles/s**. New contacts go through the 500-member batch "
        "endpoint with their tags (which it sets on the members it creates): a first push needs one call per 500 "
        "contacts, plus a few setup calls (audience, merge fields)."
    )
    add(
        f"- **Customer.io ceiling**: the configured request rate (`CUSTOMERIO_REQUESTS_PER_SECOND`) x the ops that "
        f"fit in a 500 KB request at the push's average op size ({op_bytes(results):,.0f} bytes: "
        f"{ops_per_request:,.0f} ops): "
        + ", ".join(f"**{ceiling(results, 'customerio', r):,.0f} profiles/s** at {r:g}/s" for r in rates)
        + f"; {s['cio_concurrency']} requests in flight (the default `CUSTOMERIO_CONCURRENCY`). At the default "
        "100/s the ceiling is beyond what the Python stand-in can validate and store on this machine's 2 cores "
        "(its CPU time is in the per-round table): that row measures the stand-in; the lower rate measures us."
    )
    add(
        "- profiles/s = profiles accepted / seconds. *Whole push*: the whole `sync_members` / `sync_people` call, "
        "which also reads the profiles, keys the contacts, computes and compares the payloads in the warehouse (in "
        "parts: the first part's records are sent while the next are planned), sets up the audience (while the "
        "contacts are keyed) and records what was accepted: the figure held to the target. *Send phase*: from the "
        "first request to the last answer."
    )
    add(
        f"- Naive peers: one official-SDK call per person in a plain loop (`bench/push_naive.py`: "
        f"`mailchimp-marketing` member PUT + tags, `customerio` identify), {s['peer_seconds']:g} s each."
    )
    add(
        f"- Nightly: the same state warehouse after the first push, with {s['fraction']:.0%} of the profiles changed "
        "(their lifetime spend; a third of them also move to `spend:high`)."
    )
    add("")
    add("## Results")
    add("")
    add(f"Medians over {len(rounds)} rounds (min-max), all measured in this run.")
    add("")
    add("| figure | median (min-max) | of the ceiling | target | met |")
    add("| --- | --- | --- | --- | --- |")
    for destination, rate in configs:
        key, name, c = push_key(destination, rate), title(destination, rate), ceiling(results, destination, rate)
        send = fig(f"{key}_first", lambda r: _rate(r, "send_seconds"))
        whole = fig(f"{key}_first", lambda r: _rate(r, "seconds"))
        met = "**yes**" if median(whole) >= 0.8 * c else "**no**"
        add(
            f"| {name}, first push, whole push: profiles/s | {show(whole)} | {share(whole, c)} of {c:,.0f}/s | "
            f"≥ 80 % | {met} |"
        )
        add(f"| {name}, first push, send phase: profiles/s | {show(send)} | {share(send, c)} | - | - |")
        add(f"| {name}, first push: API calls | {show(fig(f'{key}_first', lambda r: r['api_calls']))} | | | |")
        add(
            f"| {name}, nightly after {s['fraction']:.0%} changed: API calls | "
            f"{show(fig(f'{key}_nightly', lambda r: r['api_calls']))} for "
            f"{show(fig(f'{key}_nightly', lambda r: r['sent']))} profiles sent | | | |"
        )
    for destination, name in (("mailchimp", "Mailchimp"), ("customerio", "Customer.io")):
        naive = fig(f"{destination}_naive", lambda r: r["profiles"] / r["seconds"])
        ours_key = push_key(destination, None if destination == "mailchimp" else rates[-1])
        whole = fig(f"{ours_key}_first", lambda r: _rate(r, "seconds"))
        ratio = [w / max(n, 1e-9) for w, n in zip(whole, naive, strict=True)]
        add(f"| {name}, naive SDK loop: profiles/s | {show(naive, '{:,.1f}')} | | - | - |")
        add(f"| {name}: ours (whole push{'' if destination == 'mailchimp' else f', {rates[-1]:g}/s'}) ÷ naive, "
            f"same round | {show(ratio, '{:,.0f}x')} | | | |")  # fmt: skip
    add("")
    add("### Per round")
    add("")
    add(
        "| round | push | profiles sent | whole push (s) | send phase (s) | API calls | retried | 429s for connections "
        "| most in flight | contract violations | client CPU (s) | stand-in CPU (s) | client peak RSS (MB) |"
    )
    add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    push_keys = [f"{push_key(d, r)}_{mode}" for d, r in configs for mode in ("first", "nightly")]
    for i, r in enumerate(rounds, 1):
        for key in push_keys:
            x = r[key]
            server = x.get("server", {})
            add(
                f"| {i} | {key.replace('_', ' ')} | {x['sent']:,} | {x['seconds']:.2f} | {x['send_seconds']:.2f} | "
                f"{x['api_calls']:,} | {x['retried']:,} | {server.get('rejected_for_connections', '-')} | "
                f"{server.get('max_in_flight_seen', '-')} | {server.get('contract_violations', 0)} | "
                f"{x['cpu_seconds']:.1f} | {x['server_cpu_seconds']:.1f} | {x['peak_rss_mb']:,.0f} |"
            )
        for key in ("mailchimp_naive", "customerio_naive"):
            x = r[key]
            add(
                f"| {i} | {key.replace('_', ' ')} | {x['profiles']:,} | {x['seconds']:.2f} | | {x['api_calls']:,} | | "
                f"| | | {x['cpu_seconds']:.1f} | {x['server_cpu_seconds']:.1f} | {x['peak_rss_mb']:,.0f} |"
            )
    last = rounds[-1]
    add("")
    add("Requests by route, last round (as the stand-ins counted them):")
    add("")
    for key in push_keys:
        routes = ", ".join(f"`{k}` {v:,}" for k, v in sorted(last[key]["server"]["by_route"].items()))
        add(f"- {key.replace('_', ' ')}: {routes}")
    add("")
    add("## Commands")
    add("")
    add("```sh")
    add("make bench-push")
    add(f"# = {results['command']}")
    add("# the stand-ins (their own process, fresh for each destination and rate):")
    add(shown(results["server_argv"]))
    add("# each push, one process after the other (round 1; paths and ports change):")
    for key in push_keys:
        add(rounds[0][key]["command"])
    add(rounds[0]["mailchimp_naive"]["command"])
    add(rounds[0]["customerio_naive"]["command"])
    add("```")
    add("")
    add(f"Raw results: `{results['raw']}`.")
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
    parser.add_argument("--cio-concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument(
        "--cio-rps",
        default=f"25,{DEFAULT_TRACK_REQUESTS_PER_SECOND:g}",
        help="Customer.io request rates to push at (comma-separated): one ceiling each",
    )
    parser.add_argument(
        "--output", type=Path, default=REPO / "BENCHMARKS.md", help="its reverse-ETL section is replaced"
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="push-bench-"))
    log(f"work directory {workdir}")
    raw = RESULTS / "push.json" if args.output.resolve() == REPO / "BENCHMARKS.md" else args.output.with_suffix(".json")
    results: dict[str, Any] = {
        "command": shown([PY, "-m", "bench.push_bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(),
        "settings": vars(args) | {"output": str(args.output)},
        "server_argv": server_argv(args),
        "raw": str(raw.relative_to(REPO)) if raw.is_relative_to(REPO) else str(raw),
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
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = report(results)
    write_section(args.output, SECTION, text)
    log(f"wrote the reverse-ETL section of {args.output} and {raw}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
