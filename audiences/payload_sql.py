"""The SQL that turns the profile marts into destination payloads, inside the warehouse.

Each destination's payloads are computed by one query over the profiles: values converted for the destination,
the canonical JSON text of each payload (sorted keys, no spaces) and, for Customer.io, the operation to send.
The warehouse then compares them with what was pushed before (``sync_state.plan_changes``), so Python only
ever holds the records that are sent: a nightly run where 1% changed reads 1% of the profiles.

The query is generated from the column mapping (``field_mapping``) and the columns' types, so a column added
to a destination in the dbt yml needs no code here. Value rules (the same for every type a column can have):

- Mailchimp merge fields: ``number`` as a JSON number (decimals as floats), ``date`` in the audience's date
  format (timestamps by their UTC date), ``text`` as text cut to 255 characters; NULL as ``""``.
- Customer.io attributes: timestamps and dates as unix seconds (dates at midnight UTC), decimals as floats,
  everything else as it is; NULL as ``""``, which removes the attribute instead of storing a null.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import duckdb
import pyarrow as pa

from audiences.field_mapping import FieldMapping
from audiences.profiles import ProfileSource

EMPTY = "'\"\"'"  # the JSON text of ""
TEXT_MAX = 255
# str.strip()'s whitespace in ASCII, so the key of an ASCII address is computed as subscriber_hash computes it
_ASCII_SPACE = "||".join(f"chr({c})" for c in (*range(9, 14), *range(28, 33)))
FLOAT_TYPES = ("DECIMAL", "DOUBLE", "FLOAT", "REAL")


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_float(kind: str) -> bool:
    return kind.startswith(FLOAT_TYPES)


def _is_null(kind: str) -> bool:
    return kind.strip('"') == "NULL"


def json_text(expr: str) -> str:
    """The JSON text of a SQL value; NULL -> ``""``."""
    return f"coalesce(to_json({expr})::varchar, {EMPTY})"


def merge_value(column: str, kind: str, field_type: str, date_pattern: str) -> str:
    """A merge field's value as JSON text (NULL -> "")."""
    col = ident(column)
    if _is_null(kind):
        return EMPTY
    if field_type == "number":
        return json_text(f"{col}::double" if _is_float(kind) else col)
    if field_type == "date":
        if kind == "TIMESTAMP WITH TIME ZONE":
            day = f"timezone('UTC', {col})"
        elif kind.startswith("TIMESTAMP") or kind == "DATE":
            day = col
        else:  # text holding an ISO date
            day = f"cast(left(cast({col} as varchar), 10) as date)"
        return json_text(f"strftime({day}, {literal(date_pattern)})")
    return json_text(f"left(cast({col} as varchar), {TEXT_MAX})")


def attribute_value(column: str, kind: str) -> str:
    """A Customer.io attribute's value as JSON text (NULL -> "", which removes the attribute)."""
    col = ident(column)
    if _is_null(kind):
        return EMPTY
    if kind.startswith("TIMESTAMP"):
        return json_text(f"trunc(epoch({col}))::bigint")
    if kind == "DATE":
        return json_text(f"epoch({col}::timestamp)::bigint")
    if _is_float(kind):
        return json_text(f"{col}::double")
    return json_text(col)


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def json_object(entries: Mapping[str, str], optional: Mapping[str, str] | None = None) -> str:
    """SQL for the JSON text of an object with sorted keys (so the text is canonical) from JSON-text
    expressions; an ``optional`` entry ``key: condition`` is written only where its condition holds."""
    optional = optional or {}
    if not entries:
        return "'{}'"
    parts = []  # each `,"key":value`; the first comma is cut, whichever entry comes first
    for key, value in sorted(entries.items()):
        label = literal("," + _key(key) + ":")
        if key in optional:
            parts.append(f"case when {optional[key]} then concat({label}, {value}) else '' end")
        else:
            parts += [label, value]
    # one concat: a chain of || would copy the text again for each part
    return "concat('{', substr(concat(" + ", ".join(parts) + "), 2), '}')"


def valid_email(columns: Mapping[str, str], table: str = "p", column: str = "email") -> str:
    """An address we may send: present and, when the mart says, valid (a NULL verdict is not valid)."""
    present = f"({table}.{column} is not null and {table}.{column} <> '')"
    if "has_valid_email" in columns:
        return f"({present} and coalesce({table}.has_valid_email, false))"
    return present


# -- Mailchimp -------------------------------------------------------------------------------------------


