"""The circuit breaker: too many jobs stale at once means the picture is wrong, not the jobs.

A heartbeat writer outage or a lagging replica makes every job look stale within one beat
interval. Only staleness without a pod-level explanation counts (Unresponsive, Stale): a
NotReady node or a dead pod explains its jobs' silence. While open, actions derived from
heartbeats pause; actions backed by pod evidence (OOMKilled, evicted, crashed, node lost)
still go.

Jobs that stop beating together cross `staleAfter` one by one, each on its own beat phase, up
to one interval apart: when the first is stale, the others have missed every beat but the
last. Those count too ("going stale"), so an outage opens the breaker before its first job is
acted on, not one interval after. A healthy beat is never that old: the window starts at
staleAfter minus one interval, and never before 1.5 intervals.
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
    going_stale: int = 0

    def why(self) -> str:
        more = (
            f" and {self.going_stale} more have missed all but their last beat"
            if self.going_stale
            else ""
        )
        return (
            f"circuit breaker open: {self.stale} of {self.running} running jobs are stale{more}"
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


# A healthy job's beat is at most one interval (and a write's latency) old.
GOING_STALE_MIN_INTERVALS = 1.5


def going_stale_after(stale_after: float, beat_interval: float | None) -> float | None:
    """The beat age from which a job not yet stale counts as going stale; None when the
    policy's staleAfter leaves no room between a healthy beat's age and staleness."""
    if beat_interval is None:
        return None
    start = max(stale_after - beat_interval, GOING_STALE_MIN_INTERVALS * beat_interval)
    return start if start < stale_after else None


def read_breaker(
    causes: Sequence[Cause],
    spec: CircuitBreakerSpec,
    was_open: bool,
    unread: Unread = NONE_UNREAD,
    going_stale: int = 0,
) -> BreakerReading:
    """`going_stale`: running jobs judged fine whose beat has missed all but its last
    interval (see going_stale_after)."""
    running = len(causes) + unread.running
    stale = sum(1 for cause in causes if cause in UNEXPLAINED_STALENESS) + unread.stale
    fraction = (stale + going_stale) / running if running else 0.0
    is_open = running >= spec.min_jobs and fraction > spec.stale_fraction
    share = f"{stale} of {running} running jobs ({stale / running if running else 0.0:.0%})"
    if going_stale:
        share = (
            f"{stale + going_stale} of {running} running jobs ({fraction:.0%}: {stale} stale,"
            f" {going_stale} with all but their last beat missed)"
        )
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
    return BreakerReading(is_open, stale, running, event, going_stale)
