"""The compiled validator (jsonschema_rs over the translated document) and the reference OpenAPI validator give
every request body the same verdict, so the benchmark's stand-ins, which use the compiled one alone, are exactly
as strict as the tests' stand-ins, which run both.

Bodies: what the project sends, and every single-step mutation of them (each value replaced by values of every
JSON type, each key dropped, an unknown key added at each level).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.openapi_contract import Contract, load_contract

REPLACEMENTS: list[Any] = [None, True, 0, 1.0, -3, 2.5, "", "x", "2026-01-02T03:04:05Z", "not-a-date", [], ["a"], {}]

MEMBER = {
    "email_address": "ada@acme.io",
    "status": "transactional",
    "merge_fields": {"LTV": 12.5, "PURCHASES": 3, "LASTPURCH": "2026-01-02", "RFM": "loyal", "ADDR": {"city": "X"}},
    "tags": ["rfm:loyal", "spend:high"],
}
MAILCHIMP = [
    ("POST", "/lists/{list_id}", {"members": [MEMBER], "update_existing": False, "sync_tags": False}),
    (
        "PUT",
        "/lists/{list_id}/members/{subscriber_hash}",
        {"email_address": "ada@acme.io", "status_if_new": "subscribed", "merge_fields": {"LTV": 1}},
    ),
    ("POST", "/lists/{list_id}/members", {"email_address": "ada@acme.io", "status": "subscribed", "tags": ["a"]}),
    ("POST", "/lists/{list_id}/segments/{segment_id}", {"members_to_add": ["a@acme.io"], "members_to_remove": []}),
    ("POST", "/lists/{list_id}/segments", {"name": "rfm:loyal", "static_segment": []}),
    (
        "POST",
        "/lists/{list_id}/merge-fields",
        {"tag": "LTV", "name": "Lifetime", "type": "number", "public": False, "display_order": 3},
    ),
    ("POST", "/lists/{list_id}/members/{subscriber_hash}/tags", {"tags": [{"name": "vip", "status": "inactive"}]}),
]
CUSTOMERIO = [
    (
        "POST",
        "/api/v2/batch",
        {
            "batch": [
                {"type": "person", "identifiers": {"id": "cus_1"}, "action": "identify", "attributes": {"a": 1}},
                {
                    "type": "person",
                    "identifiers": {"id": "cus_1"},
                    "action": "event",
                    "name": "payment_failed",
                    "id": "01HZX3NDEKTSV4RRFFQ69G5FAV",
                    "timestamp": 1700000000,
                    "attributes": {"amount": 12.5},
                },
            ]
        },
    ),
    ("PUT", "/api/v1/customers/{identifier}", {"email": "a@acme.io", "ltv": 12.5, "_update": True}),
    (
        "POST",
        "/api/v1/customers/{identifier}/events",
        {"name": "paid", "data": {"x": 1}, "timestamp": 1700000000, "id": "01HZX3NDEKTSV4RRFFQ69G5FAV"},
    ),
]


def mutations(body: Any) -> Iterator[Any]:
    """``body`` itself, then every single-step change of it."""
    yield body

    def walk(node: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        yield path
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, (*path, index))

    def at(root: Any, path: tuple[Any, ...]) -> Any:
        for part in path:
            root = root[part]
        return root

    for path in list(walk(body, ())):
        target = at(body, path)
        for value in REPLACEMENTS:
            if path and value != target:
                changed = copy.deepcopy(body)
                at(changed, path[:-1])[path[-1]] = value
                yield changed
        if isinstance(target, dict):
            for key in target:
                dropped = copy.deepcopy(body)
                del at(dropped, path)[key]
                yield dropped
            extra = copy.deepcopy(body)
            at(extra, path)["zz_unknown"] = "x"
            yield extra


def disagreements(contract: Contract, cases: list[tuple[str, str, Any]]) -> tuple[int, list[str]]:
    checked = 0
    out: list[str] = []
    for method, path, body in cases:
        pointer = contract.request_schema_pointer(method, path)
        assert pointer is not None
        reference = contract.validator(pointer)
        fast = contract.fast_validator(pointer)
        for candidate in mutations(body):
            checked += 1
            expected = reference.is_valid(candidate)
            if fast.is_valid(candidate) != expected:
                out.append(
                    f"{method} {path}: reference says {'valid' if expected else 'invalid'}: {json.dumps(candidate)}"
                )
    return checked, out


@pytest.mark.parametrize(("api", "cases"), [("mailchimp", MAILCHIMP), ("customerio", CUSTOMERIO)])
def test_both_validators_agree_on_every_body_and_its_mutations(api: str, cases: list[tuple[str, str, Any]]) -> None:
    checked, disagreeing = disagreements(load_contract(api), cases)
    assert checked > 300  # the mutations really ran
    assert disagreeing == []


def test_read_only_nullable_and_formats_translate_as_the_reference_reads_them(tmp_path, monkeypatch) -> None:
    # OpenAPI 3.0 as the reference reads it: a read-only property is refused in a request, and not required there
    # when its own schema says read-only (through a $ref it stays required, which no request can then satisfy);
    # nullable admits null; date-time is checked by the reference's own function; an unknown format is ignored.
    doc = {
        "openapi": "3.0.1",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/things": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {
            "schemas": {
                "Id": {"type": "string", "readOnly": True},
                "Thing": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {
                        "id": {"type": "string", "readOnly": True},
                        "ref": {"$ref": "#/components/schemas/Id"},
                        "name": {"type": "string", "nullable": True},
                        "at": {"type": "string", "format": "date-time"},
                        "code": {"type": "string", "format": "Promo date-time"},
                        "n": {"type": "integer"},
                    },
                },
            }
        },
    }
    (tmp_path / "tiny30.json").write_text(json.dumps(doc))
    monkeypatch.setenv("CONTRACTS_DIR", str(tmp_path))
    contract = load_contract("tiny30.json")
    cases = [("POST", "/things", {"name": "a", "at": "2026-01-02T03:04:05Z", "code": "whatever", "n": 3})]
    assert disagreements(contract, cases)[1] == []
    fast = contract.fast_validator(contract.request_schema_pointer("POST", "/things"))
    assert fast.is_valid({"name": None})
    assert not fast.is_valid({"name": "a", "id": "x"})  # read-only: refused in a request
    assert not fast.is_valid({"name": "a", "ref": "x"})
    assert not fast.is_valid({"name": "a", "at": "yesterday"})
    assert not fast.is_valid({"name": "a", "n": 1.5})
    assert not fast.is_valid({})


def test_without_cross_check_the_compiled_validator_decides_and_the_reference_explains(monkeypatch) -> None:
    contract = load_contract("mailchimp")
    monkeypatch.setattr(contract, "cross_check", False)
    path = "/lists/{list_id}"
    assert contract.validate_request("POST", path, {"members": [MEMBER]}) == []
    bad = {"members": [{**MEMBER, "status": "active"}]}
    errors = contract.validate_request("POST", path, bad)
    assert errors and errors[0].startswith("$.members[0].status: 'active' is not one of")
