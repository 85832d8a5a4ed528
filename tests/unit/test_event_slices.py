from __future__ import annotations

import itertools

from audiences.stripe_events import time_slices
from audiences.stripe_streams import event_queries


def test_a_long_range_is_cut_into_contiguous_spans_ending_open() -> None:
    spans = time_slices(1_000, 1_000 + 30 * 86_400, 8)
    assert len(spans) == 8
    assert spans[0][0] == 1_000 and spans[-1][1] is None
    for (_, hi), (lo, _) in itertools.pairwise(spans):
        assert hi == lo  # no gap, no overlap


def test_a_short_range_is_one_open_span() -> None:
    assert time_slices(1_000, 1_500, 8) == [(1_000, None)]
    assert time_slices(1_000, 1_000 + 86_400 + 300, 8) == [(1_000, None)]  # a nightly run's day
    assert time_slices(1_000, 10**9, 1) == [(1_000, None)]


def test_event_filters_cover_every_type_with_few_requests() -> None:
    queries = event_queries()
    assert {"type": "charge.*"} in queries and {"type": "customer.subscription.*"} in queries
    exact = next(q["types"] for q in queries if "types" in q)
    assert set(exact) == {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "invoice.payment_failed",
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
        # invoices (exact types: ``invoice.*`` would bring ``invoice.upcoming``, a preview without an id)
        "invoice.created",
        "invoice.deleted",
        "invoice.finalized",
        "invoice.finalization_failed",
        "invoice.marked_uncollectible",
        "invoice.overpaid",
        "invoice.paid",
        "invoice.payment_action_required",
        "invoice.payment_succeeded",
        "invoice.updated",
        "invoice.voided",
        "invoice_payment.paid",
    }
    assert len(exact) <= 20  # one types[] request, as Stripe allows
    assert not any(q.get("type") == "charge.dispute.*" for q in queries)  # covered by charge.*
    assert len(queries) == 6