def non_ascii_email_keys(
    con: duckdb.DuckDBPyConnection, source: ProfileSource, subscriber_hash: Callable[[str], str]
) -> pa.Table:
    """``(email, key, address)`` for the addresses with non-ASCII characters: the key by ``subscriber_hash``
    (Python's Unicode case and space rules), the address trimmed by Python's rules; ASCII addresses are keyed
    and trimmed in SQL, by the same rules."""
    emails = [
        row[0]
        for row in con.execute(
            f"select distinct email from {source.table()} where email is not null and strlen(email) <> length(email)"
        ).fetchall()
    ]
    return pa.table(
        {
            "email": pa.array(emails, pa.string()),
            "key": pa.array([subscriber_hash(e) for e in emails], pa.string()),
            "address": pa.array([e.strip() for e in emails], pa.string()),
        }
    )


CONTACT_COLUMNS = ("__email", "__key", "__valid", "__rank", "__winner")


def contact_keys_sql(source: ProfileSource, columns: Mapping[str, str], email_keys: str | None) -> str:
    """Each profile's ``customer_id`` and ``email`` with its address as sent (``__email``: trimmed), its contact key
    (``__key``: md5 of the trimmed, lowercased address), whether it may be a contact (``__valid``), and its rank
    among the profiles of the same address (``__rank``, ``__winner``: the customer id ranked first): the highest
    lifetime spend, then the lowest id, wins (the one rule for every destination). ``email_keys``: the
    ``non_ascii_email_keys`` table; without it, non-ASCII addresses are keyed by DuckDB's case rules. Only the
    columns the rule reads are read, so this is quick to keep as a table."""
    spend = "coalesce(lifetime_spend, 0)" if "lifetime_spend" in columns else "0"
    needed = ["customer_id", "email", *(c for c in ("has_valid_email", "lifetime_spend") if c in columns)]
    keys = email_keys or "(select null::varchar as email, null::varchar as key, null::varchar as address)"
    return f"""
        with p as (select {", ".join(needed)} from {source.table()}),
        trimmed as (
            select p.*, coalesce(k.address, trim(p.email, {_ASCII_SPACE})) as __email,
                coalesce(k.key, md5(lower(trim(p.email, {_ASCII_SPACE})))) as __key
            from p left join {keys} k on k.email = p.email
        ),
        keyed as (select *, {valid_email(columns, "trimmed", "__email")} as __valid from trimmed)
        select customer_id, email, __email, __key, __valid,
            case when __valid then row_number() over (
                partition by __valid, __key order by {spend} desc, customer_id) end as __rank,
            case when __valid then first_value(customer_id) over (
                partition by __valid, __key order by {spend} desc, customer_id) end as __winner
        from keyed
    """


def contacts_sql(
    source: ProfileSource, columns: Mapping[str, str], email_keys: str | None, *, keys: str | None = None
) -> str:
    """Every profile column and ``__tags`` (``ProfileSource.select``) with its contact columns
    (``contact_keys_sql``). ``keys``: a table (or subquery) of ``contact_keys_sql``'s rows to use instead, e.g. a
    part of them: then only those profiles are read."""
    contact = ", ".join(f"k.{c}" for c in CONTACT_COLUMNS)
    if keys is None:
        keys = f"({contact_keys_sql(source, columns, email_keys)})"
        return f"select p.*, {contact} from ({source.select()}) p join {keys} k using (customer_id)"
    return (
        f"select p.*, {contact} from {keys} k "
        f"join ({source.select(f'(select customer_id from {keys})')}) p using (customer_id)"
    )


def mailchimp_payload_sql(
    contacts: str, columns: Mapping[str, str], mapping: FieldMapping, date_formats: Mapping[str, str]
) -> str:
    """record_key, payload (canonical JSON), member (the batch endpoint's new member: ``status``, non-empty merge
    fields, tags when there are some) and tag_count, one row per contact."""
    merge = {
        f.tag: merge_value(
            f.column, columns.get(f.column, '"NULL"'), f.type, strftime_pattern(date_formats.get(f.tag, "YYYY-MM-DD"))
        )
        for f in mapping.merge_fields
    }
    names = {tag: f"__m{i}" for i, tag in enumerate(merge)}  # each value computed once
    values = "".join(f", {value} as {names[tag]}" for tag, value in merge.items())
    consent = "coalesce(marketing_consent::boolean, false)" if "marketing_consent" in columns else "false"
    status = f"case when {consent} then 'subscribed' else 'transactional' end"
    common = {"email_address": "to_json(__email)::varchar", "tags": "to_json(__tags)::varchar"}
    payload = json_object(
        {
            **common,
            "customer_id": "to_json(customer_id)::varchar",
            "status_if_new": f"to_json({status})::varchar",
            "merge_fields": json_object(names),
        }
    )
    member = json_object(
        {
            **common,
            "status": f"to_json({status})::varchar",
            # an empty value only clears a field: a new member has none to clear
            "merge_fields": json_object(names, {tag: f"{name} <> {EMPTY}" for tag, name in names.items()}),
        },
        {"tags": "len(__tags) > 0"},
    )
    return f"""
        select __key as record_key, {payload} as payload, {member} as member, len(__tags) as tag_count
        from (select *{values} from {contacts} where __rank = 1)
    """


