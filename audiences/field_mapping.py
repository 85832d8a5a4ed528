"""Which profile columns go where: read from the dbt model's column ``meta``.

Analytics engineers own the mapping in ``dbt_project/models/marts/customer_profiles.yml``::

    - name: lifetime_spend
      meta:
        mailchimp_merge_field: {tag: LTV, name: "Lifetime spend", type: number}
        customerio_attribute: lifetime_spend

so adding a column to a destination is a yml edit, with no Python change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MERGE_TAG = re.compile(r"^[A-Z0-9_]{1,10}$")
MERGE_TYPES = frozenset({"text", "number", "date"})


class MappingError(ValueError):
    """The dbt model's meta does not describe a usable mapping."""


@dataclass(frozen=True)
class MergeField:
    column: str
    tag: str
    name: str
    type: str


@dataclass(frozen=True)
class FieldMapping:
    merge_fields: tuple[MergeField, ...]
    customerio_attributes: dict[str, str]  # profile column -> attribute name


def model_node(manifest: dict[str, Any], model: str) -> dict[str, Any]:
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") == "model" and node.get("name") == model:
            return node
    raise MappingError(f"model {model!r} is not in the dbt manifest")


def load_mapping(manifest_path: Path, model: str = "customer_profiles") -> FieldMapping:
    manifest = json.loads(Path(manifest_path).read_text())
    node = model_node(manifest, model)
    merge_fields: list[MergeField] = []
    attributes: dict[str, str] = {}
    for column, spec in node.get("columns", {}).items():
        meta = spec.get("meta") or spec.get("config", {}).get("meta") or {}
        merge = meta.get("mailchimp_merge_field")
        if merge:
            tag = str(merge.get("tag", "")).upper()
            kind = str(merge.get("type", "text"))
            if not MERGE_TAG.match(tag):
                raise MappingError(
                    f"{model}.{column}: merge field tag {tag!r} must be 1-10 uppercase letters, digits or _"
                )
            if kind not in MERGE_TYPES:
                raise MappingError(f"{model}.{column}: merge field type {kind!r} not in {sorted(MERGE_TYPES)}")
            merge_fields.append(MergeField(column, tag, str(merge.get("name") or column), kind))
        attribute = meta.get("customerio_attribute")
        if attribute:
            attributes[column] = str(attribute)
    tags = [m.tag for m in merge_fields]
    if len(tags) != len(set(tags)):
        raise MappingError(f"{model}: duplicate merge field tags {tags}")
    return FieldMapping(tuple(merge_fields), attributes)
