"""``dagster job execute`` in processes forked from one that has imported the code location once.

A fresh interpreter spends ~11 CPU seconds importing Dagster, dbt and the definitions before a run starts; a test
that kills twenty runs cannot pay that twenty times. The parent here (a process of its own, started like
``sandbox.environment.run_job`` starts the CLI: same cwd, same environment) imports ``orchestration.definitions``
and then, for each run, forks a child that becomes its own process group and calls the ``dagster`` command line's
``main`` with ``job execute -m orchestration.definitions -j JOB``: the CLI's own code path, executor and dbt
subprocess, in a real process that a test can SIGKILL (with its dbt child, as a whole group).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.environment import REPO_ROOT

_PARENT = r"""
import json, os, sys
import orchestration.definitions  # noqa: F401  (the import a run would pay)
from dagster._cli import main

for line in sys.stdin:
    command = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the run: its own process group, output to its log file
        os.setsid()
        fd = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.argv = ["dagster", "job", "execute", "-m", "orchestration.definitions", "-j", command["job"]]
        if command.get("config"):
            sys.argv += ["-c", command["config"]]
        code = 1
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)
"""


@dataclass
class ForkedRun:
    job: str
    pid: int
    log: Path
    started: float
    exit_code: int | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def group_commands(self) -> list[str]:
        """The command lines of the run's process group (the run, its dbt, Dagster's log tails), zombies aside."""
        commands = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == self.pid:  # state, ppid, pgrp
                    commands.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except (OSError, IndexError, ValueError):
                continue
        return commands

    def group_alive(self) -> bool:
        return bool(self.group_commands())


class JobForker:
    """One parent process; :meth:`start` forks one run at a time, :meth:`wait` reaps it."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self._count = 0
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _PARENT],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.current: ForkedRun | None = None

    def start(self, job: str, run_config: str | None = None) -> ForkedRun:
        assert self.current is None, "one run at a time"
        self._count += 1
        log = self.workdir / f"run{self._count:02d}-{job}.log"
        config = None
        if run_config:
            config = str(self.workdir / f"run{self._count:02d}.yaml")
            Path(config).write_text(run_config)
        assert self._proc.stdin and self._proc.stdout
        self._proc.stdin.write(json.dumps({"job": job, "log": str(log), "config": config}) + "\n")
        self._proc.stdin.flush()
        pid = json.loads(self._proc.stdout.readline())["pid"]
        self.current = ForkedRun(job, pid, log, time.monotonic())
        return self.current

    def kill(self) -> None:
        """SIGKILL the current run's whole process group (the run and its dbt), as a machine dying would."""
        assert self.current is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.current.pid, signal.SIGKILL)

    def wait(self, timeout: float = 600.0) -> ForkedRun:
        """Reap the current run; then wait until no process of its group is left."""
        assert self.current is not None and self._proc.stdout
        run = self.current
        line = self._proc.stdout.readline()
        run.exit_code = json.loads(line)["status"]
        deadline = time.monotonic() + timeout
        while run.group_alive():
            assert time.monotonic() < deadline, f"processes of run {run.pid} outlived it"
            time.sleep(0.05)
        self.current = None
        return run

    def close(self) -> None:
        if self.current is not None:
            self.kill()
            self.wait()
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
