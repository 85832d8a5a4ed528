from __future__ import annotations

import datetime as dt
import json
import stat

import pyarrow as pa
import pytest

from audiences.http import InsecureBaseUrlError, check_base_url
from audiences.redact import mask_emails
from audiences.stripe_streams import CUSTOMERS
from audiences.warehouse import connect, upsert_arrow


@pytest.mark.parametrize("url", ["https://api.stripe.com", "http://127.0.0.1:8000", "http://localhost:1/3.0"])
def test_https_anywhere_and_http_only_on_loopback(url: str) -> None:
    assert check_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://api.stripe.com", "http://10.0.0.5", "ftp://127.0.0.1"])
def test_plain_http_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(InsecureBaseUrlError):
        check_base_url(url)


def test_emails_are_masked() -> None:
    assert mask_emails("400: Jane.Doe@Example.com looks fake") == "400: J***@Example.com looks fake"


def test_upsert_keeps_one_row_per_id_and_leaves_unchanged_rows_alone(tmp_path) -> None:
    path = tmp_path / "w" / "warehouse.duckdb"
    with connect(path) as con:
        con.execute("create schema stripe")
        con.execute(CUSTOMERS.ddl())
        objects = [{"id": "cus_1", "email": "a@x.io", "created": 1}, {"id": "cus_2", "email": "b@x.io", "created": 2}]
        assert (
            upsert_arrow(con, CUSTOMERS.table, CUSTOMERS.to_arrow(objects, 100.0), select_sql=CUSTOMERS.select_sql())
            == 2
        )
        again = [*objects, {"id": "cus_1", "email": "new@x.io", "created": 1}]  # a repeat inside one batch: last wins
        changed = upsert_arrow(
            con, CUSTOMERS.table, CUSTOMERS.to_arrow(again, 200.0), select_sql=CUSTOMERS.select_sql()
        )
        assert changed == 1
        rows = con.execute("select id, email, epoch(_extracted_at) from stripe.customers order by id").fetchall()
        assert rows == [("cus_1", "new@x.io", 200.0), ("cus_2", "b@x.io", 100.0)]
        assert upsert_arrow(con, CUSTOMERS.table, pa.Table.from_pylist([], schema=CUSTOMERS.arrow_schema)) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_request_bodies_are_compact_json_whatever_the_values() -> None:
    from audiences.http import json_bytes

    body = {"name": "Zoë", "ltv": 12.5, "n": 3, "tags": ["a"], "when": dt.date(2026, 1, 2)}
    assert json.loads(json_bytes(body)) == {**body, "when": "2026-01-02"}
    assert b" " not in json_bytes({"a": [1, 2]})
    assert json.loads(json_bytes({"big": 10**30})) == {"big": 10**30}  # past 64 bits: the stdlib's way
    assert json.loads(json_bytes({"x": float("nan")})) == {"x": None}  # not JSON: null
