"""The Mailchimp and Customer.io stand-ins in a process of their own, for the reverse-ETL benchmark.

    python -m sandbox.serve_destinations --latency 0.2

Prints one JSON line with both base URLs and the credentials once ready; stops when standard input closes
(unless ``--no-stdin``) or on SIGTERM. Each server adds two control routes (no auth):

- ``GET /_bench/stats``: requests served by method and route since the last reset, 429s for too many
  connections, the most connections seen at once, contract violations, members / people / events held;
- ``POST /_bench/reset``: clear the request log and the counters (the audience and the people stay).

Request bodies are validated by the compiled contract validator alone (``sandbox.openapi_contract``: same
verdicts as the reference one, which the tests run beside it); ``--cross-check`` runs both here too.

Nothing in the project imports this module: it only wraps the stand-ins for a separate benchmark process.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
from collections import Counter
from typing import Any

from sandbox.customerio_api import CustomerIOStandIn
from sandbox.http_server import Request, Response, serve_until_stopped
from sandbox.mailchimp_api import MailchimpStandIn
from sandbox.openapi_contract import load_contract

MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"
AUDIENCE_ID = "bench00001"
PEER_AUDIENCE_ID = "bench00002"  # the naive peer's own audience, so both start from an empty one
CIO_SITE_ID = "bench-site"
CIO_KEY = "bench-track-key-0123456789"
_IDS = re.compile(r"/(?:[0-9a-f]{32}|[0-9]+|cus_[A-Za-z0-9]+)(?=/|$)")


def _route(request: Request) -> str:
    """``POST /3.0/lists/{id}/segments/{n}`` and the like: the request's route, without record ids."""
    return f"{request.method} {_IDS.sub('/{id}', request.path)}"


class _Stats:
    latency_includes_processing = True  # --latency is each request's response time, as the ceilings assume

    def _add_bench_routes(self: Any) -> None:
        self.route("GET", "/_bench/stats", self._bench_stats)
        self.route("POST", "/_bench/reset", self._bench_reset)

    def _requests_by_route(self: Any) -> dict[str, int]:
        with self._lock:
            return dict(Counter(_route(r) for r in self.requests if not r.path.startswith("/_bench/")))

    def _bench_reset(self: Any, request: Request) -> Response:
        self.clear_requests()
        self.contract_violations.clear()
        return Response(200, {"ok": True})


class BenchMailchimp(_Stats, MailchimpStandIn):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_bench_routes()

    def _bench_stats(self, request: Request) -> Response:
        by_route = self._requests_by_route()
        return Response(
            200,
            {
                "requests": sum(by_route.values()),
                "by_route": by_route,
                "rejected_for_connections": self.rejected_for_connections,
                "max_in_flight_seen": self.max_in_flight_seen,
                "contract_violations": len(self.contract_violations),
                "members": len(self._audiences[AUDIENCE_ID].members),
            },
        )

    def _bench_reset(self, request: Request) -> Response:
        self.rejected_for_connections = 0
        self.max_in_flight_seen = 0
        return super()._bench_reset(request)


class BenchCustomerIO(_Stats, CustomerIOStandIn):
    def __init__(self, **kwargs: Any) -> None:
        self.batch_bytes = 0
        super().__init__(**kwargs)
        self._add_bench_routes()

    def _batch(self, request: Request) -> Response:
        with self._state:
            self.batch_bytes += len(request.body)
        return super()._batch(request)

    def _bench_reset(self, request: Request) -> Response:
        with self._state:
            self.batch_bytes = 0
            self.batch_ops_seen = 0
        return super()._bench_reset(request)

    def _bench_stats(self, request: Request) -> Response:
        by_route = self._requests_by_route()
        with self._state:
            people = len(self._people)
        events = self.event_count()
        return Response(
            200,
            {
                "requests": sum(by_route.values()),
                "by_route": by_route,
                "contract_violations": len(self.contract_violations),
                "people": people,
                "events": events,
                "batch_bytes": self.batch_bytes,
                "batch_ops": self.batch_ops_seen,
            },
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--latency", type=float, default=0.2, help="each request's response time (at least), its handling included"
    )
    parser.add_argument("--max-connections", type=int, default=10, help="Mailchimp's simultaneous connections")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-stdin", action="store_true", help="do not stop when standard input closes")
    parser.add_argument("--cross-check", action="store_true", help="also run the reference validator on each body")
    args = parser.parse_args(argv)
    # The stand-ins' state (members, people) only grows and holds no cycles: the cyclic collector's passes over it
    # cost a fifth of their CPU and free nothing (short-lived benchmark processes).
    gc.disable()
    for api in ("mailchimp", "customerio"):
        contract = load_contract(api)
        contract.cross_check = args.cross_check
        contract.warm()  # before the ready line: the first timed request does not pay for it

    mailchimp = BenchMailchimp(
        api_key=MAILCHIMP_KEY, latency=args.latency, max_connections=args.max_connections, host=args.host
    )
    mailchimp.create_audience(list_id=AUDIENCE_ID, name="Benchmark customers")
    mailchimp.create_audience(list_id=PEER_AUDIENCE_ID, name="Benchmark customers (naive peer)")
    customerio = BenchCustomerIO(site_id=CIO_SITE_ID, api_key=CIO_KEY, latency=args.latency, host=args.host)
    ready = {
        "mailchimp": mailchimp.start(),
        "mailchimp_key": MAILCHIMP_KEY,
        "audience_id": AUDIENCE_ID,
        "peer_audience_id": PEER_AUDIENCE_ID,
        "customerio": customerio.start(),
        "customerio_site_id": CIO_SITE_ID,
        "customerio_key": CIO_KEY,
        "latency": args.latency,
        "max_connections": args.max_connections,
    }
    print(json.dumps(ready), flush=True)
    try:
        serve_until_stopped(watch_stdin=not args.no_stdin)
    finally:
        mailchimp.stop()
        customerio.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
