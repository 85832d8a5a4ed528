"""A failed run reaches the operators: the real run-failure sensor posts over HTTP to a local Slack stand-in.

The failed run is a real one: ``dagster job execute -j extract_stripe`` as an operator runs it, against the
Stripe stand-in, which refuses the customer listing with an error that echoes an email address and the API key
(the worst an API can do). The sensor is then evaluated against that run's instance, as the daemon would.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from audiences.alerts import AlertDeliveryError, WebhookClient
from orchestration.sensors import run_failure_alert
from sandbox.environment import CIO_KEY, CIO_SITE_ID, MAILCHIMP_KEY, STRIPE_KEY, run_job, running_stand_ins
from sandbox.http_server import Fault
from sandbox.stripe_account import generate_account
from sandbox.webhook_receiver import WebhookReceiver

EMAIL = "jane.doe@example.com"
OWNER_EMAIL = "ops.lead@example.org"
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
WEBSERVER = "http://127.0.0.1:3000"
SECRETS = {
    "STRIPE_API_KEY": STRIPE_KEY,
    "MAILCHIMP_API_KEY": MAILCHIMP_KEY,
    "CUSTOMERIO_API_KEY": CIO_KEY,
    "CUSTOMERIO_SITE_ID": CIO_SITE_ID,
}


@dataclass(frozen=True)
class FailedRun:
    dagster_home: Path
    run_id: str


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def webhook(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> WebhookReceiver:
    """The receiver, empty, and the environment of a production sensor pointed at it."""
    receiver.clear_requests()
    receiver.messages.clear()
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.webhook_url)
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", WEBSERVER)
    return receiver


@pytest.fixture(scope="module")
def failed_run(dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> FailedRun:
    workdir = tmp_path_factory.mktemp("failed_run")
    with running_stand_ins(generate_account(seed=7, customers=5)) as stand_ins:
        error = {
            "type": "invalid_request_error",
            "message": f"No such customer: '{EMAIL}' (request made with key {STRIPE_KEY})",
        }
        stand_ins.stripe.inject(Fault(r"^/v1/customers$", status=400, times=100, body={"error": error}))
        env = stand_ins.env(workdir / "warehouse.duckdb", workdir / "dagster_home")
        proc = run_job("extract_stripe", env)
    assert proc.returncode != 0, proc.stdout[-3000:]
    home = Path(env["DAGSTER_HOME"])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs(limit=1)
        assert run.status == dg.DagsterRunStatus.FAILURE
        # What a scheduled run carries, plus a tag holding an email address, to prove tags are masked too.
        instance.add_run_tags(run.run_id, {"dagster/schedule_name": "nightly_sync_schedule", "owner": OWNER_EMAIL})
    return FailedRun(home, run.run_id)


def evaluate(failed: FailedRun) -> object:
    """Evaluate the sensor for the failed run, with the run and failure event read back from its instance."""
    with dg.DagsterInstance.from_config(str(failed.dagster_home)) as instance:
        run = instance.get_run_by_id(failed.run_id)
        assert run is not None
        [record] = instance.get_records_for_run(failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=record.event_log_entry.dagster_event,  # type: ignore[arg-type]
        )
        return run_failure_alert(context)


def assert_clean(text: str, webhook: WebhookReceiver) -> None:
    for secret in [*SECRETS.values(), webhook.webhook_url, webhook.token]:
        assert secret not in text
    assert EMAIL_RE.findall(text) == []


def test_a_failed_run_posts_one_alert_naming_job_run_and_step_without_secrets_or_emails(
    failed_run: FailedRun, webhook: WebhookReceiver, capfd: pytest.CaptureFixture[str]
) -> None:
    assert evaluate(failed_run) is None

    assert len(webhook.requests) == 1
    [text] = webhook.texts
    assert "Dagster run failed: extract_stripe" in text
    assert failed_run.run_id in text
    assert f"Open: {WEBSERVER}/runs/{failed_run.run_id}" in text
    assert "Launched by: schedule nightly_sync_schedule" in text
    assert re.search(r"• stripe_extract: InvalidRequestError: .*No such customer: 'j\*\*\*@example\.com'", text)
    assert "request made with key ***" in text  # the key the error echoed is blanked, the rest kept
    assert "owner=o***@example.org" in text
    assert "Run error" not in text  # Dagster repeats the step's error on the run: said once
    assert_clean(text, webhook)
    logs = capfd.readouterr().err
    assert "posted to http://127.0.0.1:" in logs
    assert webhook.token not in logs


def test_without_a_webhook_url_alerts_are_off_and_nothing_is_posted(
    failed_run: FailedRun, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ALERT_WEBHOOK_URL")

    assert evaluate(failed_run) is None

    assert webhook.requests == []
    assert "Run failure alerts are off (ALERT_WEBHOOK_URL not set)" in capfd.readouterr().err


def test_a_rate_limited_webhook_is_retried_after_retry_after_and_gets_the_alert_once(
    failed_run: FailedRun, webhook: WebhookReceiver
) -> None:
    webhook.inject(Fault(re.escape(webhook.path), status=429, headers={"Retry-After": "1"}, raw=b"rate_limited"))

    started = time.monotonic()
    evaluate(failed_run)

    assert time.monotonic() - started >= 0.9  # it waited as told
    assert len(webhook.requests) == 2
    assert len(webhook.messages) == 1
    assert failed_run.run_id in webhook.texts[0]


def test_a_refused_webhook_is_logged_with_the_url_masked_and_does_not_raise(
    failed_run: FailedRun, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    revoked = f"{webhook.url}/services/T000STANDIN/B000STANDIN/revokedToken0123456789"
    monkeypatch.setenv("ALERT_WEBHOOK_URL", revoked)

    assert evaluate(failed_run) is None

    assert len(webhook.requests) == 1 and webhook.messages == []  # a 404 is not retried
    logs = capfd.readouterr().err
    assert f"not delivered: webhook {webhook.url}/… answered 404 no_service" in logs
    assert "revokedToken0123456789" not in logs and "/services/" not in logs

    monkeypatch.setenv("ALERT_WEBHOOK_URL", "http://hooks.example.com/services/T/B/plainHttpToken0123")
    assert evaluate(failed_run) is None  # refused before any request: plain http off this machine
    logs = capfd.readouterr().err
    assert "ALERT_WEBHOOK_URL refusing base URL http://hooks.example.com" in logs
    assert "plainHttpToken0123" not in logs


def test_an_unreachable_webhook_raises_a_delivery_error_without_the_token() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = WebhookClient(f"http://127.0.0.1:{port}/services/T/B/unreachableToken0123", retries=0)

    with pytest.raises(AlertDeliveryError) as raised:
        client.post("hello")

    assert str(raised.value) == f"webhook http://127.0.0.1:{port}/… failed: ConnectionError"
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert "unreachableToken0123" not in repr(client)


@dg.op
def refund_customer() -> None:
    raise RuntimeError(f"refund refused for {EMAIL} with key {STRIPE_KEY}\nsecond line with {MAILCHIMP_KEY}")


@dg.job
def refunds() -> None:
    refund_customer()


def test_each_failed_run_is_alerted_once_through_the_sensor_tick_even_when_the_webhook_refused_it(
    webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon's path (cursor, run matching): a refused alert is not tried again at the next tick."""
    with dg.DagsterInstance.ephemeral() as instance:

        def tick(cursor: str | None) -> str | None:
            result = run_failure_alert.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
            assert all(reaction.error is None for reaction in result.dagster_run_reactions)
            return result.cursor

        cursor = tick(None)  # the first tick only sets the cursor
        monkeypatch.setenv("ALERT_WEBHOOK_URL", f"{webhook.url}/services/T/B/wrong")
        refused = refunds.execute_in_process(instance=instance, raise_on_error=False)
        cursor = tick(cursor)
        monkeypatch.setenv("ALERT_WEBHOOK_URL", webhook.webhook_url)
        cursor = tick(cursor)
        assert webhook.messages == [] and len(webhook.requests) == 1  # refused once, not re-sent

        posted = refunds.execute_in_process(instance=instance, raise_on_error=False)
        cursor = tick(cursor)
        tick(cursor)

    assert not refused.success and not posted.success
    [text] = webhook.texts
    assert posted.run_id in text and refused.run_id not in text
    assert "• refund_customer: RuntimeError: refund refused for j***@example.com with key ***" in text
    assert "second line" not in text
    assert "Launched by: hand" in text
    assert_clean(text, webhook)
