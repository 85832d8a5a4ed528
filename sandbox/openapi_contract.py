"""Validate request (and response) bodies against the official OpenAPI documents of the APIs.

The stand-ins call this for every JSON body they receive, so a body the real API would refuse on schema
grounds is refused locally too, and recorded as a contract violation.

* Documents live in ``$CONTRACTS_DIR`` (default ``<repo>/../shared/contracts``):
  ``mailchimp`` is OpenAPI 3.0.1, ``customerio`` is OpenAPI 3.1.0.
* Each document is read and parsed once per process; one validator per (operation, direction, status) is
  compiled lazily and cached. ``$ref``s resolve through a :mod:`referencing` registry holding the document.
* Paths match document templates whatever the parameter names (``/lists/{list_id}`` matches
  ``/lists/{listId}``), concrete paths (``/lists/abc/members``) and a server prefix such as ``/3.0``.

A few schemas in the official documents contradict the same documents' prose and would reject requests the
real APIs accept every day. They are patched at load time; see :data:`DOCUMENT_PATCHES`. An
``additionalProperties`` that only annotates (accepts any value) becomes ``true`` at load time: same verdicts,
without descending into every custom attribute.

Two validators give each request body its verdict:

* a compiled one (``jsonschema_rs``, Rust) over a copy of the document translated to plain JSON Schema for the
  request direction (OpenAPI 3.0's ``readOnly`` refused, its ``required`` skipping read-only properties,
  ``nullable``; every ``format`` checked by the same Python checks the reference validator uses);
* the reference one (``openapi_schema_validator``, Python), which also writes the readable messages.

With ``cross_check`` on (the default; ``CONTRACT_CROSS_CHECK=0`` turns it off) both run on every body and a
body either refuses is refused, so neither can be kinder than the other unnoticed; with it off (the
benchmark's stand-ins) the compiled validator decides alone and the reference one only explains a refusal.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jsonschema_rs
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from openapi_schema_validator import (
    OAS30ReadValidator,
    OAS30WriteValidator,
    OAS31Validator,
    oas30_format_checker,
    oas31_format_checker,
)
from referencing import Registry
from referencing.jsonschema import DRAFT4, DRAFT202012

DOCUMENTS = {
    "mailchimp": "mailchimp/marketing-openapi.json",
    "customerio": "customerio/track-openapi.json",
}

_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)


def contracts_dir() -> Path:
    """``$CONTRACTS_DIR``, else ``<repo root>/../shared/contracts`` (repo root = parent of ``sandbox/``)."""
    env = os.environ.get("CONTRACTS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "contracts"


def _format_checker(base: Any) -> Any:
    checker = copy.deepcopy(base)
    for name in ("ULID", "ulid"):  # Customer.io event dedupe ids: "A valid ULID"
        checker.checks(name)(lambda value: not isinstance(value, str) or bool(_ULID.match(value)))
    return checker


_FORMATS_30 = _format_checker(oas30_format_checker)
_FORMATS_31 = _format_checker(oas31_format_checker)


def _cross_check_default() -> bool:
    return os.environ.get("CONTRACT_CROSS_CHECK", "1").strip().lower() not in ("0", "false", "no", "off")


# -- document patches -----------------------------------------------------------------------------------
_ANY_MERGE_VALUE = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "object"}]}


def _patch_mailchimp(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for schema in schemas.values():
        merge = schema.get("properties", {}).get("merge_fields")
        extra = merge.get("additionalProperties") if isinstance(merge, dict) else None
        if isinstance(extra, dict) and extra.get("type") == "object":
            merge["additionalProperties"] = {**_ANY_MERGE_VALUE, "description": extra.get("description", "")}
    put_member = schemas.get("AddListMembers2")
    if put_member is not None:
        put_member.pop("required", None)


def _patch_customerio(doc: dict[str, Any]) -> None:
    put = doc["paths"]["/api/v1/customers/{identifier}"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    extra = body.get("additionalProperties")
    if isinstance(extra, dict):
        extra.pop("oneOf", None)  # any JSON value, as in the v2 identify schema


#: Known schema bugs of the official documents, fixed after loading (name -> (explanation, fix)).
DOCUMENT_PATCHES: dict[str, list[tuple[str, Callable[[dict[str, Any]], None]]]] = {
    "mailchimp": [
        (
            'Every `merge_fields` map declares `additionalProperties: {type: object}`, so `{"FNAME": "Ann"}` '
            "(the documented usage: text/number/date values are strings or numbers, ADDRESS is an object) "
            "would fail. Values are relaxed to string | number | object (null stays invalid). "
            "Member PUT (`AddListMembers2`) lists `email_address` and `status_if_new` as required while "
            "their descriptions say 'required only if the email address is not already present on the "
            "list': the schema `required` is dropped and the stand-in enforces both for new members.",
            _patch_mailchimp,
        )
    ],
    "customerio": [
        (
            "v1 `PUT /api/v1/customers/{identifier}` limits attribute values to string | integer | boolean "
            "(`oneOf`), refusing floats such as 12.5, arrays and objects that the API and the v2 identify "
            "schema accept; the `oneOf` is dropped (any JSON value; null removes the attribute).",
            _patch_customerio,
        )
    ],
}


# -- errors ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContractError:
    """One schema violation: ``path`` is a JSONPath into the body (``$.members[0].email_address``)."""

    path: str
    message: str

    @property
    def field(self) -> str:
        """The path without the leading ``$.``, for ``errors[].field`` in problem documents."""
        return self.path[2:] if self.path.startswith("$.") else ("" if self.path == "$" else self.path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _json_path(parts: Any) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mismatch(error: ValidationError) -> bool:
    """True if ``error`` only says "wrong branch": a discriminating ``enum``/``const`` property (such as
    Customer.io's ``type``/``action``) differs, or every branch of a nested anyOf/oneOf is wrong."""
    if error.validator in ("enum", "const") and len(error.relative_path) == 1:
        return True
    if error.validator in ("anyOf", "oneOf") and error.context:
        return all(any(_mismatch(e) for e in errs) for errs in _branches(error).values())
    return False


def _branches(error: ValidationError) -> dict[Any, list[ValidationError]]:
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        branches.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
    return branches


def _mismatch_leaves(error: ValidationError) -> list[ValidationError]:
    if error.validator in ("enum", "const") and len(error.relative_path) == 1:
        return [error]
    return [leaf for sub in error.context or [] for leaf in _mismatch_leaves(sub)]


def _no_branch_fits(error: ValidationError) -> ContractError | None:
    """Every branch is for another kind of instance: name the discriminating property and its values."""
    leaves = _mismatch_leaves(error)
    if not leaves:
        return None
    counts: dict[str, int] = {}
    for leaf in leaves:
        counts[str(leaf.relative_path[0])] = counts.get(str(leaf.relative_path[0]), 0) + 1
    prop = max(counts, key=lambda name: counts[name])
    allowed: list[Any] = []
    for leaf in leaves:
        if str(leaf.relative_path[0]) == prop:
            values = leaf.validator_value if leaf.validator == "enum" else [leaf.validator_value]
            allowed.extend(v for v in values if v not in allowed)
    leaf = next(leaf for leaf in leaves if str(leaf.relative_path[0]) == prop)
    return ContractError(_json_path(leaf.absolute_path), _shorten(f"{leaf.instance!r} is not one of {allowed!r}"))


def _closest(error: ValidationError) -> ValidationError | ContractError:
    """For anyOf/oneOf failures, the most telling error of the branch the instance was meant for."""
    while error.context:
        viable = [errs for errs in _branches(error).values() if not any(_mismatch(e) for e in errs)]
        if not viable:
            return _no_branch_fits(error) or best_match(error.context) or error
        fewest = min(len(errs) for errs in viable)  # the branch needing the fewest fixes
        pick = best_match([e for errs in viable if len(errs) == fewest for e in errs])
        if pick is None:
            break
        error = pick
    return error


def _to_error(error: ValidationError) -> ContractError:
    path = _json_path(error.absolute_path)
    if error.validator == "oneOf" and not error.context:  # valid under more than one branch
        titles = [str(s.get("title", i)) for i, s in enumerate(error.validator_value) if isinstance(s, dict)]
        return ContractError(path, f"must match exactly one of the alternatives {titles}, matches several")
    if error.context:  # anyOf / oneOf: report the closest branch's error, not a repr of the whole instance
        closest = _closest(error)
        if isinstance(closest, ContractError):
            return closest
        if closest is not error:
            if closest.validator == "oneOf" and not closest.context:
                return _to_error(closest)
            message = f"{closest.message} (no {error.validator} branch matched)"
            return ContractError(_json_path(closest.absolute_path), _shorten(message, 600))
    return ContractError(path, _shorten(error.message, 600))


# -- documents ------------------------------------------------------------------------------------------
def _pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class Contract:
    """One OpenAPI document: operation lookup and cached validators."""

    def __init__(self, name: str, document: dict[str, Any], source: str = "") -> None:
        self.name = name
        self.source = source
        self.document = document
        self.version = str(document.get("openapi", ""))
        self.is_31 = self.version.startswith("3.1")
        self._uri = f"urn:openapi-contract:{name}"
        spec = DRAFT202012 if self.is_31 else DRAFT4
        self._registry: Registry = Registry().with_resource(self._uri, spec.create_resource(document))
        self._validators: dict[tuple[str, ...], Validator] = {}
        self._fast_validators: dict[str, Any] = {}
        self._fast_registry: Any = None
        self.cross_check = _cross_check_default()
        self._lock = threading.Lock()
        self._prefixes = self._server_prefixes()
        self._templates = self._compile_templates()

    # -- paths -----------------------------------------------------------------------------------------
    def _server_prefixes(self) -> list[str]:
        prefixes = set()
        for server in self.document.get("servers", []) or []:
            path = urlsplit(str(server.get("url", ""))).path.rstrip("/")
            if path:
                prefixes.add(path)
        return sorted(prefixes, key=len, reverse=True)

    def _compile_templates(self) -> list[tuple[int, re.Pattern[str], str, str]]:
        out = []
        for template in self.document.get("paths", {}):
            literal = re.sub(r"\{[^}/]+\}", "{}", template)
            pieces = re.split(r"(\{[^}/]+\})", template)
            regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in pieces)
            literals = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            out.append((literals, re.compile(f"^{regex}$"), literal, template))
        out.sort(key=lambda item: -item[0])  # most literal segments first: /a/{x}/b beats /a/{x}/{y}
        return out

    def find_path(self, path: str) -> str | None:
        """The document's path template for a template or concrete path (``None`` if unknown)."""
        candidates = [path.rstrip("/") or "/"]
        for prefix in self._prefixes:
            if candidates[0].startswith(prefix + "/"):
                candidates.append(candidates[0][len(prefix) :])
        for candidate in candidates:
            literal = re.sub(r"\{[^}/]+\}", "{}", candidate)
            for _, _, template_literal, template in self._templates:
                if template_literal == literal:
                    return template
            for _, regex, _, template in self._templates:
                if regex.match(candidate):
                    return template
        return None

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        template = self.find_path(path)
        if template is None:
            raise KeyError(f"{self.name}: no path {path!r} in the document")
        op = self.document["paths"][template].get(method.lower())
        if not isinstance(op, dict):
            raise KeyError(f"{self.name}: no {method.upper()} operation on {template}")
        return template, op

    def _resolve(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 20:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"{self.name}: only local $refs are supported, not {ref!r}")
            node = self.document
            for token in ref[2:].split("/"):
                node = node[token.replace("~1", "/").replace("~0", "~")]
            seen += 1
        return node

    # -- schemas --------------------------------------------------------------------------------------
    def _media_pointer(self, content: dict[str, Any], base: str, content_type: str) -> str | None:
        if not content:
            return None
        wanted = content_type.split(";")[0].strip().lower()
        for media in (wanted, "application/json", *content):
            if media in content and isinstance(content[media], dict) and "schema" in content[media]:
                return f"{base}/content/{_pointer_escape(media)}/schema"
        return None

    def request_schema_pointer(self, method: str, path: str, content_type: str = "application/json") -> str | None:
        template, op = self.operation(method, path)
        body = op.get("requestBody")
        if body is None:
            return None
        base = f"#/paths/{_pointer_escape(template)}/{method.lower()}/requestBody"
        if "$ref" in body:
            base = body["$ref"]
            body = self._resolve(body)
        return self._media_pointer(body.get("content", {}), base, content_type)

    def response_schema_pointer(
        self, method: str, path: str, status: int, content_type: str = "application/json"
    ) -> str | None:
        template, op = self.operation(method, path)
        responses = op.get("responses", {})
        key = next(
            (k for k in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default") if k in responses),
            None,
        )
        if key is None:
            return None
        base = f"#/paths/{_pointer_escape(template)}/{method.lower()}/responses/{key}"
        response = responses[key]
        if "$ref" in response:
            base = response["$ref"]
            response = self._resolve(response)
        return self._media_pointer(response.get("content", {}), base, content_type)

    def validator(self, pointer: str, *, direction: str = "request") -> Validator:
        """A compiled, cached validator for the schema at ``pointer`` (``#/components/schemas/X``)."""
        key = (pointer, direction)
        cached = self._validators.get(key)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._validators.get(key)
            if cached is None:
                root = {"$ref": f"{self._uri}{pointer}"}
                if self.is_31:
                    cached = OAS31Validator(root, registry=self._registry, format_checker=_FORMATS_31)
                else:
                    cls = OAS30WriteValidator if direction == "request" else OAS30ReadValidator
                    cached = cls(root, registry=self._registry, format_checker=_FORMATS_30)
                self._validators[key] = cached
        return cached

    def warm(self) -> None:
        """Translate the document for the compiled validator now rather than on the first request."""
        with self._lock:
            if self._fast_registry is None:
                translated = request_json_schema(self.document, is_31=self.is_31)
                draft = jsonschema_rs.Draft202012 if self.is_31 else jsonschema_rs.Draft4
                self._fast_registry = jsonschema_rs.Registry([(self._uri, translated)], draft=draft)

    def fast_validator(self, pointer: str) -> Any:
        """The compiled request-direction validator for the schema at ``pointer`` (cached)."""
        cached = self._fast_validators.get(pointer)
        if cached is not None:
            return cached
        self.warm()
        with self._lock:
            cached = self._fast_validators.get(pointer)
            if cached is None:
                cls = jsonschema_rs.Draft202012Validator if self.is_31 else jsonschema_rs.Draft4Validator
                cached = cls(
                    {"$ref": self._uri + quote(pointer, safe="#/~")},
                    registry=self._fast_registry,
                    formats=_FAST_FORMATS_31 if self.is_31 else _FAST_FORMATS_30,
                    validate_formats=True,
                )
                self._fast_validators[pointer] = cached
        return cached

    def errors_for(self, pointer: str, instance: Any, *, direction: str = "request") -> list[ContractError]:
        fast_errors: list[ContractError] = []
        if direction == "request":
            fast = self.fast_validator(pointer)
            if fast.is_valid(instance):
                if not self.cross_check:
                    return []
            else:
                fast_errors = [_fast_error(e) for e in fast.iter_errors(instance)]
        validator = self.validator(pointer, direction=direction)
        errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))
        if errors:
            return [_to_error(e) for e in errors]
        # Only the compiled validator refuses: be as strict as it is, and say which one spoke.
        return [ContractError(e.path, f"{e.message} (compiled validator)") for e in fast_errors]

    def request_errors(
        self, method: str, path: str, body: Any, content_type: str = "application/json"
    ) -> list[ContractError]:
        """Schema violations of a request body (``[]`` if valid or if the operation takes no JSON body)."""
        pointer = self.request_schema_pointer(method, path, content_type)
        if pointer is None:
            return []
        return self.errors_for(pointer, body, direction="request")

    def response_errors(
        self, method: str, path: str, status: int, body: Any, content_type: str = "application/json"
    ) -> list[ContractError]:
        pointer = self.response_schema_pointer(method, path, status, content_type)
        if pointer is None:
            return []
        return self.errors_for(pointer, body, direction="response")

    def validate_request(self, method: str, path: str, body: Any) -> list[str]:
        return [str(e) for e in self.request_errors(method, path, body)]

    def validate_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        return [str(e) for e in self.response_errors(method, path, status, body)]


