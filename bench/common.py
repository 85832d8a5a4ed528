"""Shared by the benchmark commands: the endpoints every tool reads, and how each command reports."""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import dataclass
from typing import Any

from audiences.stripe_streams import STREAMS

PAGE_SIZE = 100


@dataclass(frozen=True)
class Endpoint:
    """One list endpoint, read with the same parameters by every tool (the peers list events unfiltered)."""

    name: str  # also the table name
    path: str  # e.g. /v1/charges
    params: dict[str, Any]

    @property
    def resource(self) -> str:
        """The attribute of ``StripeClient.v1`` that lists it, e.g. ``charges``."""
        return self.path.removeprefix("/v1/")


# The same eight endpoints, in the same order, with the same list parameters as our extraction
# (charges with their balance transaction expanded, subscriptions in every status).
ENDPOINTS: tuple[Endpoint, ...] = tuple(
    Endpoint(s.name, s.path, {"limit": PAGE_SIZE, **s.list_params}) for s in STREAMS
)


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports ``ru_maxrss`` in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def emit(result: dict[str, Any]) -> None:
    """The command's result: one JSON line on stdout (the orchestrator reads the last line)."""
    result = {**result, "self_peak_rss_mb": peak_rss_mb()}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
