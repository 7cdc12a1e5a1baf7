"""Daemon processes of the local environment: started detached, found again by PID file.

Every daemon writes its output to <state>/logs/<name>.log and its PID to <state>/run/<name>.pid,
so `devenv down` (a different Python process than `devenv up`) can stop it, and a person can
read the logs of a failed run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devenv.waiting import wait_for


class DaemonError(RuntimeError):
    """A daemon failed to start or to become ready."""


# The Popen objects of daemons this process started: kept so that Python does not warn about
# (and try to reap) a child that is meant to outlive its Popen object.
_children: dict[int, subprocess.Popen[bytes]] = {}


def log_dir(state_dir: Path) -> Path:
    return state_dir / "logs"


def run_dir(state_dir: Path) -> Path:
    return state_dir / "run"


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22).

    Stored next to the PID so that a stale PID file never makes us signal an unrelated
    process that reused the number.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie; reaps it if it is our own child."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            _children.pop(pid, None)
            return False
    except ChildProcessError:
        pass  # not our child: started by an earlier `devenv up`
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@dataclass(frozen=True)
class Daemon:
    """A detached process of the environment, known by name, PID, log and PID file."""

    name: str
    pid: int
    log_path: Path
    pid_path: Path

    def alive(self) -> bool:
        return _is_running(self.pid)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> None:
        stop_pid_file(self.pid_path, sig, timeout)


def start_daemon(
    state_dir: Path,
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> Daemon:
    """Starts `argv` detached (own session, survives its starter), logging to the state dir.

    `user` runs it as that unprivileged user (PostgreSQL refuses to run as root).
    """
    logs, runs = log_dir(state_dir), run_dir(state_dir)
    logs.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    log_path, pid_path = logs / f"{name}.log", runs / f"{name}.pid"
    if pid_path.exists() and pid_alive(pid_path):
        raise DaemonError(f"{name} is already running (PID file {pid_path})")
    with log_path.open("ab") as log:
        log.write(
            f"--- {time.strftime('%H:%M:%S')} starting: {' '.join(map(str, argv))}\n".encode()
        )
        log.flush()
        try:
            process = subprocess.Popen(
                [os.fspath(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        except OSError as exc:
            raise DaemonError(f"could not start {name} ({argv[0]}): {exc}") from exc
    pid_path.write_text(f"{process.pid}\n{_start_ticks(process.pid) or ''}\n")
    _children[process.pid] = process
    return Daemon(name, process.pid, log_path, pid_path)


def wait_ready(
    daemon: Daemon, probe: Callable[[], bool], *, timeout: float, what: str = "ready"
) -> None:
    """Polls `probe` until it returns True; fails fast (with the log tail) if the daemon dies."""

    def ready() -> bool:
        try:
            return probe()
        except Exception:  # a probe that cannot connect yet is simply not ready
            return False

    try:
        wait_for(ready, timeout, f"{daemon.name} to be {what}", daemon=daemon)
    except AssertionError as exc:
        raise DaemonError(str(exc)) from None


def read_pid_file(pid_path: Path) -> tuple[int, int | None] | None:
    """(PID, start ticks) from a PID file, or None if it is missing or unreadable."""
    try:
        lines = pid_path.read_text().split()
    except FileNotFoundError:
        return None
    if not lines or not lines[0].isdigit():
        return None
    ticks = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
    return int(lines[0]), ticks


def pid_alive(pid_path: Path) -> bool:
    """True if the PID file names a running process that is the one it recorded."""
    entry = read_pid_file(pid_path)
    if entry is None:
        return False
    pid, ticks = entry
    if ticks is not None and _start_ticks(pid) != ticks:
        return False
    return _is_running(pid)


def stop_pid_file(
    pid_path: Path, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0
) -> bool:
    """Stops the process a PID file names: `sig`, wait up to `timeout`, then SIGKILL.

    The daemon leads its own session (start_daemon), so the SIGKILL goes to its process group
    and takes its children along. Returns True if a process was stopped. Removes the PID file.
    """
    entry = read_pid_file(pid_path)
    if entry is None or not pid_alive(pid_path):
        pid_path.unlink(missing_ok=True)
        return False
    pid, _ = entry
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pid_path.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while _is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _is_running(pid):
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_deadline = time.monotonic() + 5
        while _is_running(pid) and time.monotonic() < kill_deadline:
            time.sleep(0.1)
    pid_path.unlink(missing_ok=True)
    return True
