"""Shared by the benchmark commands: the endpoints every tool reads, and how each command reports."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
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
        """Its path under ``/v1/``, e.g. ``charges`` or ``checkout/sessions``: the attributes of ``StripeClient.v1``
        that list it (``client.v1.checkout.sessions``)."""
        return self.path.removeprefix("/v1/")


# The same endpoints, in the same order, with the same list parameters as our extraction
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


class ServerProcess:
    """A stand-in in its own process: started and read until its JSON ready line, stopped by closing its stdin
    (then SIGTERM); ``cpu_seconds`` is what it has used so far."""

    def __init__(self, argv: list[str], log_path: Path, cwd: Path) -> None:
        self.argv, self.log_path, self.cwd = argv, log_path, cwd
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        with open(self.log_path, "w") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the stand-in did not start: {self.log_path.read_text()[-2000:]}")
        self.info = json.loads(line)
        return self.info

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """The stand-in's peak resident set size so far (``VmHWM`` of its ``/proc`` status), in MB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
        return 0.0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _top_headings(lines: list[str]) -> list[int]:
    """Indexes of the ``# `` headings of a Markdown text, outside fenced code blocks."""
    out, fenced = [], False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            out.append(i)
    return out


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section of ``path`` that starts at the heading line ``heading`` (up to the next top heading)
    with ``text``, keeping the other sections (``BENCHMARKS.md`` holds one per benchmark); append it if absent."""
    lines = path.read_text().splitlines() if path.exists() else []
    new = text.rstrip("\n").splitlines()
    headings = _top_headings(lines)
    starts = [i for i in headings if lines[i] == heading]
    if starts:
        start = starts[0]
        end = next((i for i in headings if i > start), len(lines))
        lines[start:end] = new + ([""] if end < len(lines) else [])
    else:
        lines += ([""] if lines else []) + new
    path.write_text("\n".join(lines) + "\n")
