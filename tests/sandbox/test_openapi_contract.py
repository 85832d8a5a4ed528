"""The OpenAPI contract checker: valid and invalid bodies for both documents, path matching, caching."""

from __future__ import annotations

import json

import pytest

from sandbox import openapi_contract
from sandbox.openapi_contract import load_contract, validate_request, validate_response

MEMBER_PUT = "/lists/{list_id}/members/{subscriber_hash}"


def member_body(i: int = 0) -> dict:
    return {
        "email_address": f"person{i}@acme.io",
        "status_if_new": "transactional",
        "merge_fields": {"FNAME": "Ada", "LTV": 12.5, "ADDRESS": {"addr1": "1 Main", "city": "X"}},
        "timestamp_opt": "2024-05-01T10:00:00+00:00",
    }


def test_mailchimp_valid_member_body_has_no_errors() -> None:
    assert validate_request("mailchimp", "PUT", MEMBER_PUT, member_body()) == []


def test_mailchimp_invalid_member_body_gives_readable_errors() -> None:
    body = {"email_address": 5, "status_if_new": "active", "vip": "yes", "merge_fields": {"FNAME": None}}
    errors = validate_request("mailchimp", "PUT", MEMBER_PUT, body)
    assert "$.email_address: 5 is not of type 'string'" in errors
    assert any(e.startswith("$.status_if_new: 'active' is not one of") for e in errors)
    assert "$.vip: 'yes' is not of type 'boolean'" in errors
    assert any(e.startswith("$.merge_fields.FNAME:") for e in errors)


def test_mailchimp_batch_errors_point_into_the_array() -> None:
    body = {"members": [{"email_address": "a@acme.io", "status": "subscribed"}, {"email_address": ["x"]}]}
    errors = validate_request("mailchimp", "POST", "/lists/{list_id}", body)
    assert errors == ["$.members[1].email_address: ['x'] is not of type 'string'"]


def test_mailchimp_required_tag_fields_and_enums() -> None:
    path = "/lists/{list_id}/members/{subscriber_hash}/tags"
    assert validate_request("mailchimp", "POST", path, {"tags": [{"name": "vip", "status": "active"}]}) == []
    errors = validate_request("mailchimp", "POST", path, {"tags": [{"name": "vip", "status": "on"}, {}]})
    assert any(e.startswith("$.tags[0].status: 'on' is not one of") for e in errors)
    assert "$.tags[1]: 'name' is a required property" in errors


def test_document_patches_let_real_world_bodies_through() -> None:
    # merge field values are strings/numbers/objects, not only objects as the raw document says
    assert validate_request("mailchimp", "PUT", MEMBER_PUT, {"merge_fields": {"FNAME": "Ann", "N": 3}}) == []
    # v1 identify accepts floats, lists and null as attribute values
    body = {"ltv": 12.5, "segments": ["a"], "plan": None, "email": "a@acme.io"}
    assert validate_request("customerio", "PUT", "/api/v1/customers/{identifier}", body) == []
    assert set(openapi_contract.DOCUMENT_PATCHES) == {"mailchimp", "customerio"}


def test_customerio_valid_batch() -> None:
    body = {
        "batch": [
            {"type": "person", "identifiers": {"id": "cus_1"}, "action": "identify", "attributes": {"a": 1}},
            {
                "type": "person",
                "identifiers": {"email": "a@acme.io"},
                "action": "event",
                "name": "paid",
                "id": "01HZX3NDEKTSV4RRFFQ69G5FAV",
                "timestamp": 1700000000,
                "attributes": {"amount": 12.5},
            },
        ]
    }
    assert validate_request("customerio", "POST", "/api/v2/batch", body) == []


def test_customerio_invalid_batch_ops() -> None:
    body = {
        "batch": [
            {"type": "person", "identifiers": {"id": "1", "email": "x@acme.io"}, "action": "identify"},
            {"type": "person", "identifiers": {"id": 1}, "action": "identify"},
            {"type": "person", "identifiers": {"id": "1"}, "action": "explode"},
            {
                "type": "person",
                "identifiers": {"id": "1"},
                "action": "event",
                "name": "x",
                "id": "not-a-ulid",
            },
            {"type": "person", "identifiers": {"id": "1"}, "action": "event"},
        ]
    }
    errors = validate_request("customerio", "POST", "/api/v2/batch", body)
    assert errors[0].startswith("$.batch[0].identifiers: must match exactly one of the alternatives")
    assert errors[1].startswith("$.batch[1].identifiers.id: 1 is not of type 'string'")
    assert errors[2].startswith("$.batch[2].action: 'explode' is not one of")
    assert errors[3].startswith("$.batch[3].id: 'not-a-ulid' is not a 'ULID'")
    assert errors[4].startswith("$.batch[4]: 'name' is a required property")
    assert validate_request("customerio", "POST", "/api/v2/batch", {"batch": "x"}) == [
        "$.batch: 'x' is not of type 'array'"
    ]


