"""Leader election's rules, free of I/O: the Lease record, its timings, and who may act.

The semantics are client-go's (tools/leaderelection): a candidate takes the Lease only when its
holder is empty, is itself, or has not changed for a whole lease duration *as timed by the
candidate's own clock* since the candidate last saw the record change. Wall-clock times in the
record (renewTime) are written for people and tools, never compared across hosts: two hosts'
clocks may disagree by more than a lease duration.

The leader judges its own term by its monotonic clock: it may act only while less than the
renew deadline has passed since it *sent* its last successful renewal. Because the renew
deadline is shorter than the lease duration, and a standby starts timing only after it sees
that renewal, the leader stops acting before any standby can start.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
# The labels of every operator Lease: the chart's, and the operator's own when it creates one,
# so that `lifeguard explain` finds the leader without knowing the release.
OPERATOR_LEASE_LABELS = {
    "app.kubernetes.io/part-of": "river-lifeguard",
    "app.kubernetes.io/component": "operator",
}


class TimingError(ValueError):
    """Election timings that cannot keep one leader; the message names the flags."""


@dataclass(frozen=True, slots=True)
class ElectionTiming:
    """client-go's three settings, in seconds, with Kubernetes' usual defaults."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def check(self) -> "ElectionTiming":
        if self.retry_period <= 0:
            raise TimingError(f"--retry-period must be positive, not {self.retry_period:g}s")
        if self.lease_duration < 1:
            raise TimingError(
                f"--lease-duration must be at least 1s (the Lease counts whole seconds),"
                f" not {self.lease_duration:g}s"
            )
        if not self.renew_deadline < self.lease_duration:
            raise TimingError(
                f"--renew-deadline ({self.renew_deadline:g}s) must be shorter than"
                f" --lease-duration ({self.lease_duration:g}s): the leader must stop acting"
                " before a standby may take over"
            )
        if not self.retry_period < self.renew_deadline:
            raise TimingError(
                f"--retry-period ({self.retry_period:g}s) must be shorter than"
                f" --renew-deadline ({self.renew_deadline:g}s): a leader must be able to retry"
                " a failed renewal before its term ends"
            )
        return self


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The spec of a coordination.k8s.io/v1 Lease used as a leader lock."""

    holder: str = ""
    lease_duration_seconds: int = 0
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> "LeaseRecord":
        spec = spec or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.transitions,
        }
        # An empty holder is written as an absent one, as client-go's release does.
        spec["holderIdentity"] = self.holder or None
        spec["acquireTime"] = self.acquire_time or None
        spec["renewTime"] = self.renew_time or None
        return spec


def micro_time(moment: datetime) -> str:
    """A Lease's MicroTime (RFC 3339 with microseconds, UTC)."""
    return moment.strftime(MICRO_TIME)


@dataclass(frozen=True, slots=True)
class Observed:
    """The last Lease record a candidate saw change, and when, by its own monotonic clock."""

    record: LeaseRecord
    at: float

    def seen(self, record: LeaseRecord, now: float) -> "Observed":
        """Restarts the local timer only when the record changed (a renewal changes renewTime)."""
        return self if record == self.record else Observed(record, now)

    def held_by_other(self, me: str, now: float) -> bool:
        """True while someone else's term may still run: the candidate must not take the Lease."""
        holder = self.record.holder
        if not holder or holder == me:
            return False
        return now < self.at + self.record.lease_duration_seconds


def claim(
    current: LeaseRecord, me: str, timing: ElectionTiming, wall_now: datetime, leading: bool
) -> LeaseRecord:
    """The record `me` writes to take or renew the Lease over `current`."""
    now = micro_time(wall_now)
    renewing = leading and current.holder == me
    return LeaseRecord(
        holder=me,
        lease_duration_seconds=max(1, round(timing.lease_duration)),
        acquire_time=current.acquire_time if renewing else now,
        renew_time=now,
        transitions=current.transitions if current.holder == me else current.transitions + 1,
    )


def released(current: LeaseRecord, wall_now: datetime) -> LeaseRecord:
    """The record a leader leaves when it steps down on purpose: no holder, so a standby takes
    the Lease at its next try instead of waiting out a lease duration."""
    now = micro_time(wall_now)
    return replace(current, holder="", lease_duration_seconds=1, acquire_time=now, renew_time=now)


def term_valid(renewed_at: float | None, timing: ElectionTiming, now: float) -> bool:
    """Whether a leader that sent its last successful renewal at `renewed_at` (its own
    monotonic clock) may still act at `now`."""
    return renewed_at is not None and now - renewed_at < timing.renew_deadline
