"""The Customer.io Track stand-in over real HTTP: auth, batch semantics, identifiers, limits, dedupe, rate."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.customerio_api import MAX_OP_BYTES, MAX_REQUEST_BYTES, CustomerIOStandIn, _compact, _value_bytes

AUTH = ("site123", "cio_key_abc")


@pytest.fixture
def server() -> Iterator[CustomerIOStandIn]:
    stand_in = CustomerIOStandIn()
    stand_in.start()
    yield stand_in
    stand_in.stop()


def post_batch(server: CustomerIOStandIn, ops: list[Any], auth: Any = AUTH) -> requests.Response:
    return requests.post(server.url + "/api/v2/batch", json={"batch": ops}, auth=auth, timeout=10)


def identify(person_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "person",
        "identifiers": {"id": person_id},
        "action": "identify",
        "attributes": attributes,
    }


def event(person_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "person", "identifiers": {"id": person_id}, "action": "event", "name": name, **extra}


# -- auth ------------------------------------------------------------------------------------------------
def test_right_credentials_give_200_and_an_empty_object(server: CustomerIOStandIn) -> None:
    response = post_batch(server, [identify("cus_1", plan="pro")])
    assert response.status_code == 200 and response.json() == {}
    assert server.person("cus_1") == {"id": "cus_1", "plan": "pro"}


@pytest.mark.parametrize("auth", [("site123", "wrong"), ("other", "cio_key_abc"), None])
def test_wrong_or_missing_credentials_give_401_without_a_body(server: CustomerIOStandIn, auth: Any) -> None:
    response = post_batch(server, [identify("cus_1")], auth=auth)
    assert response.status_code == 401 and response.content == b""
    assert server.persons() == {}


# -- batch -------------------------------------------------------------------------------------------------
def test_identify_merges_attributes_and_null_or_empty_removes(server: CustomerIOStandIn) -> None:
    post_batch(server, [identify("cus_1", plan="pro", ltv=12.5, email="a@acme.io", segments=["vip"])])
    post_batch(server, [identify("cus_1", plan=None, ltv="", country="FR")])
    assert server.person("cus_1") == {
        "id": "cus_1",
        "email": "a@acme.io",
        "segments": ["vip"],
        "country": "FR",
    }
    assert server.person("a@acme.io") == server.person("cus_1")
    assert server.persons() == {"cus_1": server.person("cus_1")}


def test_207_lists_failed_ops_and_applies_the_others(server: CustomerIOStandIn) -> None:
    ops = [
        identify("cus_1", plan="pro"),
        {"type": "person", "identifiers": {"id": "cus_2", "email": "b@acme.io"}, "action": "identify"},
        {"type": "person", "action": "identify", "attributes": {"plan": "free"}},
        identify("cus_3", plan="team"),
        {"type": "person", "identifiers": {"id": 4}, "action": "identify"},
    ]
    response = post_batch(server, ops)
    assert response.status_code == 207
    errors = response.json()["errors"]
    assert [e["batch_index"] for e in errors] == [1, 2, 4]
    assert all(set(e) == {"batch_index", "reason", "field", "message"} for e in errors)
    assert errors[1]["field"] == "" and "identifiers" in errors[1]["message"]
    assert server.person("cus_1") == {"id": "cus_1", "plan": "pro"}
    assert server.person("cus_3") == {"id": "cus_3", "plan": "team"}
    assert server.person("cus_2") is None and server.person("b@acme.io") is None
    assert len(server.contract_violations) == 3
    assert {v["batch_index"] for v in server.contract_violations} == {1, 2, 4}
    assert server.batch_ops_seen == 5


@pytest.mark.parametrize(
    ("identifiers", "field"),
    [
        ({"id": "x" * 151}, "identifiers.id"),
        ({"email": "not-an-email"}, "identifiers.email"),
        ({"phone": "+33600000000"}, "identifiers.phone"),
        ({"id": "1", "unknown": "x"}, "identifiers"),
        ({"id": ""}, "identifiers.id"),
    ],
)
def test_identifier_rules(server: CustomerIOStandIn, identifiers: dict[str, Any], field: str) -> None:
    op = {"type": "person", "identifiers": identifiers, "action": "identify", "attributes": {"a": 1}}
    response = post_batch(server, [op, identify("ok")])
    assert response.status_code == 207, response.text
    [error] = response.json()["errors"]
    assert error["batch_index"] == 0 and error["field"] == field
    assert server.person("ok") is not None and len(server.persons()) == 1


def test_identifiers_by_email_and_cio_id(server: CustomerIOStandIn) -> None:
    long_ok = "x" * 150
    ops = [
        {
            "type": "person",
            "identifiers": {"email": "Ann@Acme.io"},
            "action": "identify",
            "attributes": {"a": 1},
        },
        {
            "type": "person",
            "identifiers": {"email": "ann@acme.io"},
            "action": "identify",
            "attributes": {"b": 2},
        },
        identify(long_ok),
        {
            "type": "person",
            "identifiers": {"cio_id": "ffffffff"},
            "action": "identify",
            "attributes": {"c": 3},
        },
    ]
    assert post_batch(server, ops).status_code == 200
    assert server.person("ann@acme.io") == {"email": "Ann@Acme.io", "a": 1, "b": 2}
    assert server.person(long_ok) == {"id": long_ok}
    assert len(server.persons()) == 2  # an unknown cio_id is dropped, not created
    assert server.attribute_update_failures[0]["reason"] == "person not found"


def test_request_size_limit(server: CustomerIOStandIn) -> None:
    assert MAX_REQUEST_BYTES == 500_000 and MAX_OP_BYTES == 32_000
    op = identify("cus_0", blob="x" * 900)
    op_size = len(json.dumps(op, separators=(",", ":")))
    ops = [identify(f"cus_{i}", blob="x" * 900) for i in range(MAX_REQUEST_BYTES // op_size + 1)]
    body = json.dumps({"batch": ops}, separators=(",", ":")).encode()
    assert len(body) >= MAX_REQUEST_BYTES
    response = requests.post(
        server.url + "/api/v2/batch",
        data=body,
        auth=AUTH,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["reason"] == "request_too_large"
    assert server.persons() == {}
    # just under the limit: accepted
    while len(body) >= MAX_REQUEST_BYTES:
        ops.pop()
        body = json.dumps({"batch": ops}, separators=(",", ":")).encode()
    response = requests.post(
        server.url + "/api/v2/batch",
        data=body,
        auth=AUTH,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
    assert len(server.persons()) == len(ops)


def test_op_size_limit(server: CustomerIOStandIn) -> None:
    big = identify("big", **{f"a{i}": "y" * 990 for i in range(33)})  # > 32,000 bytes
    fits = identify("fits", **{f"a{i}": "y" * 990 for i in range(31)})  # < 32,000 bytes
    assert len(json.dumps(big)) > MAX_OP_BYTES > len(json.dumps(fits))
    response = post_batch(server, [big, fits])
    assert response.status_code == 207
    assert response.json()["errors"] == [
        {
            "batch_index": 0,
            "reason": "too_large",
            "field": "",
            "message": response.json()["errors"][0]["message"],
        }
    ]
    assert server.person("big") is None and server.person("fits") is not None


def test_attribute_limits(server: CustomerIOStandIn) -> None:
    ops = [
        identify("long_value", v="é" * 501),  # 1002 bytes
        identify("long_name", **{"n" * 151: 1}),
        identify("too_many", **{f"a{i}": i for i in range(301)}),
        identify("fine", v="é" * 500, **{"n" * 150: 1}, **{f"a{i}": i for i in range(298)}),
    ]
    response = post_batch(server, ops)
    assert response.status_code == 207
    errors = {e["batch_index"]: e for e in response.json()["errors"]}
    assert set(errors) == {0, 1, 2}
    assert errors[0]["field"] == "attributes.v" and errors[2]["reason"] == "too_many"
    assert server.person("fine") is not None and server.person("long_value") is None


def test_event_rules_and_dedupe_by_id(server: CustomerIOStandIn) -> None:
    ulid = server.new_ulid()
    ops = [
        identify("cus_1"),
        event("cus_1", "paid", id=ulid, timestamp=1_700_000_000, attributes={"amount": 12.5}),
        event("cus_1", "paid", id=ulid, timestamp=1_700_000_001, attributes={"amount": 99}),  # same id: ignored
        event("cus_1", "n" * 101),
        event("cus_1", "ms", timestamp=1_700_000_000_000),
        event("cus_1", "badid", id="not-a-ulid"),
        event("cus_2", "refunded", id=server.new_ulid()),  # unknown person: created
    ]
    response = post_batch(server, ops)
    assert response.status_code == 207
    assert {e["batch_index"]: e["field"] for e in response.json()["errors"]} == {
        3: "name",
        4: "timestamp",
        5: "id",
    }
    events = server.events("cus_1")
    assert events == [
        {
            "name": "paid",
            "type": "event",
            "id": ulid,
            "timestamp": 1_700_000_000,
            "attributes": {"amount": 12.5},
        }
    ]
    assert [e["name"] for e in server.events("cus_2")] == ["refunded"]
    # a later batch repeating the id is ignored too
    assert post_batch(server, [event("cus_1", "paid", id=ulid)]).status_code == 200
    assert len(server.events("cus_1")) == 1
    assert any(v["batch_index"] == 5 for v in server.contract_violations)


def test_delete_suppress_unsuppress(server: CustomerIOStandIn) -> None:
    post_batch(server, [identify("a"), identify("b")])
    ops = [
        {"type": "person", "identifiers": {"id": "a"}, "action": "delete"},
        {"type": "person", "identifiers": {"id": "b"}, "action": "suppress"},
        identify("b", back=True),
    ]
    assert post_batch(server, ops).status_code == 200
    assert server.persons() == {}
    unsuppress = {"type": "person", "identifiers": {"id": "b"}, "action": "unsuppress"}
    assert post_batch(server, [unsuppress, identify("b", back=True)]).status_code == 200
    assert server.person("b") == {"id": "b", "back": True}


@pytest.mark.parametrize("body", [b"not json", b'{"nobatch": []}', b'{"batch": {"a": 1}}', b"[1, 2]", b""])
def test_malformed_requests_are_400(server: CustomerIOStandIn, body: bytes) -> None:
    response = requests.post(server.url + "/api/v2/batch", data=body, auth=AUTH, timeout=10)
    assert response.status_code == 400
    assert response.json()["errors"][0]["reason"] == "malformed"


# -- v1 ----------------------------------------------------------------------------------------------------
def test_v1_identify_update_only_and_event(server: CustomerIOStandIn) -> None:
    url = server.url + "/api/v1/customers"
    assert requests.put(f"{url}/cus_1", json={"email": "a@acme.io", "ltv": 10.5}, auth=AUTH, timeout=5).ok
    assert server.person("cus_1") == {"id": "cus_1", "email": "a@acme.io", "ltv": 10.5}
    response = requests.put(f"{url}/cus_9", json={"_update": True, "plan": "pro"}, auth=AUTH, timeout=5)
    assert response.status_code == 200 and server.person("cus_9") is None
    assert requests.put(f"{url}/cus_1", json={"_update": True, "plan": "pro"}, auth=AUTH, timeout=5).ok
    assert server.person("cus_1")["plan"] == "pro"
    ulid = server.new_ulid()
    body = {"name": "paid", "data": {"amount": 5}, "timestamp": int(time.time()), "id": ulid}
    for _ in range(2):
        assert requests.post(f"{url}/cus_1/events", json=body, auth=AUTH, timeout=5).status_code == 200
    assert [e["attributes"] for e in server.events("cus_1")] == [{"amount": 5}]


def test_v1_rejections(server: CustomerIOStandIn) -> None:
    url = server.url + "/api/v1/customers"
    bad = requests.put(f"{url}/cus_1", json={"email": "not-an-email"}, auth=AUTH, timeout=5)
    assert bad.status_code == 400 and bad.json()["meta"]["errors"]
    assert server.contract_violations[-1]["path"] == "/api/v1/customers/cus_1"
    big = {"name": "paid", "data": {"blob": "x" * 100_001}}
    assert requests.post(f"{url}/cus_1/events", json=big, auth=AUTH, timeout=5).status_code == 400
    long_name = {"name": "n" * 101}
    assert requests.post(f"{url}/cus_1/events", json=long_name, auth=AUTH, timeout=5).status_code == 400
    assert requests.put(f"{url}/{'x' * 151}", json={}, auth=AUTH, timeout=5).status_code == 400
    assert requests.put(f"{url}/cus_1", json={}, auth=("site123", "nope"), timeout=5).status_code == 401
    assert server.persons() == {}


# -- rate --------------------------------------------------------------------------------------------------
def test_rate_limit_sliding_window() -> None:
    with CustomerIOStandIn(requests_per_second=5) as server:
        session = requests.Session()
        statuses = [
            session.post(server.url + "/api/v2/batch", json={"batch": []}, auth=AUTH, timeout=5).status_code
            for _ in range(8)
        ]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
        assert server.rate_limited >= 1
        time.sleep(1.05)
        assert session.post(server.url + "/api/v2/batch", json={"batch": []}, auth=AUTH, timeout=5).ok


def test_no_rate_limit_by_default(server: CustomerIOStandIn) -> None:
    assert all(post_batch(server, []).status_code == 200 for _ in range(30))
    assert server.rate_limited == 0


@pytest.mark.parametrize(
    "value",
    ["", "é" * 10, True, False, 0, -12, 10**30, 1.5, 0.1 + 0.2, -0.0, 1e300, float("nan"), float("-inf"), [1, "x"], {}],
)
def test_attribute_value_size_is_its_json_size(value: object) -> None:
    expected = len(value.encode("utf-8")) if isinstance(value, str) else len(_compact(value))
    assert _value_bytes(value) == expected
