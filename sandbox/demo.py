"""`make demo`: the nightly job end to end on local stand-ins, then a summary.

Generates a realistic Stripe account, starts the Stripe, Mailchimp and Customer.io stand-ins on 127.0.0.1,
runs ``dagster job execute -j nightly_sync`` with the same environment variables a production run uses, and
prints what landed in the warehouse and what each destination received.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from sandbox.environment import REPO_ROOT, StandIns, run_job, running_stand_ins
from sandbox.stripe_account import generate_account

DEMO_DIR = REPO_ROOT / "data" / "demo"


def _table(title: str, rows: list[tuple[object, ...]], headers: tuple[str, ...]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    body = "\n".join("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False)) for r in rows)
    return f"\n{title}\n{line}\n{'-' * len(line)}\n{body}"


def summary(warehouse: Path, stand_ins: StandIns) -> str:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [
            (f"{schema}.{name}", con.execute(f"select count(*) from {schema}.{name}").fetchone()[0])
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('stripe', 'marts', 'sync') order by 1, 2"
            ).fetchall()
        ]
        segments = con.execute(
            "select segment_group, segment, count(*) from marts.customer_segments group by all order by 1, 2"
        ).fetchall()
        consent = con.execute(
            "select marketing_consent, count(*) from marts.customer_profiles group by all order by 1"
        ).fetchall()
        runs = con.execute(
            "select destination, considered, unchanged, sent, created, updated, rejected, api_calls "
            "from sync.runs order by finished_at"
        ).fetchall()
        rejections = con.execute(
            "select destination, regexp_replace(regexp_replace(reason, '[^ ]+@[^ ]+', '<email>', 'g'), "
            "'cus_[A-Za-z0-9]+', '<customer>', 'g') as reason, count(*) "
            "from sync.rejections group by all order by 1, 3 desc"
        ).fetchall()
    finally:
        con.close()
    members = stand_ins.mailchimp.members(stand_ins.audience_id)
    statuses: dict[str, int] = {}
    for member in members:
        statuses[member["status"]] = statuses.get(member["status"], 0) + 1
    held = [("mailchimp members", len(members))]
    held += [(f"  status {status}", count) for status, count in sorted(statuses.items())]
    people = stand_ins.customerio.persons()
    parts = [
        _table("Warehouse tables", tables, ("table", "rows")),
        _table("Customers per segment", segments, ("group", "segment", "customers")),
        _table("Marketing consent", consent, ("consent", "customers")),
        _table(
            "Pushes (sync.runs)",
            runs,
            ("destination", "considered", "unchanged", "sent", "created", "updated", "rejected", "api_calls"),
        ),
        _table("Rejections by reason", rejections or [("-", "none", 0)], ("destination", "reason", "records")),
        _table(
            "What the destinations now hold",
            [*held, ("customer.io people", len(people)), ("customer.io events", stand_ins.customerio.event_count())],
            ("destination", "count"),
        ),
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    print(f"Generating a Stripe account: {args.customers} customers over two years (seed {args.seed})...")
    started = time.monotonic()
    account = generate_account(seed=args.seed, customers=args.customers)
    print(
        f"  {len(account.customers)} customers, {len(account.charges)} charges, "
        f"{len(account.subscriptions)} subscriptions ({time.monotonic() - started:.1f}s)"
    )
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    warehouse = DEMO_DIR / "warehouse.duckdb"
    with running_stand_ins(account) as stand_ins, tempfile.TemporaryDirectory() as dagster_home:
        env = stand_ins.env(warehouse, Path(dagster_home))
        print(
            f"Stand-ins: Stripe {stand_ins.stripe.url}, Mailchimp {stand_ins.mailchimp.url}, "
            f"Customer.io {stand_ins.customerio.url}"
        )
        print("Running: dagster job execute -m orchestration.definitions -j nightly_sync ...")
        started = time.monotonic()
        proc = run_job("nightly_sync", env)
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-20000:])
            print(f"nightly_sync FAILED after {elapsed:.0f}s", file=sys.stderr)
            return 1
        steps = re.findall(r'Finished execution of step "([^"]+)" in ([0-9.]+m?s)', proc.stderr)
        print(f"nightly_sync succeeded in {elapsed:.0f}s: " + ", ".join(f"{name} {took}" for name, took in steps))
        print(summary(warehouse, stand_ins))
        print(f"\nThe warehouse stays at {warehouse.relative_to(REPO_ROOT)} for you to explore with SQL.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
