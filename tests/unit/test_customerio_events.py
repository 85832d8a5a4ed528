from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from audiences.customerio_events import event_op, event_ulid

ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
AT = dt.datetime(2026, 11, 20, 8, 30, 15, tzinfo=dt.UTC)


def test_event_ulid_is_a_valid_ulid_stable_per_stripe_event_and_starts_with_its_time() -> None:
    first = event_ulid("evt_1QabcXYZ", AT)
    assert ULID.match(first)
    assert event_ulid("evt_1QabcXYZ", AT) == first  # a rerun sends the same dedupe id
    assert event_ulid("evt_1QabcXYZ2", AT) != first
    later = event_ulid("evt_1QabcXYZ", AT + dt.timedelta(milliseconds=1))
    assert later[:10] != first[:10] and first[10:] == later[10:]  # 10 characters of time, then the id's hash
    decoded = 0
    for char in first[:10]:
        decoded = decoded * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    assert decoded == int(AT.timestamp() * 1000)


def test_event_op_names_the_person_and_keeps_only_known_attributes() -> None:
    row = {
        "event_id": "evt_1",
        "customer_id": "cus_9",
        "event_name": "stripe_payment_failed",
        "stripe_event_type": "charge.failed",
        "stripe_object_id": "ch_3",
        "amount": Decimal("19.990"),
        "currency": "eur",
        "failure_code": "card_declined",
        "dispute_reason": None,
        "is_livemode": False,
        "occurred_at": AT,
    }
    op = event_op(row)
    assert op["identifiers"] == {"id": "cus_9"} and op["action"] == "event"
    assert op["name"] == "stripe_payment_failed" and op["timestamp"] == int(AT.timestamp())
    assert op["id"] == event_ulid("evt_1", AT)
    assert op["attributes"] == {
        "stripe_event_id": "evt_1",
        "stripe_event_type": "charge.failed",
        "stripe_object_id": "ch_3",
        "amount": 19.99,
        "currency": "eur",
        "failure_code": "card_declined",
    }
