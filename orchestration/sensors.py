"""Tell operators when a run fails: a run-failure sensor posting to a Slack-compatible incoming webhook.

The nightly schedule runs unattended, so a failed run must reach a person. Configuration is read when the
sensor evaluates, not when the definitions load:

* ``ALERT_WEBHOOK_URL``: the webhook (a secret: never logged, only ``scheme://host/…``). Unset: the sensor
  logs that alerts are off and posts nothing.
* ``DAGSTER_WEBSERVER_URL``: optional, the UI's address, for a link to the run.

Each failed run gets one delivery attempt (with the client's few retries). When the webhook refuses the
message (a 4xx, or a 429/5xx still there after the retries) or cannot be reached, the sensor logs an error in
its tick log, with the URL masked, and returns normally: Dagster advances the sensor's cursor either way, so
raising would only turn the ticks red and bury the run's own failure (which stays in the UI) under alert
errors; and a broken webhook must not hold back the alerts of later runs. A misconfiguration therefore shows
in the sensor's tick logs, not as a failing sensor. An evaluation that outlasts the daemon's sensor time-out
(60 s by default; only a long Retry-After can do that) fails its tick without moving the cursor, so that run
is tried again at the next tick.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import dagster as dg

from audiences.alerts import AlertDeliveryError, WebhookClient
from audiences.http import InsecureBaseUrlError
from orchestration.alert_message import (
    MAX_ERROR_CHARS,
    FailedRun,
    Redactor,
    StepFailure,
    build_message,
    run_url,
    shorten,
    summarize_error,
)

ALERT_WEBHOOK_ENV = "ALERT_WEBHOOK_URL"
WEBSERVER_URL_ENV = "DAGSTER_WEBSERVER_URL"
#: The secrets this project reads from the environment; their values never reach an alert.
SECRET_ENV_VARS = ("STRIPE_API_KEY", "MAILCHIMP_API_KEY", "CUSTOMERIO_API_KEY", "CUSTOMERIO_SITE_ID", ALERT_WEBHOOK_ENV)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of :data:`SECRET_ENV_VARS` that are set, and the webhook URL's path (its token) alone."""
    values = [environ[name].strip() for name in SECRET_ENV_VARS if environ.get(name, "").strip()]
    webhook = environ.get(ALERT_WEBHOOK_ENV, "").strip()
    if webhook:
        values.append(urlsplit(webhook).path)
    return values


def failed_run(context: dg.RunFailureSensorContext, redact: Redactor, webserver_url: str | None) -> FailedRun:
    """What the alert says about the run, read from the run, its failure event and its step failures."""
    run = context.dagster_run
    steps = [
        StepFailure(event.step_key or "?", _step_error(event, redact)) for event in context.get_step_failure_events()
    ]
    failure = context.failure_event
    error = getattr(failure.event_specific_data, "error", None)
    run_error = summarize_error(error, redact) if error is not None else None
    if run_error in {step.error for step in steps}:  # Dagster repeats the first step's error on the run
        run_error = None
    elif run_error is None and not steps and failure.message:  # nothing else explains it: Dagster's words
        run_error = shorten(redact(failure.message.strip().splitlines()[0]), MAX_ERROR_CHARS)
    return FailedRun(
        job_name=run.job_name,
        run_id=run.run_id,
        failed_steps=steps,
        run_error=run_error,
        tags=dict(run.tags),
        run_url=run_url(webserver_url, run.run_id),
    )


def _step_error(event: dg.DagsterEvent, redact: Redactor) -> str:
    error = getattr(event.event_specific_data, "error", None)
    return summarize_error(error, redact) if error is not None else "failed (no error recorded)"


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts failed runs of this code location to ALERT_WEBHOOK_URL (a Slack-compatible webhook).",
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    """Post one message for the failed run; log, never raise, when alerts are off or the webhook refuses."""
    run = context.dagster_run
    webhook = os.environ.get(ALERT_WEBHOOK_ENV, "").strip()
    if not webhook:
        context.log.info(f"Run failure alerts are off ({ALERT_WEBHOOK_ENV} not set): run {run.run_id} not posted")
        return
    redact = Redactor(secret_values(os.environ))
    text = build_message(failed_run(context, redact, os.environ.get(WEBSERVER_URL_ENV)), redact)
    try:
        client = WebhookClient(webhook)
    except InsecureBaseUrlError as exc:  # its message names scheme and host only
        context.log.error(f"Run failure alert of run {run.run_id} not sent: {ALERT_WEBHOOK_ENV} {exc}")
        return
    try:
        client.post(text)
    except AlertDeliveryError as exc:  # its message carries the masked URL only
        context.log.error(f"Run failure alert of run {run.run_id} ({run.job_name}) not delivered: {exc}")
        return
    finally:
        client.close()
    context.log.info(f"Run failure alert of run {run.run_id} ({run.job_name}) posted to {client.masked_url}")
