"""The Go side: the heartbeat module's own tests on the real PostgreSQL, and Go hygiene.

`make test` runs the Go tests through here, so one command covers both languages. The Go
tests start real River clients and migrate River's schema themselves (one schema per test);
they only need a database they may create schemas in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devenv.river import RiverDatabase
from devenv.tools import repo_root
from devenv.worker import GO_ENV

pytestmark = pytest.mark.integration

GO_MODULES = ("heartbeat", "examples/worker")


def _go() -> str:
    go = shutil.which("go")
    assert go is not None, "go is not installed (need Go >= 1.26 on PATH)"
    return go


def _run_go(args: list[str], module: str, extra_env: dict[str, str] | None = None) -> str:
    """Runs go in a module folder; fails the test with go's output on a non-zero exit."""
    env = {**os.environ, **GO_ENV, **(extra_env or {})}
    done = subprocess.run(
        [_go(), *args],
        cwd=repo_root() / module,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"`go {' '.join(args)}` in {module} failed:\n{output[-8000:]}"
    return output


def test_heartbeat_go_tests_pass_against_real_postgres_and_river(
    river_database: RiverDatabase,
) -> None:
    dsn = river_database()
    output = _run_go(["test", "-count=1", "-v", "./..."], "heartbeat", {"DATABASE_URL": dsn})
    # A green run must have run the tests, not skipped or filtered them away.
    assert "--- PASS: TestBeatsAppearWhileWorkRunsAndStopWhenItReturns" in output
    assert "--- SKIP" not in output


@pytest.mark.parametrize("module", GO_MODULES)
def test_go_module_is_vet_and_gofmt_clean(module: str) -> None:
    _run_go(["vet", "./..."], module)
    goroot = _run_go(["env", "GOROOT"], module).strip()
    gofmt = Path(goroot) / "bin" / "gofmt"
    unformatted = subprocess.run(
        [str(gofmt), "-l", "."],
        cwd=repo_root() / module,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert unformatted.returncode == 0, unformatted.stderr
    assert unformatted.stdout == "", f"gofmt would reformat in {module}:\n{unformatted.stdout}"


def test_example_worker_go_tests_pass() -> None:
    output = _run_go(["test", "-count=1", "-v", "./..."], "examples/worker")
    assert "--- PASS: TestRunConfigFromEnv" in output
