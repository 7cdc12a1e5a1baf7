"""The circuit breaker: too many jobs stale at once means the picture is wrong, not the jobs.

A heartbeat writer outage or a lagging replica makes every job look stale in the same scan.
Only staleness without a pod-level explanation counts (Unresponsive, Stale): a NotReady node
or a dead pod explains its jobs' silence. While open, actions derived from heartbeats pause;
actions backed by pod evidence (OOMKilled, evicted, crashed, node lost) still go.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from lifeguard.model.enums import Cause
from lifeguard.model.safety import CircuitBreakerSpec
from lifeguard.plan.types import PlanEvent

UNEXPLAINED_STALENESS = frozenset({Cause.UNRESPONSIVE, Cause.STALE})
HEARTBEAT_DERIVED = frozenset({Cause.UNRESPONSIVE, Cause.STALE, Cause.STUCK})


@dataclass(frozen=True, slots=True)
class BreakerReading:
    open: bool
    stale: int
    running: int
    event: PlanEvent | None

    def why(self) -> str:
        return (
            f"circuit breaker open: {self.stale} of {self.running} running jobs are stale"
            " without a pod-level explanation; heartbeat-based actions pause"
        )


@dataclass(frozen=True, slots=True)
class Unread:
    """The running jobs a truncated scan did not read: how many, and how many of them have
    stale beats. Not judged, so no pod explains their silence: the breaker counts them as
    unexplained, erring towards pausing heartbeat-based actions, never towards acting."""

    running: int = 0
    stale: int = 0


NONE_UNREAD = Unread()


def read_breaker(
    causes: Sequence[Cause], spec: CircuitBreakerSpec, was_open: bool, unread: Unread = NONE_UNREAD
) -> BreakerReading:
    running = len(causes) + unread.running
    stale = sum(1 for cause in causes if cause in UNEXPLAINED_STALENESS) + unread.stale
    fraction = stale / running if running else 0.0
    is_open = running >= spec.min_jobs and fraction > spec.stale_fraction
    share = f"{stale} of {running} running jobs ({fraction:.0%})"
    limit = f"more than {spec.stale_fraction:.0%} of at least {spec.min_jobs}"
    event = None
    if is_open and not was_open:
        event = PlanEvent(
            "CircuitOpened",
            f"{share} are stale without a pod-level explanation ({limit}); actions based on"
            " heartbeats pause until beats return",
            warning=True,
        )
    elif was_open and not is_open:
        event = PlanEvent(
            "CircuitClosed", f"{share} are stale without a pod-level explanation; actions resume"
        )
    return BreakerReading(is_open, stale, running, event)
