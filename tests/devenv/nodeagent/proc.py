"""One run of one container: a local process in its own UTS namespace and memory cgroup.

The process is started through `unshare --uts` and a tiny shell that joins the memory cgroup
and sets the hostname, then execs the workload, so the workload keeps the PID we started and
is inside its cgroup before its first instruction. It leads its own process group: signals go
to the whole group, like a container runtime signals a container.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("nodeagent.proc")

CGROUP_MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
# $0 is the hostname, $1 the cgroup.procs file to join ("" for none), the rest is the workload.
_WRAPPER = (
    'if [ -n "$1" ]; then echo $$ > "$1" || exit 125; fi; '
    'hostname "$0" || exit 125; shift; exec "$@"'
)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Exit:
    """How a container's main process ended."""

    exit_code: int
    signal: int | None
    oom_killed: bool


def cgroup_v1_available() -> bool:
    return (CGROUP_MEMORY_ROOT / "cgroup.procs").exists() and os.access(CGROUP_MEMORY_ROOT, os.W_OK)


def _oom_kills(cgroup: Path) -> int:
    for line in (cgroup / "memory.oom_control").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


def remove_cgroup_tree(path: Path) -> None:
    """Kills what is left inside a cgroup tree, then removes it (children first)."""
    if not path.is_dir():
        return
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        _remove_cgroup(child)
    _remove_cgroup(path)


def _remove_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            for pid in (path / "cgroup.procs").read_text().split():
                _signal_pid(int(pid), signal.SIGKILL)
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # tasks still exiting
    log.warning("could not remove cgroup %s", path)


def _signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _group_rss(pgid: int) -> int:
    """Resident memory of every process in a process group (the RSS fallback's measure)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[21]) * PAGE_SIZE
    return total


class ContainerProcess:
    """A started container process; poll() reports its Exit once it is gone."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        hostname: str,
        log_path: Path,
        cgroup: Path | None,
        memory_limit: int | None,
    ) -> None:
        self.memory_limit = memory_limit
        self.cgroup = cgroup
        self.memory_mechanism = "none"
        self._oom_baseline = 0
        self._rss_killed = False
        procs_file = ""
        if cgroup is not None:
            try:
                cgroup.mkdir(parents=True, exist_ok=True)
                if memory_limit is not None:
                    (cgroup / "memory.limit_in_bytes").write_text(str(memory_limit))
                self._oom_baseline = _oom_kills(cgroup)
                procs_file = str(cgroup / "cgroup.procs")
                self.memory_mechanism = "cgroup-v1" if memory_limit is not None else "none"
            except OSError as exc:
                log.warning(
                    "memory cgroup %s unusable (%s): falling back to RSS polling", cgroup, exc
                )
                self.cgroup = None
        if self.cgroup is None and memory_limit is not None:
            self.memory_mechanism = "rss-polling"
        unshare = shutil.which("unshare") or "/usr/bin/unshare"
        wrapped = [unshare, "--uts", "--", "/bin/sh", "-c", _WRAPPER, hostname, procs_file, *argv]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            self.process = subprocess.Popen(
                wrapped,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def signal(self, sig: int) -> None:
        """Signals the container's whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _enforce_rss_limit(self) -> None:
        if self.memory_limit is None or self.cgroup is not None or self._rss_killed:
            return
        if _group_rss(self.pid) > self.memory_limit:
            log.info("pid %d over its memory limit by RSS polling: SIGKILL", self.pid)
            self._rss_killed = True
            self.signal(signal.SIGKILL)

    def poll(self) -> Exit | None:
        self._enforce_rss_limit()
        code = self.process.poll()
        if code is None:
            return None
        # A container ends with its main process: nothing it left behind may outlive it.
        self.signal(signal.SIGKILL)
        oom = self._rss_killed
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                oom = _oom_kills(self.cgroup) > self._oom_baseline
        if code < 0:
            return Exit(exit_code=128 - code, signal=-code, oom_killed=oom)
        return Exit(exit_code=code, signal=None, oom_killed=oom)

    def kill_and_reap(self) -> None:
        self.signal(signal.SIGKILL)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not die after SIGKILL", self.pid)
