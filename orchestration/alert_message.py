"""The text of a run-failure alert: what failed and where to look, with nothing secret or personal in it.

Pure functions over plain values (no Dagster context), so the wording, the redaction and the caps are
unit-tested without a run. The sensor (:mod:`orchestration.sensors`) gathers the values.

Error messages are the risky part: an API error can echo an email address, a key, a request. Every piece of
text is redacted before it is shortened (so a cut cannot leave half a secret that no longer matches) and the
whole message is redacted again before it is capped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from audiences.redact import mask_emails

MAX_MESSAGE_CHARS = 3000  # Slack folds longer texts behind "Show more"; an alert is read on a phone
MAX_ERROR_CHARS = 240  # per failed step: the class and the first line of the message
MAX_STEPS = 8  # 8 steps of long errors leave room under MAX_MESSAGE_CHARS for the "and N more" line
MAX_TAGS = 20
MAX_TAG_CHARS = 120
MIN_SECRET_CHARS = 4  # shorter values are not secrets worth the damage of blanking them everywhere
REDACTED = "***"
# Credentials that may show up without being one of our env vars (another key pasted into a config, a webhook
# echoed by a library): Stripe secret and restricted keys, Slack webhook paths.
_CREDENTIAL_PATTERNS = re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9_]+|hooks\.slack\.com/\S+")
# Dagster's wrappers around the user's exception ("Error occurred while executing op ..."): the cause is news.
_WRAPPER_PREFIX = "Dagster"
# Where a run came from, by the tag Dagster sets: shown as "Launched by" instead of among the tags.
LAUNCHERS = {
    "dagster/schedule_name": "schedule",
    "dagster/sensor_name": "sensor",
    "dagster/backfill": "backfill",
}


class Redactor:
    """Blanks known secret values and credential-looking strings, then masks email addresses."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}
        self._secrets = sorted(values, key=len, reverse=True)  # a secret containing another goes first

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = _CREDENTIAL_PATTERNS.sub(REDACTED, text)
        return mask_emails(text)


class ErrorInfo(Protocol):
    """What the alert reads of Dagster's ``SerializableErrorInfo`` (structural: no private import)."""

    @property
    def message(self) -> str: ...

    @property
    def cls_name(self) -> str | None: ...

    @property
    def cause(self) -> ErrorInfo | None: ...


@dataclass(frozen=True)
class StepFailure:
    step_key: str
    error: str  # already summarized and redacted: see summarize_error


@dataclass(frozen=True)
class FailedRun:
    job_name: str
    run_id: str
    failed_steps: Sequence[StepFailure] = ()
    run_error: str | None = None  # the run-level failure, when no step explains it (a crashed run worker...)
    tags: Mapping[str, str] = field(default_factory=dict)
    run_url: str | None = None


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize_error(error: ErrorInfo, redact: Redactor) -> str:
    """``ExceptionClass: first line of its message``, redacted then shortened; Dagster's wrappers unwrapped."""
    while (error.cls_name or "").startswith(_WRAPPER_PREFIX) and error.cause is not None:
        error = error.cause
    cls_name = error.cls_name or "Error"
    lines = [line.strip() for line in (error.message or "").splitlines() if line.strip()]
    first = lines[0] if lines else ""
    head, sep, rest = first.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == cls_name:  # traceback's "module.Class: message"
        first = rest
    elif first.rsplit(".", 1)[-1] == cls_name:  # an exception without a message
        first = ""
    summary = f"{cls_name}: {redact(first)}" if first else cls_name
    return shorten(summary, MAX_ERROR_CHARS)


def run_url(webserver_url: str | None, run_id: str) -> str | None:
    """The run's page in the Dagster UI, when the UI's address is known."""
    if not webserver_url or not webserver_url.strip():
        return None
    return f"{webserver_url.strip().rstrip('/')}/runs/{run_id}"


def build_message(run: FailedRun, redact: Redactor) -> str:
    """The alert text: job, run, link, launcher, failed steps with their errors, then the tags (cut first)."""
    lines = [f"Dagster run failed: {run.job_name}", f"Run: {run.run_id}"]
    if run.run_url:
        lines.append(f"Open: {run.run_url}")
    launchers = [f"{kind} {run.tags[tag]}" for tag, kind in LAUNCHERS.items() if run.tags.get(tag)]
    lines.append(f"Launched by: {', '.join(launchers) if launchers else 'hand (no schedule, sensor or backfill)'}")
    steps = _unique_steps(run.failed_steps)
    if steps:
        lines.append(f"Failed steps ({len(steps)}):")
        lines += [f"• {step.step_key}: {shorten(step.error, MAX_ERROR_CHARS)}" for step in steps[:MAX_STEPS]]
        if len(steps) > MAX_STEPS:
            lines.append(f"• … and {len(steps) - MAX_STEPS} more")
    if run.run_error:
        lines.append(f"Run error: {run.run_error}")
    tags = [
        shorten(redact(f"{key}={value}"), MAX_TAG_CHARS)  # redact, then cut
        for key, value in sorted(run.tags.items())
        if not key.startswith(".") and key not in LAUNCHERS  # ".dagster/..." tags are Dagster's internals
    ]
    if tags:
        more = f" (+{len(tags) - MAX_TAGS} more)" if len(tags) > MAX_TAGS else ""
        lines.append(f"Tags: {', '.join(tags[:MAX_TAGS])}{more}")
    return shorten(redact("\n".join(lines)), MAX_MESSAGE_CHARS)


def _unique_steps(steps: Sequence[StepFailure]) -> list[StepFailure]:
    seen: dict[str, StepFailure] = {}
    for step in steps:
        seen.setdefault(step.step_key, step)
    return list(seen.values())
