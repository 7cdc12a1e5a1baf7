"""What the planner hands to the shell: actions to take, actions held back, and safety state."""

from dataclasses import dataclass, field
from datetime import datetime

from lifeguard.model.enums import Action, Backoff, Cause


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod instance: its name, and the uid that fences its eviction against a successor."""

    namespace: str
    name: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class BeatingJob:
    """A job whose beat was fresh when a policy last judged it: its pod's process was alive."""

    job_id: int
    # The policy that judged it; "" for the planning policy itself.
    policy: str = ""

    def __str__(self) -> str:
        return f"job {self.job_id}" + (f" (policy {self.policy})" if self.policy else "")


@dataclass(frozen=True, slots=True)
class SafetyState:
    """A policy's safety memory between scans; the planner returns the next one.

    An operator restart (or a new leader) resumes the breaker from the CircuitOpen condition
    (reconcile.state.configured), so an open circuit is not announced twice; the rate limit
    only restarts its window.
    """

    circuit_open: bool = False
    # Why the breaker is open, for the CircuitOpen condition; "" while closed.
    breaker_message: str = ""
    rate_limited: bool = False
    # When recent actions were planned (the injected clock), for the sliding one-minute window.
    recent_actions: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """One action on one attempt of one job, fenced by `attempted_at`."""

    job_id: int
    attempted_at: datetime
    kind: str
    queue: str
    attempt: int
    max_attempts: int
    pod: PodRef | None
    node: str | None
    cause: Cause
    reason: str
    message: str
    action: Action
    # For Retry: whether the retry uses up an attempt (False refunds it).
    count_attempt: bool
    backoff: Backoff
    # This is the policy's `then`: the first action did not end the attempt within `after`.
    escalated: bool
    # DryRun: report it, never write it.
    dry_run: bool
    # Why this action rather than the policy's plain one ("no pod to restart; retrying").
    note: str = ""
    # Seconds from the evidence (container death, stale beat, ...) to this decision, 0 if unknown.
    evidence_age: float = 0.0


@dataclass(frozen=True, slots=True)
class HeldJob:
    """A job whose verdict calls for an action that is not taken in this scan, and why."""

    job_id: int
    cause: Cause
    reason: str
    # The action that is pending, waiting, or paused.
    action: Action
    why: str


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """A change worth a Kubernetes Event on the JobPolicy (CircuitOpened, ...)."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    actions: list[PlannedAction] = field(default_factory=list)
    # Over the rate limit: decided, not taken in this scan; later scans decide again.
    deferred: list[PlannedAction] = field(default_factory=list)
    held: list[HeldJob] = field(default_factory=list)
    state: SafetyState = SafetyState()
    events: list[PlanEvent] = field(default_factory=list)
    # The policy's own jobs whose beat is fresh, by the live pod that runs them: other
    # policies on the same pods hold their restarts on it (supervisor.beats.BeatBoard).
    beating: dict[PodRef, tuple[int, ...]] = field(default_factory=dict)
