"""The plain way: the official SDK's ``auto_paging_iter`` over each endpoint, one page after the other.

    python -m bench.backfill_sequential --url URL --key KEY --warehouse /tmp/seq.duckdb --seconds-per-endpoint 15

What a user writes first: for each endpoint, iterate ``client.v1.<resource>.list(params=...).auto_paging_iter()``,
collect each object as a dict (``to_dict(for_json=True)``: decimal amounts come as ``Decimal``), and insert every
page (100 objects) into DuckDB through a pandas DataFrame: ``id``, ``created`` and the object as JSON. The SDK's
defaults otherwise (no retries configured).

A full sequential backfill of the benchmark account takes most of an hour, so each endpoint is read for at
most ``--seconds-per-endpoint`` (0 = to the end); the JSON line reports, per endpoint, the objects landed, the
pages and the seconds, and whether the endpoint was read to its end.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import stripe

from bench.common import ENDPOINTS, emit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--seconds-per-endpoint", type=float, default=0.0, help="0 = read every endpoint fully")
    args = parser.parse_args(argv)
    for path in (args.warehouse, args.warehouse.with_name(args.warehouse.name + ".wal")):
        path.unlink(missing_ok=True)

    client = stripe.StripeClient(args.key, base_addresses={"api": args.url})
    con = duckdb.connect(str(args.warehouse))
    endpoints: dict[str, dict[str, Any]] = {}
    total_started = time.monotonic()
    for endpoint in ENDPOINTS:
        con.execute(f"create table {endpoint.name} (id varchar, created bigint, data json)")
        service = functools.reduce(getattr, endpoint.resource.split("/"), client.v1)  # checkout/sessions: nested
        started = time.monotonic()
        deadline = started + args.seconds_per_endpoint if args.seconds_per_endpoint else None
        objects = pages = 0
        complete = True
        rows: list[dict[str, Any]] = []

        def insert_page(rows: list[dict[str, Any]], table: str = endpoint.name) -> None:
            df = pd.DataFrame(rows)  # noqa: F841 - read by DuckDB's replacement scan below
            con.execute(f"insert into {table} select id, created, data from df")

        for obj in service.list(params=dict(endpoint.params)).auto_paging_iter():
            rows.append({"id": obj.id, "created": obj.created, "data": json.dumps(obj.to_dict(for_json=True))})
            if len(rows) == endpoint.params["limit"]:
                insert_page(rows)
                objects += len(rows)
                pages += 1
                rows = []
                if deadline is not None and time.monotonic() >= deadline:
                    complete = False
                    break
        if rows:
            insert_page(rows)
            objects += len(rows)
            pages += 1
        endpoints[endpoint.name] = {
            "objects": objects,
            "pages": pages,
            "seconds": round(time.monotonic() - started, 3),
            "complete": complete,
        }
    seconds = time.monotonic() - total_started
    con.close()
    emit(
        {
            "tool": "sequential",
            "objects": sum(e["objects"] for e in endpoints.values()),
            "seconds": round(seconds, 3),
            "endpoints": endpoints,
            "seconds_per_endpoint": args.seconds_per_endpoint,
        }
    )


if __name__ == "__main__":
    main()
