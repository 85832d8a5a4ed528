"""A throwaway PostgreSQL server on 127.0.0.1 for the PostgreSQL dbt target's tests.

The server binaries come from the machine (Debian's ``postgresql`` package: ``make postgres`` installs it);
the cluster lives in a temporary folder and is stopped and removed afterwards. PostgreSQL refuses to run as
root, so under root the cluster belongs to the ``postgres`` system user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "audiences"
DBNAME = "audiences"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str

    def dbt_env(self) -> dict[str, str]:
        """The environment that points the dbt profile's ``postgres`` target at this server."""
        return {
            "DBT_TARGET": "postgres",
            "DBT_POSTGRES_HOST": self.host,
            "DBT_POSTGRES_PORT": str(self.port),
            "DBT_POSTGRES_USER": self.user,
            "DBT_POSTGRES_DBNAME": self.dbname,
            "DBT_POSTGRES_SSLMODE": "disable",
        }

    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"


def server_binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bindir = server_binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: run `make postgres` (Debian's postgresql package)")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="audiences-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if as_root:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()

    def run(*args: str) -> None:
        proc = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c TimeZone=UTC"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start")
        try:
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DBNAME)
            yield PostgresServer("127.0.0.1", port, USER, DBNAME)
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
