"""The run-failure alert text: contents, redaction before every cut, and the caps."""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.alert_message import (
    MAX_ERROR_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_STEPS,
    FailedRun,
    Redactor,
    StepFailure,
    build_message,
    run_url,
    summarize_error,
)
from orchestration.sensors import secret_values

MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"


@dataclass(frozen=True)
class Err:
    """Shaped like Dagster's SerializableErrorInfo (message as traceback.format_exception_only writes it)."""

    message: str
    cls_name: str | None
    cause: Err | None = None


def test_the_message_names_job_run_link_launcher_steps_and_tags() -> None:
    run = FailedRun(
        job_name="nightly_sync",
        run_id="abc-123",
        failed_steps=[StepFailure("stripe_extract", "InvalidRequestError: boom"), StepFailure("stripe_extract", "x")],
        tags={"dagster/schedule_name": "nightly_sync_schedule", ".dagster/grpc_info": "{...}", "team": "data"},
        run_url=run_url("http://127.0.0.1:3000/", "abc-123"),
    )

    assert build_message(run, Redactor()) == (
        "Dagster run failed: nightly_sync\n"
        "Run: abc-123\n"
        "Open: http://127.0.0.1:3000/runs/abc-123\n"
        "Launched by: schedule nightly_sync_schedule\n"
        "Failed steps (1):\n"
        "• stripe_extract: InvalidRequestError: boom\n"
        "Tags: team=data"
    )


def test_without_a_webserver_url_there_is_no_link_and_a_run_error_is_shown() -> None:
    run = FailedRun("extract_stripe", "r1", run_error="DagsterRunCanceled", run_url=run_url("  ", "r1"))

    text = build_message(run, Redactor())

    assert "Open:" not in text and "Failed steps" not in text
    assert "Launched by: hand (no schedule, sensor or backfill)" in text
    assert text.endswith("Run error: DagsterRunCanceled")


def test_the_summary_unwraps_dagster_and_keeps_class_and_first_line() -> None:
    message = "stripe._error.InvalidRequestError: Request req_1: No such customer\nmore detail\n"
    cause = Err(message, "InvalidRequestError")
    wrapped = Err('dagster._core.errors.DagsterExecutionStepExecutionError: Error in op "x":\n', "DagsterX", cause)

    assert summarize_error(wrapped, Redactor()) == "InvalidRequestError: Request req_1: No such customer"
    assert summarize_error(Err("KeyError\n", "KeyError"), Redactor()) == "KeyError"
    assert summarize_error(Err("", None), Redactor()) == "Error"


def test_redaction_blanks_secrets_longest_first_credential_patterns_and_emails() -> None:
    redact = Redactor(["abc", "secret-token-1", "secret-token-12345"])

    text = redact("secret-token-12345 / abc / sk_live_51Hxyz / hooks.slack.com/services/T/B/x / Jane.Doe@Example.com")

    assert text == "*** / abc / *** / *** / J***@Example.com"  # "abc": too short to be a secret


def test_a_secret_at_the_cut_leaves_no_prefix_behind() -> None:
    error = Err(f"RuntimeError: {'x' * (MAX_ERROR_CHARS - 20)} {MAILCHIMP_KEY}\n", "RuntimeError")

    summary = summarize_error(error, Redactor([MAILCHIMP_KEY]))

    assert len(summary) <= MAX_ERROR_CHARS
    assert "0123" not in summary


def test_tags_are_redacted_before_they_are_cut() -> None:
    run = FailedRun("j", "r", tags={"note": "y" * 110 + MAILCHIMP_KEY, "owner": "ops@example.org"})

    text = build_message(run, Redactor([MAILCHIMP_KEY]))

    assert "0123" not in text and "owner=o***@example.org" in text


def test_many_steps_and_long_errors_stay_under_the_cap() -> None:
    steps = [StepFailure(f"step_{i}", "E: " + "z" * 500) for i in range(MAX_STEPS + 5)]
    tags = {f"tag{i}": "v" * 200 for i in range(40)}

    text = build_message(FailedRun("j", "r", failed_steps=steps, tags=tags), Redactor())

    assert len(text) <= MAX_MESSAGE_CHARS
    assert f"Failed steps ({MAX_STEPS + 5}):" in text and "• … and 5 more" in text


def test_secret_values_include_the_webhook_token_path() -> None:
    environ = {
        "STRIPE_API_KEY": "sk_test_1234",
        "MAILCHIMP_API_KEY": " ",
        "ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/tok",
        "UNRELATED": "value",
    }

    assert secret_values(environ) == [
        "sk_test_1234",
        "https://hooks.slack.com/services/T0/B0/tok",
        "/services/T0/B0/tok",
    ]
