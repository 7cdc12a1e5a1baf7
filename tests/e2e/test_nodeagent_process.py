"""The node agent's container process, run for real: UTS namespace, memory cgroup, signals.

These need root (unshare, cgroups) like the agent itself, but no API server.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.nodeagent.proc import (
    CGROUP_MEMORY_ROOT,
    ContainerProcess,
    Exit,
    cgroup_v1_available,
    remove_cgroup_tree,
)

pytestmark = pytest.mark.e2e

EAT_MEMORY = "x = []\nwhile True:\n    x.append(bytearray(8 * 2**20))\n"
LIMIT = 64 * 2**20


@pytest.fixture
def cgroup_parent(request: pytest.FixtureRequest) -> Iterator[Path]:
    parent = CGROUP_MEMORY_ROOT / "lifeguard" / f"test-{request.node.name[:40]}-{time.time_ns()}"
    yield parent
    remove_cgroup_tree(parent)


def run(
    tmp_path: Path, argv: list[str], cgroup: Path | None, limit: int | None = None
) -> tuple[ContainerProcess, Exit]:
    process = ContainerProcess(
        argv,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        hostname="worker-7f",
        log_path=tmp_path / "c.log",
        cgroup=cgroup,
        memory_limit=limit,
    )
    deadline = time.monotonic() + 30
    while (ended := process.poll()) is None:
        assert time.monotonic() < deadline, "container process did not end"
        time.sleep(0.05)
    return process, ended


def test_this_machine_has_a_writable_cgroup_v1_memory_controller() -> None:
    # The issue states the agent runs on such machines; the RSS fallback is for others.
    assert cgroup_v1_available()


def test_process_sees_the_pod_name_as_hostname_and_keeps_its_exit_code(
    tmp_path: Path, cgroup_parent: Path
) -> None:
    _, ended = run(tmp_path, ["/bin/sh", "-c", "hostname; exit 3"], cgroup_parent / "c")
    assert ended == Exit(exit_code=3, signal=None, oom_killed=False)
    assert (tmp_path / "c.log").read_text().split() == ["worker-7f"]


def test_process_joins_its_memory_cgroup_before_the_workload_runs(
    tmp_path: Path, cgroup_parent: Path
) -> None:
    run(tmp_path, ["/bin/cat", "/proc/self/cgroup"], cgroup_parent / "c")
    memory_line = next(
        line for line in (tmp_path / "c.log").read_text().splitlines() if ":memory:" in line
    )
    assert memory_line.endswith(f"/lifeguard/{cgroup_parent.name}/c")


def test_kernel_oom_killer_enforces_the_memory_limit_and_is_told_apart(
    tmp_path: Path, cgroup_parent: Path
) -> None:
    process, ended = run(
        tmp_path, [sys.executable, "-c", EAT_MEMORY], cgroup_parent / "eat", limit=LIMIT
    )
    assert process.memory_mechanism == "cgroup-v1"
    assert ended == Exit(exit_code=137, signal=signal.SIGKILL, oom_killed=True)


def test_a_sigkill_from_outside_is_not_an_oom_kill(tmp_path: Path, cgroup_parent: Path) -> None:
    process = ContainerProcess(
        ["/bin/sleep", "60"],
        env={},
        cwd=tmp_path,
        hostname="w",
        log_path=tmp_path / "c.log",
        cgroup=cgroup_parent / "c",
        memory_limit=LIMIT,
    )
    process.signal(signal.SIGKILL)
    process.process.wait(10)
    assert process.poll() == Exit(exit_code=137, signal=signal.SIGKILL, oom_killed=False)


def test_rss_polling_enforces_the_limit_where_no_cgroup_is_available(tmp_path: Path) -> None:
    process, ended = run(tmp_path, [sys.executable, "-c", EAT_MEMORY], None, limit=LIMIT)
    assert process.memory_mechanism == "rss-polling"
    assert ended.oom_killed
    assert ended.signal == signal.SIGKILL


def test_sigterm_reaches_the_whole_process_group(tmp_path: Path, cgroup_parent: Path) -> None:
    process = ContainerProcess(
        ["/bin/sh", "-c", "sleep 60 & wait"],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        hostname="w",
        log_path=tmp_path / "c.log",
        cgroup=cgroup_parent / "c",
        memory_limit=None,
    )
    time.sleep(0.3)
    process.signal(signal.SIGTERM)
    process.process.wait(10)
    assert process.poll() == Exit(exit_code=143, signal=signal.SIGTERM, oom_killed=False)
    deadline = time.monotonic() + 5
    while (cgroup_parent / "c" / "cgroup.procs").read_text().strip():
        assert time.monotonic() < deadline, "the background sleep outlived its container"
        time.sleep(0.05)