def _fast_error(error: Any) -> ContractError:
    return ContractError(_json_path(error.instance_path), _shorten(str(error.message), 600))


def _python_format(checker: Any, name: str) -> Callable[[str], bool]:
    return lambda value: checker.conforms(value, name)


def _fast_formats(checker: Any) -> dict[str, Callable[[str], bool]]:
    """Every format the reference validator checks, by the same Python function; the compiled validator's own
    format checks are replaced (a format the reference ignores is ignored: ``ignore_unknown_formats``)."""
    return {name: _python_format(checker, name) for name in checker.checkers}


_FAST_FORMATS_30 = _fast_formats(_FORMATS_30)
_FAST_FORMATS_31 = _fast_formats(_FORMATS_31)


def request_json_schema(document: dict[str, Any], *, is_31: bool) -> dict[str, Any]:
    """A copy of ``document`` whose schemas mean, in plain JSON Schema, what the OpenAPI validator applies to a
    request body.

    OpenAPI 3.0 (``OAS30WriteValidator``): a schema marked ``readOnly`` accepts nothing in a request; a
    required property whose own schema is read-only is not required; ``nullable: true`` admits ``null`` where
    the same schema object has a ``type``. Formats unknown
    to the reference checker are dropped, so the compiled validator's own checks never apply. OpenAPI 3.1 is
    JSON Schema 2020-12 already (``readOnly`` is an annotation there).
    """
    out = json.loads(json.dumps(document))  # a deep copy, several times faster than copy.deepcopy
    known = set(_FORMATS_31.checkers if is_31 else _FORMATS_30.checkers)

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        for value in node.values():
            visit(value)
        if isinstance(node.get("format"), str) and node["format"] not in known:
            del node["format"]
        if is_31:
            return
        # As openapi_schema_validator reads them: a property is read-only when its own schema object says so
        # (not through a $ref); nullable only widens a `type` of the same schema object.
        properties = node.get("properties")
        if isinstance(node.get("required"), list) and isinstance(properties, dict):
            node["required"] = [
                name
                for name in node["required"]
                if not (isinstance(properties.get(name), dict) and properties[name].get("readOnly"))
            ]
            if not node["required"]:
                del node["required"]
        if node.get("readOnly") is True:
            node["allOf"] = [*node.get("allOf", []), {"not": {}}]
        if node.pop("nullable", False) is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]

    visit(out)
    return out


