"""The outcome of one push to a destination, as asset metadata and a `sync.runs` row."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from audiences.sync_state import Rejection


class CallCounts(Protocol):
    """What a destination client counts: calls made, and calls repeated after transient failures."""

    @property
    def api_calls(self) -> int: ...

    @property
    def retried(self) -> int: ...


@dataclass
class SyncResult:
    destination: str
    dry_run: bool = False
    considered: int = 0
    unchanged: int = 0
    departed: int = 0  # records no profile has any more, whose segments are withdrawn
    still_rejected: int = 0
    too_old: int = 0  # events older than the destination acts on, not sent
    created: int = 0
    updated: int = 0
    sent: int = 0
    api_calls: int = 0
    retried: int = 0  # requests repeated after a 429, a 5xx, a time-out or a reset
    seconds: float = 0.0
    send_seconds: float = 0.0  # of which talking to the destination (the rest: planning, recording state)
    rejections: list[Rejection] = field(default_factory=list)
    planned_sample: list[dict[str, Any]] = field(default_factory=list)
    planned: dict[str, int] = field(default_factory=dict)  # operations by kind, e.g. member_creates
    skipped_reason: str | None = None

    def finish(self, *, started: float, client: CallCounts, sent: int, rejections: list[Rejection]) -> SyncResult:
        self.sent = sent
        self.rejections = rejections
        self.api_calls = client.api_calls
        self.retried = client.retried
        self.seconds = time.monotonic() - started
        return self

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def counts(self) -> dict[str, int]:
        return {
            "considered": self.considered,
            "unchanged": self.unchanged,
            "departed": self.departed,
            "still_rejected": self.still_rejected,
            "too_old": self.too_old,
            "sent": self.sent,
            "created": self.created,
            "updated": self.updated,
            "rejected": self.rejected,
            "api_calls": self.api_calls,
            "retried": self.retried,
        }