def test_customerio_v1_event() -> None:
    path = "/api/v1/customers/{identifier}/events"
    assert validate_request("customerio", "POST", path, {"name": "paid", "data": {"x": 1}}) == []
    errors = validate_request("customerio", "POST", path, {"name": "paid", "timestamp": "yesterday"})
    assert errors == ["$.timestamp: 'yesterday' is not of type 'integer' (no oneOf branch matched)"]


def test_path_matching_accepts_any_parameter_names_concrete_paths_and_the_server_prefix() -> None:
    contract = load_contract("mailchimp")
    for path in (
        MEMBER_PUT,
        "/lists/{listId}/members/{subscriberHash}",
        "/lists/abc/members/0a1b",
        "/3.0" + MEMBER_PUT,
    ):
        assert contract.find_path(path) == "/lists/{listId}/members/{subscriberHash}"
    assert contract.find_path("/lists/abc/members") == "/lists/{listId}/members"
    assert contract.find_path("/nope") is None
    with pytest.raises(KeyError):
        contract.validate_request("DELETE", "/ping", {})


def test_operations_without_a_body_validate_to_nothing() -> None:
    assert validate_request("mailchimp", "GET", "/lists/{list_id}", None) == []


def test_response_validation() -> None:
    assert validate_response("mailchimp", "GET", "/ping", 200, {"health_status": "Everything's Chimpy!"}) == []
    problem = {"type": "t", "title": "Invalid Resource", "status": 400, "detail": "d", "instance": "i"}
    assert validate_response("mailchimp", "PUT", MEMBER_PUT, 400, problem) == []
    errors = validate_response("mailchimp", "PUT", MEMBER_PUT, 400, {"title": 1})
    assert "$.title: 1 is not of type 'string'" in errors
    assert "$: 'detail' is a required property" in errors


def test_documents_are_loaded_once_and_validators_cached() -> None:
    contract = load_contract("mailchimp")
    assert load_contract("mailchimp") is contract
    pointer = contract.request_schema_pointer("PUT", MEMBER_PUT)
    assert pointer is not None
    assert contract.validator(pointer) is contract.validator(pointer)
    # 1,000 member bodies go through one compiled validator (no timing assertion: just cached)
    bad = [i for i in range(1000) if contract.validate_request("PUT", MEMBER_PUT, member_body(i))]
    assert bad == []


def test_contracts_dir_environment_variable(tmp_path, monkeypatch) -> None:
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/things/{id}": {
                "post": {
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {
            "schemas": {"Thing": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}
        },
    }
    (tmp_path / "tiny.json").write_text(json.dumps(doc))
    monkeypatch.setenv("CONTRACTS_DIR", str(tmp_path))
    assert openapi_contract.contracts_dir() == tmp_path
    contract = load_contract("tiny.json")
    assert contract.validate_request("POST", "/things/7", {"n": 1}) == []
    assert contract.validate_request("POST", "/things/7", {"n": "1"}) == ["$.n: '1' is not of type 'integer'"]


def test_extras_that_only_annotate_are_skipped_and_the_verdicts_stay() -> None:
    # Custom person attributes are declared by an `additionalProperties` holding only a description: it is
    # replaced by `true` at load time (nothing to descend into), while extras that constrain are kept.
    contract = load_contract("customerio")
    identify = contract._resolve({"$ref": "#/components/schemas/identify_person"})
    attributes = identify["allOf"][1]["properties"]["attributes"]
    assert attributes["additionalProperties"] is True
    mailchimp = load_contract("mailchimp")
    merge_fields = mailchimp._resolve({"$ref": "#/components/schemas/AddListMembers1"})["properties"]["merge_fields"]
    assert "anyOf" in merge_fields["additionalProperties"]

    pointer = "#/components/schemas/identify_person"
    op = {"type": "person", "identifiers": {"id": "cus_1"}, "action": "identify"}
    custom = {"ltv": 12.5, "tags": ["a"], "nested": {"x": None}, "vip": True, "note": None}
    assert contract.errors_for(pointer, {**op, "attributes": custom}) == []
    errors = contract.errors_for(pointer, {**op, "attributes": {**custom, "_update": "yes"}})
    assert [e.path for e in errors] == ["$.attributes._update"]
