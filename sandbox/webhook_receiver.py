"""A local stand-in for a Slack incoming webhook, over real HTTP on 127.0.0.1, as strict as Slack.

One secret path, ``/services/<team>/<bot>/<token>``, takes ``POST`` with a JSON object; everything else is
refused with Slack's plain-text error codes:

* another path: ``404 no_service`` (Slack's answer to a revoked or mistyped webhook);
* another method on the path: ``405 invalid_method`` (Slack's exact answer is undocumented; strict side);
* a body that is not JSON, not an object, or not sent as ``application/json``: ``400 invalid_payload``;
* neither a non-empty ``text`` nor ``blocks``: ``400 no_text``; ``text`` not a string: ``400 invalid_payload``;
* ``blocks`` not a list of objects with a ``type``: ``400 invalid_blocks``; ``text`` over 40,000
  characters: ``400 msg_too_long`` (Slack truncates; the stand-in refuses, so a cap that fails shows).

Success is ``200 ok`` as ``text/plain``. Accepted payloads are kept in :attr:`WebhookReceiver.messages`;
every request, refused ones included, in :attr:`requests`. Faults (429 with Retry-After...) are injected
with :meth:`inject` as for the other stand-ins.
"""

from __future__ import annotations

import threading
from typing import Any

from sandbox.http_server import Request, Response, StandInServer

MAX_TEXT_CHARS = 40_000
DEFAULT_TOKEN = "standinWebhookToken0123456789"


def _refuse(status: int, code: str) -> Response:
    return Response(status, code.encode(), content_type="text/plain")


class WebhookReceiver(StandInServer):
    """A Slack incoming webhook: ``webhook_url`` is what ``ALERT_WEBHOOK_URL`` would hold."""

    name = "webhook-receiver"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        team: str = "T000STANDIN",
        bot: str = "B000STANDIN",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency)
        self.token = token
        self.path = f"/services/{team}/{bot}/{token}"
        self.messages: list[dict[str, Any]] = []
        self._messages_lock = threading.Lock()
        self.route("POST", self.path, self._post)

    @property
    def webhook_url(self) -> str:
        return self.url + self.path

    @property
    def texts(self) -> list[str]:
        with self._messages_lock:
            return [str(m.get("text", "")) for m in self.messages]

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        return _refuse(405, "invalid_method") if method_not_allowed else _refuse(404, "no_service")

    def internal_error(self, exc: Exception) -> Response:
        return _refuse(500, "internal_error")

    def _post(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _refuse(400, "invalid_payload")
        try:
            payload = request.json()
        except ValueError:
            return _refuse(400, "invalid_payload")
        if not isinstance(payload, dict):
            return _refuse(400, "invalid_payload")
        text, blocks = payload.get("text"), payload.get("blocks")
        if text is not None and not isinstance(text, str):
            return _refuse(400, "invalid_payload")
        if blocks is not None and not (
            isinstance(blocks, list) and blocks and all(isinstance(b, dict) and b.get("type") for b in blocks)
        ):
            return _refuse(400, "invalid_blocks")
        if not (text and text.strip()) and not blocks:
            return _refuse(400, "no_text")
        if text and len(text) > MAX_TEXT_CHARS:
            return _refuse(400, "msg_too_long")
        with self._messages_lock:
            self.messages.append(payload)
        return Response(200, b"ok", content_type="text/plain")
