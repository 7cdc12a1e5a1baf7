"""Effects: what one reconcile cycle asks the shell to do, as data.

Owns the vocabulary between the pure core and the shell: the actions to write (fenced database
writes; evictions fenced by the pod's uid), how each write came out (Outcome), the Events to
post (on the policy or on a pod), the metric updates, the log lines, and the status patch (or
None when nothing changed). The shell carries them out in that order and feeds the outcomes
back; it decides nothing.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from lifeguard.model.enums import Action
from lifeguard.model.ownership import NotJudged
from lifeguard.plan import Judged, Plan, PlannedAction, PodRef


class Result(StrEnum):
    APPLIED = "applied"
    # The fence did not match: the job moved on since the scan, or the pod was replaced.
    FENCED = "fenced"
    # A PodDisruptionBudget refused the eviction for now.
    BLOCKED = "blocked"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one action's write came out."""

    decision: PlannedAction
    result: Result
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event on the policy, or on `pod` when set (its uid names the instance)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    pod: PodRef | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    """One update of a metric of `lifeguard.metrics.Metrics`, named by its attribute.

    `inc` adds `value` to a counter, `set` sets a gauge to `value`, `observe` records each of
    `samples` in a histogram (one update for many jobs keeps a 100k-job scan cheap). Per-policy
    metrics get the policy label prepended by the shell; a `kind` label is bounded by the shell
    (the first kinds seen, then "other").
    """

    name: str
    op: Literal["inc", "set", "observe"]
    labels: tuple[str, ...]
    value: float = 1.0
    samples: tuple[float, ...] = ()
    per_policy: bool = True


def inc(name: str, *labels: str, by: float = 1.0) -> Metric:
    return Metric(name, "inc", labels, value=by)


def gauge(name: str, value: float, *labels: str) -> Metric:
    return Metric(name, "set", labels, value=value)


def observe(name: str, samples: tuple[float, ...], *labels: str, per_policy: bool = True) -> Metric:
    return Metric(name, "observe", labels, samples=samples, per_policy=per_policy)


@dataclass(frozen=True, slots=True)
class LogLine:
    level: Literal["info", "warning"]
    message: str
    extra: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Effects:
    # Actions to write now (never dry-run ones); their outcomes go to `feed_outcomes`.
    actions: tuple[PlannedAction, ...] = ()
    events: tuple[Event, ...] = ()
    metrics: tuple[Metric, ...] = ()
    logs: tuple[LogLine, ...] = ()
    # The status to patch, or None when it need not be written this cycle.
    status: dict[str, Any] | None = None
    # What the cycle judged and planned, for `lifeguard explain` and the outcomes step.
    judged: tuple[Judged, ...] = field(default=())
    # The jobs the scan returned that another policy (or none) judges, and why.
    not_judged: tuple[NotJudged, ...] = field(default=())
    plan: Plan | None = None

    @property
    def writes(self) -> tuple[PlannedAction, ...]:
        """The database writes, each fenced by (job id, state running, attempted_at)."""
        return tuple(a for a in self.actions if a.action is not Action.RESTART_POD)

    @property
    def evictions(self) -> tuple[PlannedAction, ...]:
        """The evictions, each fenced by the uid of the pod decided on (`action.pod.uid`)."""
        return tuple(a for a in self.actions if a.action is Action.RESTART_POD)
