"""The outcome of one push to a destination, as asset metadata and a `sync.runs` row."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from audiences.sync_state import Rejection


@dataclass
class SyncResult:
    destination: str
    dry_run: bool = False
    considered: int = 0
    unchanged: int = 0
    still_rejected: int = 0
    created: int = 0
    updated: int = 0
    sent: int = 0
    api_calls: int = 0
    seconds: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    planned_sample: list[dict[str, Any]] = field(default_factory=list)
    skipped_reason: str | None = None

    def finish(self, *, started: float, api_calls: int, sent: int, rejections: list[Rejection]) -> SyncResult:
        self.sent = sent
        self.rejections = rejections
        self.api_calls = api_calls
        self.seconds = time.monotonic() - started
        return self

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def counts(self) -> dict[str, int]:
        return {
            "considered": self.considered,
            "unchanged": self.unchanged,
            "still_rejected": self.still_rejected,
            "sent": self.sent,
            "created": self.created,
            "updated": self.updated,
            "rejected": self.rejected,
            "api_calls": self.api_calls,
        }
