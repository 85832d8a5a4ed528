from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pytest
import requests
import stripe

from audiences.alerts import AlertDeliveryError, WebhookClient
from audiences.customerio_client import CustomerIOClient, CustomerIOError
from audiences.http import InsecureBaseUrlError, check_base_url
from audiences.mailchimp_client import MailchimpClient, MailchimpError
from audiences.redact import mask_emails
from audiences.stripe_reader import make_client
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


# -- TLS, plain http, redirects ------------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and a body echoing the request's credentials (as a careless
    proxy or API might), or with a redirect to ``location``."""

    status = 200
    location: str | None = None

    def _answer(self) -> None:
        if self.location:
            self.send_response(307)
            self.send_header("Location", self.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"title": "Denied", "detail": f"bad credentials {self.headers.get('Authorization')}"})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A TLS context with a self-signed certificate for 127.0.0.1, and the certificate's file."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert


@pytest.mark.parametrize("bundle", ["", "/nonexistent/ca.pem"])
def test_certificates_are_verified_whatever_the_environment_says(
    self_signed: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch, bundle: str
) -> None:
    """An untrusted certificate is refused by every client, with requests' CA variables empty or odd; the
    same server is reached once its certificate is trusted, so the refusals are the verification's."""
    context, cert = self_signed
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("CURL_CA_BUNDLE", bundle)
    with serving(_Echo, context) as base:
        mailchimp = MailchimpClient("k-us21", api_base=base + "/3.0", retries=0)
        with pytest.raises((requests.exceptions.SSLError, OSError)):
            mailchimp.merge_fields("list")
        customerio = CustomerIOClient("site", "key", base_url=base, retries=0, requests_per_second=None)
        with pytest.raises((requests.exceptions.SSLError, OSError)):
            customerio.send_batch([b"{}"])
        with pytest.raises((AlertDeliveryError, OSError)):
            WebhookClient(base + "/hook", retries=0).post("hello")
        stripe_client = make_client("sk_test_x", base, max_network_retries=0)
        with pytest.raises(stripe.APIConnectionError, match=r"(?i)certificate|ssl"):
            stripe_client.raw_request("get", "/v1/customers", limit=1)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trusted: the same call goes through
        assert MailchimpClient("k-us21", api_base=base + "/3.0", retries=0).request("GET", "/ping") == {
            "title": "Denied",
            "detail": "bad credentials Basic " + base64.b64encode(b"stripe-audiences:k-us21").decode(),
        }


def test_stripe_client_takes_plain_http_only_on_loopback() -> None:
    with pytest.raises(InsecureBaseUrlError):
        make_client("sk_test_x", "http://api.stripe.com")
    with pytest.raises(InsecureBaseUrlError):
        make_client("sk_test_x", "http://10.1.2.3:12111")
    assert make_client("sk_test_x", "http://127.0.0.1:12111/") is not None
    assert make_client("sk_test_x", "https://api.stripe.com") is not None


def test_a_redirect_is_not_followed() -> None:
    class Redirect(_Echo):
        location = "http://203.0.113.9/3.0/lists"  # plain http, off this machine

    with serving(Redirect) as base:
        client = MailchimpClient("k-us21", api_base=base + "/3.0", retries=0, timeout=2.0)
        with pytest.raises(requests.exceptions.TooManyRedirects):
            client.request("POST", "/lists/x", json={"members": []})


def test_client_errors_never_carry_the_key() -> None:
    class Refusing(_Echo):
        status = 401

    key, site, track_key = "5ecret0key0mailchimp-us21", "site-9876", "5ecret0track0key"
    with serving(Refusing) as base:
        with pytest.raises(MailchimpError) as mc:
            MailchimpClient(key, api_base=base + "/3.0", retries=0).get_audience("list")
        with pytest.raises(CustomerIOError) as cio:
            CustomerIOClient(site, track_key, base_url=base, retries=0, requests_per_second=None).send_batch([b"{}"])
    texts = [str(mc.value), mc.value.reason, repr(mc.value), str(cio.value), cio.value.detail]
    assert all("bad credentials Basic ***" in t for t in texts)  # the echo is there, masked
    secrets = [key, "5ecret0key0mailchimp", track_key, base64.b64encode(f"{site}:{track_key}".encode()).decode()]
    secrets.append(base64.b64encode(f"stripe-audiences:{key}".encode()).decode())
    assert not [s for s in secrets for t in texts if s in t]


def test_emails_are_masked_whatever_their_characters() -> None:
    text = "refused zoë@bücher.de, 用户@例子.广告 and <Jane.Doe@Example.com>; o'neil@x.io."
    assert mask_emails(text) == "refused z***@bücher.de, 用***@例子.广告 and <J***@Example.com>; o***@x.io."
    # quoted, as Stripe's errors print an id: masked inside the quotes
    assert mask_emails("No such customer: 'jane@example.com'") == "No such customer: 'j***@example.com'"


# -- the warehouse file, its log and its folder ---------------------------------------------------------


def test_the_warehouse_its_wal_and_its_new_folders_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # a usual umask: files 0644, folders 0755
    try:
        path = tmp_path / "new" / "deeper" / "warehouse.duckdb"
        with connect(path) as con:
            con.execute("create table t as select 'jane@example.com' as email")
            con.execute("insert into t values ('joe@example.com')")
            wal = path.with_name(path.name + ".wal")
            assert wal.exists()  # pending writes, personal data among them
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
            with connect(path) as again:  # a nested connection (same process) leaves the setting on
                again.execute("select 1")
            con.execute("insert into t values ('ann@example.com')")
            assert os.umask(0o077) == 0o077  # still owner-only while the first one is open
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "new" / "deeper").stat().st_mode) == 0o700
        assert os.umask(0o022) == 0o022  # restored once the last connection closed
    finally:
        os.umask(previous)
