"""The one wait of tests and the bench: the value it waited for, or a failure that says why."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from devenv.waiting import wait_for


@dataclass
class Process:
    """A process whose work is awaited, as `wait_for(daemon=...)` sees one."""

    running: bool
    name: str = "river-worker-1"
    log_path: Path = Path("/state/logs/river-worker-1.log")

    def alive(self) -> bool:
        return self.running

    def log_tail(self, lines: int = 40) -> str:
        return "panic: no database"


def test_returns_the_first_truthy_value_of_the_predicate() -> None:
    answers = iter([None, 0, {"state": "running"}])

    assert wait_for(lambda: next(answers), 5, "the job to run", step=0) == {"state": "running"}


def test_a_timeout_names_what_was_awaited() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.1s waiting for the job to run$"):
        wait_for(lambda: None, 0.1, "the job to run", step=0.01)


def test_an_exited_daemon_fails_at_once_with_its_log() -> None:
    began = time.monotonic()
    with pytest.raises(AssertionError) as failed:
        wait_for(lambda: None, 30, "the job to run", daemon=Process(running=False))

    assert time.monotonic() - began < 5
    assert str(failed.value) == (
        "river-worker-1 exited while waiting for the job to run\n"
        "river-worker-1 log (/state/logs/river-worker-1.log):\npanic: no database"
    )


def test_a_timeout_with_a_live_daemon_shows_its_log() -> None:
    with pytest.raises(AssertionError, match=r"(?s)waiting for the job to run\n.*no database"):
        wait_for(lambda: None, 0.1, "the job to run", step=0.01, daemon=Process(running=True))


def test_the_awaited_state_wins_over_a_daemon_that_exited_after_reaching_it() -> None:
    # A worker that completes its job and exits: the job's completion is what was awaited.
    assert wait_for(lambda: "completed", 5, "the job to complete", daemon=Process(running=False))
