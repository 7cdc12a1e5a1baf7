"""The one way tests and the bench wait for the world: poll a predicate until it holds."""

import time
from collections.abc import Callable
from typing import TypeVar

from devenv.procs import Daemon

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    step: float = 0.2,
    *,
    daemon: Daemon | None = None,
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
        log = f"\n{daemon.name} log:\n{daemon.log_tail()}" if daemon is not None else ""
        if daemon is not None and not daemon.alive():
            raise AssertionError(f"{daemon.name} exited while waiting for {what}{log}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}{log}")
        time.sleep(step)