def strftime_pattern(date_format: str) -> str:
    return date_format.upper().replace("YYYY", "%Y").replace("MM", "%m").replace("DD", "%d")


# -- Customer.io -----------------------------------------------------------------------------------------

YIELDS_EMAIL = "coalesce(__rank > 1, false)"  # a contact whose address another profile wins


def customerio_payload_sql(
    source: ProfileSource,
    columns: Mapping[str, str],
    mapping: FieldMapping,
    *,
    max_identifier_bytes: int,
    max_op_bytes: int,
    max_value_bytes: int,
    email_keys: str | None = None,
    contacts: str | None = None,
) -> str:
    """record_key (the customer id), payload (canonical JSON: ``{attributes, id}``), op (the ``identify``
    operation, as sent), problem (why Customer.io would refuse the op; NULL when it fits) and yields_email.

    An address is one person's (Customer.io refuses an email another person has, without saying so in the
    answer): the profile that wins the address (``contacts_sql``: the same rule as Mailchimp's contact) gets it,
    the others of that address get ``email: ""``, which removes it from them (``yields_email``: such ops are
    sent before the others, so an address can move to a new winner in one run). ``email_keys``: as for
    ``contacts_sql``; ``contacts``: a table that holds ``contacts_sql``'s rows already, read instead."""
    attributes = {
        name: attribute_value(column, columns.get(column, '"NULL"'))
        for column, name in mapping.customerio_attributes.items()
    }
    email = f"case when __rank = 1 then to_json(__email)::varchar else {EMPTY} end"
    entries = {**attributes, "email": email, "segments": "to_json(__tags)::varchar"}
    optional = {"email": "__valid"}
    checks: list[tuple[str, str]] = []  # (condition, reason), in the order the attributes are written
    for column, name in mapping.customerio_attributes.items():
        if name in ("email", "segments"):
            continue
        checks.append((_too_long(column, columns.get(column, ""), max_value_bytes), name))
    checks += [
        (f"(__valid and __rank = 1 and strlen(__email) > {max_value_bytes})", "email"),
        (f"strlen(to_json(__tags)::varchar) > {max_value_bytes}", "segments"),
    ]
    attribute_problems = " ".join(
        f"when {condition} then {literal(f'attribute {name} longer than {max_value_bytes} bytes')}"
        for condition, name in checks
    )
    too_big = f" bytes exceeds the {max_op_bytes}-byte limit"
    return f"""
        with p as ({f"select * from {contacts}" if contacts else contacts_sql(source, columns, email_keys)}),
        a as (
            select customer_id, to_json(customer_id)::varchar as id, {json_object(entries, optional)} as attributes,
                case {attribute_problems} end as attribute_problem, {YIELDS_EMAIL} as yields_email
            from p
        ),
        o as (
            select customer_id, id, attribute_problem, attributes, yields_email,
                '{{"type":"person","identifiers":{{"id":' || id || '}},"action":"identify","attributes":'
                    || attributes || '}}' as op
            from a
        )
        select customer_id as record_key, '{{"attributes":' || attributes || ',"id":' || id || '}}' as payload, op,
            case
                when strlen(customer_id) > {max_identifier_bytes}
                    then {literal(f"identifier longer than {max_identifier_bytes} bytes")}
                when strlen(op) >= {max_op_bytes}
                    then 'operation of ' || strlen(op) || {literal(too_big)}
                else attribute_problem
            end as problem,
            yields_email
        from o
    """


def _too_long(column: str, kind: str, limit: int) -> str:
    """Whether the column's value is past Customer.io's value limit: strings by their UTF-8 bytes, other values
    by their compact JSON (as the stand-in and the API measure them)."""
    if not kind or _is_null(kind):
        return "false"
    if kind.startswith("VARCHAR"):
        return f"coalesce(strlen({ident(column)}) > {limit}, false)"
    return f"coalesce(strlen(to_json({ident(column)})::varchar) > {limit}, false)"
