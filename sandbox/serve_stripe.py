"""Serve a generated Stripe account over HTTP from its own process, for benchmarks (``make bench``).

    python -m sandbox.serve_stripe --customers 100000 --latency 0.1 --global-rps 25 --endpoint-rps 25

Generates the account, starts :class:`~sandbox.stripe_api.StripeStandIn` on 127.0.0.1, prints one JSON line
(``{"url": ..., "customers": n, "charges": n, ...}``) to stdout once it is ready, and serves until SIGTERM,
SIGINT or its standard input closes (``--no-stdin`` to ignore stdin). Besides Stripe's read API it answers a
few control routes under ``/_bench/`` (not rate limited, not authenticated, counted in no statistic):

- ``GET /_bench/stats``: requests received per path under ``/v1/`` and 429s served since the last reset;
- ``POST /_bench/reset``: clear those counters and the rate-limit windows;
- ``POST /_bench/mutate?fraction=0.01&seed=1&advance=3600``: change ``fraction`` of the customers (a new
  email) and of the charges (a partial refund, which also creates a refund), then move the account's clock
  forward ``advance`` seconds, as if the next scheduled run came that much later.

Nothing in the project imports this module: it only wraps the stand-in for a separate benchmark process.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from collections import Counter
from typing import Any

from sandbox.http_server import Request, Response, serve_until_stopped
from sandbox.stripe_account import StripeAccount, generate_account
from sandbox.stripe_api import RateLimits, StripeStandIn

# What each list endpoint would return in full, as the benchmark streams read them.
_COUNTED = {
    "customers": "customer",
    "charges": "charge",
    "subscriptions": "subscription",
    "products": "product",
    "prices": "price",
    "refunds": "refund",
    "disputes": "dispute",
    "balance_transactions": "balance_transaction",
    "invoices": "invoice",
    "invoice_payments": "invoice_payment",
}


def account_counts(account: StripeAccount) -> dict[str, int]:
    """Objects per resource (events: those of the last 30 days, which is what ``/v1/events`` lists)."""
    with account.lock:
        counts = {name: len(account._records[resource]) for name, resource in _COUNTED.items()}
        floor = account.now - 30 * 86_400
        counts["events"] = sum(1 for rec in account._records["event"].values() if rec["created"] >= floor)
    return counts


class BenchStripeStandIn(StripeStandIn):
    """The Stripe stand-in plus the ``/_bench/`` control routes."""

    def __init__(self, account: StripeAccount, **kwargs: Any) -> None:
        super().__init__(account, **kwargs)
        self.route("GET", "/_bench/stats", self._stats)
        self.route("POST", "/_bench/reset", self._reset)
        self.route("POST", "/_bench/mutate", self._mutate)

    def _stats(self, request: Request) -> Response:
        with self._lock:
            paths = Counter(r.path for r in self.requests if r.path.startswith("/v1/"))
        with self._limiter_lock:
            limited = dict(self.rate_limited)
        return Response(
            200,
            {
                "requests": sum(paths.values()),
                "by_path": dict(paths),
                "rate_limited": sum(limited.values()),
                "rate_limited_by_reason": limited,
                "account_now": self.account.now,
            },
        )

    def _reset(self, request: Request) -> Response:
        self.reset_counters()
        return Response(200, {"ok": True})

    def _mutate(self, request: Request) -> Response:
        query = dict(request.query)
        fraction = float(query.get("fraction", "0.01"))
        seed = query.get("seed", "1")
        advance = int(query.get("advance", "3600"))
        started = time.monotonic()
        result = mutate(self.account, fraction, seed)
        if advance:
            self.account.advance(advance)
        result["advanced_seconds"] = advance
        result["seconds"] = round(time.monotonic() - started, 3)
        return Response(200, result)


def mutate(account: StripeAccount, fraction: float, seed: str) -> dict[str, Any]:
    """Change ``fraction`` of the customers (new email) and of the charges (partial refund)."""
    rng = random.Random(f"bench-mutate:{seed}")
    marker = f"bench{seed}"
    with account.lock:
        events_before = len(account._records["event"])
        customer_ids = list(account.customers)
        n_customers = round(len(customer_ids) * fraction)
        for i, customer_id in enumerate(rng.sample(customer_ids, n_customers)):
            account.update_customer(customer_id, email=f"{marker}.{i}@example.org")

        charge_ids = list(account.charges)
        wanted = round(len(charge_ids) * fraction)
        refunded = 0
        tried: set[int] = set()
        while refunded < wanted and len(tried) < len(charge_ids):
            index = rng.randrange(len(charge_ids))
            if index in tried:
                continue
            tried.add(index)
            charge_id = charge_ids[index]
            rec = account.charges.record(charge_id)
            if account.field("charge", rec, "status") != "succeeded" or not account.field("charge", rec, "captured"):
                continue
            remaining = rec["amount_captured"] - account.field("charge", rec, "amount_refunded")
            if remaining < 2:
                continue
            account.refund_charge(charge_id, amount=max(1, remaining // 10))
            refunded += 1
        account.sort_indexes()  # pay for re-sorting the event and refund indexes here, not in the next list call
        events = len(account._records["event"]) - events_before
    return {
        "fraction": fraction,
        "seed": seed,
        "email_marker": marker,
        "customers_updated": n_customers,
        "charges_refunded": refunded,
        "refunds_created": refunded,
        "objects_changed": n_customers + 2 * refunded,
        "events_emitted": events,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every request")
    parser.add_argument("--global-rps", type=float, default=25.0, help="requests/s per key; 0 = unlimited")
    parser.add_argument("--endpoint-rps", type=float, default=25.0, help="requests/s per endpoint; 0 = unlimited")
    parser.add_argument("--api-key", default="sk_test_bench_0123456789")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--no-stdin", action="store_true", help="do not stop when standard input closes")
    args = parser.parse_args(argv)

    started = time.monotonic()
    account = generate_account(seed=args.seed, customers=args.customers, months=args.months)
    account.sort_indexes()
    account.start_clock()  # a live account: changes made later get later times
    # The account is millions of long-lived objects: keep them out of the cyclic GC's full collections, which
    # would otherwise pause the server for seconds at a time while it renders pages.
    gc.collect()
    gc.freeze()
    generation_seconds = time.monotonic() - started

    limits = RateLimits(
        global_per_second=args.global_rps or None,
        per_endpoint_per_second=args.endpoint_rps or None,
    )
    server = BenchStripeStandIn(
        account, api_key=args.api_key, latency=args.latency, rate_limits=limits, host=args.host, port=args.port
    )
    url = server.start()

    ready = {
        "url": url,
        **account_counts(account),
        "seed": args.seed,
        "latency": args.latency,
        "global_rps": args.global_rps,
        "endpoint_rps": args.endpoint_rps,
        "generation_seconds": round(generation_seconds, 1),
    }
    print(json.dumps(ready), flush=True)
    try:
        serve_until_stopped(watch_stdin=not args.no_stdin)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
