"""dlt's ``rest_api`` source configured for the same Stripe endpoints, loading into DuckDB.

    python -m bench.backfill_dlt --url URL --key KEY --warehouse /tmp/dlt.duckdb --seconds-per-endpoint 15

Stripe's pagination (``has_more`` and ``starting_after=<id of the page's last object>``) is dlt's built-in
``cursor`` paginator (``JSONResponseCursorPaginator``): ``cursor_path="data[-1].id"``,
``cursor_param="starting_after"``, ``has_more_path="has_more"``. Every resource is written with
``write_disposition="replace"`` (a backfill into an empty dataset: no merge cost) and dlt's defaults
otherwise (sequential extraction, nested objects normalized into columns and child tables).

Each endpoint is one ``pipeline.run`` (extract, normalize, load), its extraction limited to
``--seconds-per-endpoint`` with ``add_limit(max_time=...)`` (0 = no limit); the time of an endpoint is the whole
run's. Prints one JSON line, per endpoint: rows landed in its table, seconds, whether it was read to its end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import ENDPOINTS, Endpoint, emit


def dlt_params(endpoint: Endpoint) -> dict[str, Any]:
    """Query parameters as requests encodes them: Stripe's arrays are ``name[]``."""
    return {(f"{k}[]" if isinstance(v, list) else k): v for k, v in endpoint.params.items()}


def rest_api_config(url: str, key: str) -> dict[str, Any]:
    return {
        "client": {
            "base_url": url.rstrip("/") + "/v1/",
            "auth": {"type": "bearer", "token": key},
            "paginator": {
                "type": "cursor",
                "cursor_path": "data[-1].id",
                "cursor_param": "starting_after",
                "has_more_path": "has_more",
            },
        },
        "resource_defaults": {"write_disposition": "replace", "endpoint": {"data_selector": "data"}},
        "resources": [{"name": e.name, "endpoint": {"path": e.resource, "params": dlt_params(e)}} for e in ENDPOINTS],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--warehouse", required=True, type=Path)
    parser.add_argument("--seconds-per-endpoint", type=float, default=0.0, help="0 = read every endpoint fully")
    args = parser.parse_args(argv)
    for path in (args.warehouse, args.warehouse.with_name(args.warehouse.name + ".wal")):
        path.unlink(missing_ok=True)
    pipelines_dir = args.warehouse.with_name(args.warehouse.stem + "_dlt_pipelines")
    shutil.rmtree(pipelines_dir, ignore_errors=True)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

    import dlt
    from dlt.sources.rest_api import rest_api_source

    pipeline = dlt.pipeline(
        pipeline_name="stripe_bench",
        pipelines_dir=str(pipelines_dir),
        destination=dlt.destinations.duckdb(str(args.warehouse)),
        dataset_name="stripe_dlt",
        progress=None,
    )
    config = rest_api_config(args.url, args.key)
    endpoints: dict[str, dict[str, Any]] = {}
    total_started = time.monotonic()
    for endpoint in ENDPOINTS:
        source = rest_api_source(config).with_resources(endpoint.name)  # type: ignore[arg-type]
        if args.seconds_per_endpoint:
            source.resources[endpoint.name].add_limit(max_time=args.seconds_per_endpoint)
        started = time.monotonic()
        pipeline.run(source)
        seconds = time.monotonic() - started
        row_counts = pipeline.last_trace.last_normalize_info.row_counts
        objects = int(row_counts.get(endpoint.name, 0))
        endpoints[endpoint.name] = {
            "objects": objects,
            "child_table_rows": sum(
                int(n) for t, n in row_counts.items() if t.startswith(endpoint.name + "__") and not t.startswith("_")
            ),
            "seconds": round(seconds, 3),
            # add_limit stops at the first page after max_time: a limited endpoint ran at least that long
            "complete": not args.seconds_per_endpoint or seconds < args.seconds_per_endpoint,
        }
    seconds = time.monotonic() - total_started
    emit(
        {
            "tool": "dlt",
            "dlt_version": dlt.__version__,
            "objects": sum(e["objects"] for e in endpoints.values()),
            "seconds": round(seconds, 3),
            "endpoints": endpoints,
            "seconds_per_endpoint": args.seconds_per_endpoint,
        }
    )


if __name__ == "__main__":
    main()
