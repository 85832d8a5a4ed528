"""A client for a Slack-compatible incoming webhook: HTTP and the webhook protocol, nothing about Dagster.

An incoming webhook URL is itself a credential (Slack's embeds the token in its path): this module keeps it
out of every message it produces, showing only ``scheme://host/…`` (see :func:`mask_webhook_url`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from audiences.http import build_session, check_base_url

DEFAULT_TIMEOUT = 10.0  # seconds per attempt; Slack answers in well under one
# Few retries: the caller (a sensor) has a time limit per evaluation, and an alert that is late by minutes is
# worth less than the next run's alert. 429 and 5xx are retried, Retry-After is honoured (audiences.http).
DEFAULT_RETRIES = 2
MAX_DETAIL_CHARS = 100  # Slack's error bodies are short codes: invalid_payload, no_text, no_service...


def mask_webhook_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/secret`` -> ``https://hooks.slack.com/…``: enough to tell which
    webhook, not enough to post to it (no path, no query, no user info)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = parts.port
    except ValueError:  # a malformed port: show none rather than fail while reporting a failure
        port = None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme or '?'}://{netloc}/…"


class AlertDeliveryError(Exception):
    """The webhook did not take the message (after the retries). Its text never contains the URL's secret."""

    def __init__(self, masked_url: str, status: int | None, detail: str) -> None:
        what = f"answered {status} {detail}".rstrip() if status is not None else f"failed: {detail}"
        super().__init__(f"webhook {masked_url} {what}")
        self.masked_url = masked_url
        self.status = status
        self.detail = detail


class WebhookClient:
    """Posts messages to one incoming webhook.

    Any 2xx is success (Slack answers ``200 ok``; compatible services such as Mattermost answer 200 too, some
    204). Redirects are not followed: a webhook does not redirect, and following one would send the message, and
    the request, somewhere the operator did not configure. A time-out is retried like a 5xx: should the webhook
    have taken the message before timing out, the alert arrives twice, which beats not at all.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES) -> None:
        check_base_url(url)  # its error names scheme and host only
        self._url = url
        self.masked_url = mask_webhook_url(url)
        self.timeout = timeout
        self.session = build_session(pool_size=1, retries=retries, user_agent="stripe-audiences-alerts/0.1")

    def __repr__(self) -> str:  # the URL is a secret: never in a repr either
        return f"WebhookClient({self.masked_url})"

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Send one message: ``text`` is what notifications and non-Slack receivers show; ``blocks`` optional.

        Raises :class:`AlertDeliveryError` when the webhook refuses it or cannot be reached.
        """
        payload: dict[str, Any] = {"text": text}
        if blocks:
            payload["blocks"] = blocks
        # requests' exceptions quote the URL (its path: the token). Only the exception's class leaves this
        # method, and the error is raised outside the ``except`` so the original is not even its __context__.
        failure: str | None = None
        try:
            response = self.session.post(self._url, json=payload, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            failure = type(exc).__name__
        if failure is not None:
            raise AlertDeliveryError(self.masked_url, None, failure)
        if not 200 <= response.status_code < 300:
            raise AlertDeliveryError(self.masked_url, response.status_code, self._detail(response))

    def _detail(self, response: requests.Response) -> str:
        """The first line of the error body, short, with the URL and its path blanked should it be echoed."""
        text = response.text.strip().splitlines()[0] if response.text.strip() else response.reason or ""
        path = urlsplit(self._url).path
        for secret in (self._url, path if len(path) > 1 else ""):
            if secret:
                text = text.replace(secret, "…")
        return text[:MAX_DETAIL_CHARS]

    def close(self) -> None:
        self.session.close()
