"""Shared fixtures: the real PostgreSQL, River schema and Kubernetes control plane.

Services are session-scoped and start lazily, only for tests that ask for them (unit tests
start nothing). They run from a state folder under build/test-state/ that is removed after a
green run and kept after a failure, with every daemon's log in its logs/ folder.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.controlplane import ControlPlane
from devenv.postgres import PostgresCluster
from devenv.river import RiverDatabase, create_database
from devenv.tools import repo_root
from devenv.worker import build_worker

_KEPT_STATE = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def state_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The session's state folder: kept (and reported) if any test failed, else removed."""
    base = repo_root() / "build" / "test-state"
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path.mkdir()
    yield path
    if request.session.testsfailed:
        request.config.stash[_KEPT_STATE] = path
    else:
        shutil.rmtree(path, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    kept = terminalreporter.config.stash.get(_KEPT_STATE, None)
    if kept is not None:
        terminalreporter.write_line(f"test environment kept for inspection: {kept} (logs/)")


@pytest.fixture(scope="session")
def postgres(state_dir: Path) -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (superuser DSN: `postgres.dsn`)."""
    cluster = PostgresCluster.start(state_dir)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def river_database(postgres: PostgresCluster) -> RiverDatabase:
    """Factory: a fresh database with River migrated (optionally into `schema`); its DSN."""
    counter = itertools.count(1)

    def create(schema: str | None = None) -> str:
        return create_database(postgres, f"river_{next(counter)}", schema)

    return create


@pytest.fixture(scope="session")
def worker_binary() -> Path:
    """The example River worker, built by the project's own code."""
    return build_worker()


@pytest.fixture(scope="session")
def control_plane(state_dir: Path) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback.

    `control_plane.kubeconfig` is the admin's; `user_kubeconfig(user, groups)` mints others.
    """
    plane = ControlPlane.start(state_dir)
    yield plane
    plane.stop()
