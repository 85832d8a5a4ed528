"""Our extraction, as the Dagster asset runs it: ``extract(con, reader, STREAMS)`` into a DuckDB file.

    python -m bench.backfill_ours --url URL --key KEY --warehouse /tmp/x.duckdb              # full backfill
    python -m bench.backfill_ours --url URL --key KEY --warehouse /tmp/x.duckdb --incremental

A backfill starts from an empty warehouse (the file is deleted first); ``--incremental`` runs again on an
existing one (what a scheduled run does after the backfill). Prints one JSON line: objects landed, requests,
seconds of the ``extract`` call, peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from audiences.rate_limit import stripe_limits
from audiences.stripe_extract import extract
from audiences.stripe_reader import StripeReader, make_client
from audiences.stripe_streams import STREAMS
from audiences.warehouse import connect
from bench.common import emit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="Stripe API base, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--incremental", action="store_true", help="run on the existing warehouse")
    parser.add_argument("--workers", type=int, default=8, help="the asset's default")
    parser.add_argument("--rps", type=float, default=None, help="default: Stripe's limit for the key's mode")
    parser.add_argument("--endpoint-rps", type=float, default=None, help="default: 25")
    parser.add_argument("--max-network-retries", type=int, default=3, help="the Dagster resource's default")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit (default: the extract's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    if args.incremental:
        if not args.warehouse.exists():
            parser.error(f"--incremental needs an existing warehouse: {args.warehouse}")
    else:
        for path in (args.warehouse, args.warehouse.with_name(args.warehouse.name + ".wal")):
            path.unlink(missing_ok=True)

    limiter = stripe_limits(args.key, args.rps, args.endpoint_rps)
    reader = StripeReader(make_client(args.key, args.url, args.max_network_retries), limiter)
    with connect(args.warehouse) as con:
        started = time.monotonic()
        limit = {"memory_limit": args.memory_limit} if args.memory_limit else {}
        report = extract(con, reader, STREAMS, workers=args.workers, **limit)
        seconds = time.monotonic() - started
        rows = {s.name: con.execute(f"select count(*) from {s.table}").fetchone()[0] for s in STREAMS}

    changed = {name: s.changed for name, s in report.streams.items()}
    emit(
        {
            "tool": "ours",
            "mode": "incremental" if args.incremental else "backfill",
            "objects": sum(changed.values()) if args.incremental else sum(rows.values()),
            "rows": rows,
            "changed": changed,
            "stream_modes": {name: s.mode for name, s in report.streams.items()},
            "requests": report.requests,
            "retries": report.retries,
            "events_read": report.events_read,
            "seconds": round(seconds, 3),
            "timings": {k: round(v, 1) for k, v in report.timings.items()},
            "limiter": {
                "global_per_second": limiter.global_per_second,
                "per_endpoint_per_second": limiter.per_endpoint_per_second,
                "waited_seconds": round(limiter.waited_seconds, 1),
            },
            "workers": args.workers,
        }
    )


if __name__ == "__main__":
    main()
