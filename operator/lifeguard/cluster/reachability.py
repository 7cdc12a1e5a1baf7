"""Whether the apiserver answers, as the operator's own calls found it.

One memory per process: every call outside kopf's watches reports its outcome here. The first
failure of a streak is logged once (not once per call, not once per scan) and its recovery once,
with how long it lasted. While the apiserver is down, calls fail at once, except one probe at a
time every `probe_every` seconds: a scan that needs the database only is never slowed by request
timeouts to an apiserver known to be down.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

PROBE_EVERY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Outage:
    """An apiserver outage the operator saw: from its first failed call to its first success."""

    started: float  # monotonic
    ended: float | None
    error: str

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


class Reachability:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        probe_every: float = PROBE_EVERY_SECONDS,
        on_change: Callable[[bool], None] | None = None,
        quiet: bool = False,
    ) -> None:
        self._clock = clock
        self._probe_every = probe_every
        self.on_change = on_change
        # The startup wait (cluster.startup) says what it waits for in its own words.
        self._quiet = quiet
        self.outage: Outage | None = None  # the current one, or the last one
        self.last_success: float | None = None
        self._probing = False
        self._probe_at = 0.0

    @property
    def down(self) -> bool:
        return self.outage is not None and self.outage.ended is None

    def may_call(self) -> bool:
        """False while down, except for one probe at a time every `probe_every` seconds."""
        if not self.down:
            return True
        now = self._clock()
        if self._probing or now < self._probe_at:
            return False
        self._probing, self._probe_at = True, now + self._probe_every
        return True

    def succeeded(self) -> None:
        now = self._clock()
        self.last_success, self._probing = now, False
        if self.outage is not None and self.outage.ended is None:
            self.outage = Outage(self.outage.started, now, self.outage.error)
            if not self._quiet:
                log.warning(
                    "the apiserver answers again after %.0fs unreachable (%s)",
                    now - self.outage.started,
                    self.outage.error,
                )
            if self.on_change is not None:
                self.on_change(True)

    def failed(self, error: str) -> None:
        now = self._clock()
        self._probing = False
        if self.down:
            return
        self.outage = Outage(now, None, error)
        self._probe_at = now + self._probe_every
        if not self._quiet:
            log.warning(
                "the apiserver is unreachable (%s): database scans go on with cached URLs;"
                " Kubernetes calls are retried every %.0fs",
                error,
                self._probe_every,
            )
        if self.on_change is not None:
            self.on_change(False)

    def released(self) -> None:
        """A call ended in neither way (a bug or a cancellation): let the next probe go."""
        self._probing = False
