"""Checkout Sessions' line items on incremental runs.

Stripe includes a session's ``line_items`` only when a request expands them, and events never do. The backfill
lists sessions with ``expand[]=data.line_items``; for sessions that arrive through events, the line items are
kept from the stored row when there is one, and read for new sessions from one list of the sessions created
since the cursor (100 per request, not one request per session).
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from audiences.stripe_reader import PAGE_SIZE, StripeReader

SESSION_LIFETIME = 86_400  # a session completes (or expires) at most 24 hours after it was created


def fill_line_items(
    con: duckdb.DuckDBPyConnection, reader: StripeReader, sessions: list[dict[str, Any]], since: int
) -> None:
    """Give each session of an event back its ``line_items`` (in place)."""
    missing = {s["id"] for s in sessions if not isinstance(s.get("line_items"), dict)}
    if not missing:
        return
    stored = {
        session_id: items
        for session_id, items in con.execute(
            "select id, line_items::varchar from stripe.checkout_sessions "
            "where list_contains(?, id) and line_items is not null",
            [list(missing)],
        ).fetchall()
    }
    fetched: dict[str, dict[str, Any]] = {}
    wanted = missing - stored.keys()
    if wanted:
        params: dict[str, Any] = {
            "limit": PAGE_SIZE,
            "created": {"gte": since - SESSION_LIFETIME},
            "expand": ["data.line_items"],
        }
        while wanted - fetched.keys():
            page, _ = reader.list("/v1/checkout/sessions", params)
            for session in page["data"]:
                if session["id"] in wanted and isinstance(session.get("line_items"), dict):
                    fetched[session["id"]] = session["line_items"]
            if not page.get("has_more") or not page["data"]:
                break
            params = {**params, "starting_after": page["data"][-1]["id"]}
    for session in sessions:
        if session["id"] in fetched:
            session["line_items"] = fetched[session["id"]]
        elif session["id"] in stored:
            session["line_items"] = {"object": "list", "data": orjson.loads(stored[session["id"]])}
