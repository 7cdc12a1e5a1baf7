"""JobPolicy status: what the operator saw in its last scan and what it has done."""

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from lifeguard.model.base import StatusModel
from lifeguard.model.conditions import Condition, Timestamp
from lifeguard.model.enums import Action, Cause

MAX_RECENT_ACTIONS = 10
MAX_KIND_STATS = 20

Count = Annotated[int, Field(ge=0)]


class JobCounts(StatusModel):
    """Running jobs of the last scan, by verdict."""

    running: Count = Field(0, description="Running jobs the policy covers.")
    healthy: Count = Field(0, description="Jobs whose beats (and progress, if judged) are fresh.")
    starting: Count = Field(0, description="Jobs within startupGrace without a first beat.")
    infrastructure_death: Count = Field(0, description="Jobs whose pod died for outside reasons.")
    resource_exhausted: Count = Field(0, description="Jobs whose container was OOMKilled.")
    application_crash: Count = Field(0, description="Jobs whose container exited non-zero.")
    unresponsive: Count = Field(0, description="Jobs whose pod runs but whose beats stopped.")
    stuck: Count = Field(0, description="Jobs that beat but make no progress.")
    overdue: Count = Field(0, description="Jobs beyond their runtime limit.")
    stale: Count = Field(0, description="Jobs with stale beats and no attributable pod.")

    @classmethod
    def of(cls, causes: Sequence[Cause]) -> "JobCounts":
        """Counts from the verdicts of one scan."""
        tally = {field: 0 for field in cls.model_fields if field != "running"}
        for cause in causes:
            tally[_cause_field(cause)] += 1
        return cls(running=len(causes), **tally)


def _cause_field(cause: Cause) -> str:
    return cause.name.lower()


class ActionTotals(StatusModel):
    """Actions applied since the operator started watching this policy."""

    rescued: Count = Field(0, description="Jobs Lifeguard acted on (any applied action).")
    retried: Count = Field(
        0, description="Jobs queued again: available or retryable (or discarded when exhausted)."
    )
    cancelled: Count = Field(0, description="Cancel requests sent through River.")
    pods_restarted: Count = Field(0, description="Pods evicted.")
    discarded: Count = Field(0, description="Jobs discarded.")
    suppressed: Count = Field(
        0, description="Decisions not applied: dry run, rate limit or open circuit breaker."
    )

    def add(self, action: Action, applied: bool) -> "ActionTotals":
        """Totals after one more decision."""
        if action is Action.NONE:
            return self
        if not applied:
            return self.model_copy(update={"suppressed": self.suppressed + 1})
        field = {
            Action.RETRY: "retried",
            Action.CANCEL: "cancelled",
            Action.RESTART_POD: "pods_restarted",
            Action.DISCARD: "discarded",
        }[action]
        return self.model_copy(
            update={field: getattr(self, field) + 1, "rescued": self.rescued + 1}
        )


class RecentAction(StatusModel):
    """One decision, for `kubectl describe`."""

    time: Timestamp = Field(description="When the action was decided (database time).")
    job_id: int = Field(description="River job ID.")
    kind: str = Field(description="The job's kind.")
    pod: str | None = Field(None, description="The pod the job was attributed to.")
    cause: Cause = Field(description="The verdict's cause.")
    reason: str = Field(description="The verdict's reason, e.g. OOMKilled or Evicted.")
    action: Action = Field(description="The action decided.")
    applied: bool = Field(description="False in DryRun, when rate limited or the breaker is open.")


class KindStat(StatusModel):
    """Run times of one kind's recently completed jobs."""

    kind: str = Field(description="The job kind.")
    samples: Count = Field(description="Completed jobs sampled.")
    p50_seconds: float = Field(ge=0, description="Median run time.")
    p95_seconds: float = Field(ge=0, description="95th percentile run time.")
    p99_seconds: float = Field(ge=0, description="99th percentile run time.")
    adaptive_limit_seconds: float | None = Field(
        None, ge=0, description="The learned limit in force for the kind, if adaptive is enabled."
    )


class JobPolicyStatus(StatusModel):
    """Observed state, written by the operator."""

    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        None, description="The .metadata.generation of the spec last acted on."
    )
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(
        default_factory=list,
        description="Ready, DatabaseConnected and CircuitOpen.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    last_scan_time: Timestamp | None = Field(None, description="When the last scan finished.")
    jobs: JobCounts | None = Field(
        default_factory=JobCounts,
        description=(
            "Running jobs by verdict, from the last scan. Absent while the database cannot be"
            " scanned: the last counts would no longer be true."
        ),
    )
    totals: ActionTotals = Field(default_factory=ActionTotals, description="Actions so far.")
    recent_actions: Annotated[list[RecentAction], Field(max_length=MAX_RECENT_ACTIONS)] = Field(
        default_factory=list, description="The latest decisions, newest first."
    )
    kind_stats: Annotated[list[KindStat], Field(max_length=MAX_KIND_STATS)] = Field(
        default_factory=list, description="Run-time statistics of the busiest kinds."
    )


def with_recent_action(recent: Sequence[RecentAction], action: RecentAction) -> list[RecentAction]:
    """The bounded newest-first list after one more decision."""
    return [action, *recent][:MAX_RECENT_ACTIONS]
