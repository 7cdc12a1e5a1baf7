"""A throwaway PostgreSQL cluster from Debian's packages, on a free loopback port."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from devenv import ports, procs

SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; Debian's package creates this unprivileged user.
SERVICE_USER = "postgres"

# Speed over durability: the cluster is thrown away after the run. max_connections leaves room
# for River clients, the operator's pool and tests running side by side. wal_level stays
# `replica` (the default): pg_current_wal_lsn() works on any primary.
SETTINGS: dict[str, str] = {
    "listen_addresses": ports.LOOPBACK,
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "wal_level": "replica",
    "timezone": "UTC",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %d ",
}


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised or started."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))


def find_bin_dir() -> Path:
    """The bin folder of the newest PostgreSQL that Debian's packages installed."""
    override = os.environ.get("LIFEGUARD_PG_BIN")
    if override:
        return Path(override)
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=_version_key)
    if not candidates:
        raise PostgresError(
            "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/postgres "
            "(run `make postgres` or `apt-get install postgresql`)"
        )
    return candidates[-1].parent


def _service_user() -> str | None:
    """The user to run PostgreSQL as: `postgres` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError as exc:
        raise PostgresError(
            f"running as root but there is no `{SERVICE_USER}` user to run PostgreSQL as "
            "(Debian's postgresql package creates it)"
        ) from exc
    return SERVICE_USER


def _let_user_in(directory: Path, user: str) -> None:
    """Makes `directory` (ours) traversable so `user` can reach the data folder inside it."""
    mode = directory.stat().st_mode
    if not mode & 0o001:
        directory.chmod(mode | 0o001)
    for parent in directory.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise PostgresError(
                f"{user} cannot reach {directory}: {parent} is not traversable by others"
            )


def dsn_for(port: int, database: str) -> str:
    return f"postgresql://{SUPERUSER}@{ports.LOOPBACK}:{port}/{database}"


@dataclass
class PostgresCluster:
    """A running PostgreSQL cluster; start with `PostgresCluster.start(state_dir)`."""

    data_dir: Path
    port: int
    daemon: procs.Daemon

    @property
    def dsn(self) -> str:
        """DSN of the `postgres` database as superuser (trust auth on loopback)."""
        return dsn_for(self.port, "postgres")

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        timeout: float = 60.0,
        port: int | None = None,
        socket_dir: Path | None = None,
    ) -> PostgresCluster:
        """Initialises (once) and starts a cluster in <state_dir>/postgres/data.

        `port` restarts a stopped cluster where its clients expect it (outage tests).
        `socket_dir` also serves the unix socket there (the real node's pods mount it).
        """
        bin_dir = find_bin_dir()
        user = _service_user()
        state_dir.mkdir(parents=True, exist_ok=True)
        base = state_dir / "postgres"
        base.mkdir(exist_ok=True)
        data_dir = base / "data"
        if user is not None:
            _let_user_in(state_dir, user)
            shutil.chown(base, user, user)
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bin_dir, data_dir, user)
        port = port or ports.free_port()
        argv: list[str] = [str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port)]
        settings = dict(SETTINGS)
        if socket_dir is not None:
            socket_dir.mkdir(parents=True, exist_ok=True)
            if user is not None:
                shutil.chown(socket_dir, user, user)
            settings["unix_socket_directories"] = str(socket_dir)
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        daemon = procs.start_daemon(state_dir, "postgres", argv, cwd=base, user=user)
        cluster = cls(data_dir=data_dir, port=port, daemon=daemon)
        try:
            procs.wait_ready(
                daemon, cluster._accepts_connections, timeout=timeout, what="accepting connections"
            )
        except procs.DaemonError:
            daemon.stop(signal.SIGKILL, timeout=5)
            raise
        return cluster

    def _accepts_connections(self) -> bool:
        with psycopg.connect(self.dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def dsn_for(self, database: str) -> str:
        return dsn_for(self.port, database)

    def create_database(self, name: str) -> str:
        """Creates database `name` and returns its DSN."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn_for(name)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): aborts open sessions instead of waiting for them."""
        self.daemon.stop(signal.SIGINT, timeout=timeout)


def stop(state_dir: Path, timeout: float = 30.0) -> bool:
    """Stops the cluster an earlier process started in `state_dir`, by its PID file."""
    return procs.stop_pid_file(procs.run_dir(state_dir) / "postgres.pid", signal.SIGINT, timeout)


def _initdb(bin_dir: Path, data_dir: Path, user: str | None) -> None:
    started = time.monotonic()
    argv = [
        str(bin_dir / "initdb"),
        "--pgdata",
        str(data_dir),
        "--username",
        SUPERUSER,
        "--auth",
        "trust",
        "--encoding",
        "UTF8",
        "--locale",
        "C.UTF-8",
        "--no-sync",
    ]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            cwd=data_dir.parent,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresError(f"initdb could not run: {exc}") from exc
    if done.returncode != 0:
        raise PostgresError(
            f"initdb failed (exit {done.returncode}) after {time.monotonic() - started:.1f}s:\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
