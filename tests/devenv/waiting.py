"""The one way tests, the bench and the environment wait for the world: poll a predicate until
it holds."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

T = TypeVar("T")


class Watched(Protocol):
    """A process whose work is awaited (a `procs.Daemon`)."""

    @property
    def name(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    def alive(self) -> bool: ...

    def log_tail(self, lines: int = 40) -> str: ...


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    step: float = 0.2,
    *,
    daemon: Watched | None = None,
) -> T:
    """Polls `predicate` until it returns something truthy; fails naming `what` on timeout.

    With `daemon` (the process whose work is awaited), fails at once when it exits, and either
    failure carries the tail of its log: waiting out the timeout on a dead worker tells nothing.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        log = ""
        if daemon is not None:
            log = f"\n{daemon.name} log ({daemon.log_path}):\n{daemon.log_tail()}"
            if not daemon.alive():
                raise AssertionError(f"{daemon.name} exited while waiting for {what}{log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{log}")
        time.sleep(step)