_LOAD_LOCK = threading.Lock()
#: Keywords that describe a schema without constraining it (``readOnly``/``writeOnly`` are not among them: the
#: OpenAPI validators act on them).
_ANNOTATIONS = {"title", "description", "example", "examples", "default", "deprecated", "$comment"}


def _accepts_anything(schema: Any) -> bool:
    return isinstance(schema, dict) and all(k in _ANNOTATIONS or k.startswith("x-") for k in schema)


def _skip_annotation_only_extras(node: Any) -> None:
    """Replace each ``additionalProperties`` that only annotates (it accepts any value) by ``true``.

    Same verdicts, less work: the validator no longer descends into every extra property to find nothing, which
    was most of the Customer.io stand-in's time on person ops (custom attributes are such properties).
    """
    if isinstance(node, dict):
        if _accepts_anything(node.get("additionalProperties")):
            node["additionalProperties"] = True
        for value in node.values():
            _skip_annotation_only_extras(value)
    elif isinstance(node, list):
        for value in node:
            _skip_annotation_only_extras(value)


@cache
def _load(name: str, directory: str) -> Contract:
    relative = DOCUMENTS.get(name, name)
    path = Path(directory) / relative
    with path.open("rb") as fh:
        document = json.load(fh)
    for _, patch in DOCUMENT_PATCHES.get(name, []):
        patch(document)
    _skip_annotation_only_extras(document)
    return Contract(name, document, source=str(path))


def load_contract(name: str) -> Contract:
    """The parsed, patched document ``name`` (``mailchimp``, ``customerio`` or a path relative to the
    contracts directory), loaded once per process and contracts directory."""
    with _LOAD_LOCK:
        return _load(name, str(contracts_dir()))


def validate_request(api: str, method: str, path: str, body: Any) -> list[str]:
    """Readable violations (``"$.members[0].email_address: 5 is not of type 'string'"``); ``[]`` if valid."""
    return load_contract(api).validate_request(method, path, body)


def validate_response(api: str, method: str, path: str, status: int, body: Any) -> list[str]:
    return load_contract(api).validate_response(method, path, status, body)


__all__ = [
    "DOCUMENTS",
    "DOCUMENT_PATCHES",
    "Contract",
    "ContractError",
    "contracts_dir",
    "load_contract",
    "validate_request",
    "validate_response",
]
