"""What the operator knows about one running job when it decides: facts, not I/O.

The river layer fills `JobFacts` (ages computed by the database's clock), the cluster layer
fills `PodFacts` and `NodeFacts` from its informer caches, and the supervisor joins them into an
`Observation` for the pure `verdict.decide`.
"""

from dataclasses import dataclass, field
from datetime import datetime

# The annotation kubectl reads to pick a pod's container when none is named.
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The limits that apply to one job after tiers are resolved (seconds)."""

    stale_after: float
    startup_grace: float
    progress_timeout: float | None = None
    max_runtime: float | None = None
    # Learned from finished jobs of the same kind; judges kinds whose workers do not beat.
    adaptive_limit: float | None = None
    # How often workers beat (heartbeat.interval); None when unknown.
    beat_interval: float | None = None


# Not frozen, unlike the other facts: a scan builds up to 100k of these, and a frozen
# dataclass's __init__ (one object.__setattr__ per field) costs seven times as much. Nothing
# mutates one; hashing stays available for sets of observations.
@dataclass(slots=True, unsafe_hash=True)
class JobFacts:
    """One `running` River job as read in one scan; ages are the database's `now()` minus ..."""

    id: int
    kind: str
    queue: str
    priority: int
    attempt: int
    max_attempts: int
    attempted_at: datetime
    # The last element of attempted_by: the client that fetched this attempt.
    client_id: str | None
    running_for: float
    beat_age: float | None = None
    progress_age: float | None = None
    progress: str | None = None
    error_count: int = 0
    # Infrastructure retries Lifeguard already refunded (metadata "lifeguard:infra_retries").
    infra_retries: int = 0
    # Seconds since a cancel was requested (metadata cancel_attempted_at), if ever.
    cancel_requested_age: float | None = None
    # What Lifeguard did to this attempt and why (metadata "lifeguard:action", JSON text as
    # read; see lifeguard.model.own_action), when it did something.
    own_action: str | None = None
    # River's tags, read only when a rival policy selects by tags (ownership); None: not read.
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class TerminatedFacts:
    """A container's terminated state (current or last)."""

    exit_code: int
    reason: str | None = None
    signal: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """The parts of a container status that verdicts read."""

    name: str
    restart_count: int = 0
    running_since: datetime | None = None
    terminated: TerminatedFacts | None = None
    waiting_reason: str | None = None
    last_terminated: TerminatedFacts | None = None
    # A native sidecar: an init container with restartPolicy Always (from
    # initContainerStatuses). Never the worker unless the policy names it.
    sidecar: bool = False


@dataclass(frozen=True, slots=True)
class PodFacts:
    """The parts of a pod that verdicts read; `gone` marks the last facts of a deleted pod."""

    namespace: str
    name: str
    uid: str = ""
    node_name: str | None = None
    phase: str = "Running"
    # status.reason, e.g. "Evicted" or "Preempting"; and the DisruptionTarget condition's reason.
    reason: str | None = None
    message: str | None = None
    disruption_target: str | None = None
    deletion_timestamp: datetime | None = None
    containers: tuple[ContainerFacts, ...] = ()
    gone: bool = False
    labels: tuple[tuple[str, str], ...] = field(default=())
    # The container that runs the worker unless the policy names one: the pod's only
    # container, else the one its kubectl.kubernetes.io/default-container annotation names,
    # else its first container. None when the spec lists no container (facts built by hand).
    default_container: str | None = None
    # The batch/v1 Job that controls the pod (its controller ownerReference), if any.
    owner_job: str | None = None


@dataclass(frozen=True, slots=True)
class OwnerJobFacts:
    """The parts of a batch/v1 Job that end its pods' processes; `gone` once it is deleted."""

    namespace: str
    name: str
    uid: str = ""
    # spec.suspend: the Job controller deletes the Job's active pods (Kueue preempts this way).
    suspended: bool = False
    # The reason of the Failed (or FailureTarget) condition: DeadlineExceeded,
    # BackoffLimitExceeded, PodFailurePolicy, ...; None while the Job has not failed.
    failed_reason: str | None = None
    failed_message: str | None = None
    active_deadline_seconds: int | None = None
    backoff_limit: int | None = None
    # podFailurePolicy has a rule that ignores pods with a DisruptionTarget condition, so an
    # eviction does not count against backoffLimit.
    ignores_disruptions: bool = False
    deletion_timestamp: datetime | None = None
    gone: bool = False


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """A node's Ready condition; `ready is None` when it is unknown."""

    name: str
    ready: bool | None
    ready_since: datetime | None = None
    reason: str | None = None
    # Seconds since the operator last saw the kubelet renew the node's Lease (its own clock,
    # so no skew between hosts enters), and the Lease's duration; None when not watched.
    lease_age: float | None = None
    lease_duration: float | None = None


@dataclass(frozen=True, slots=True)
class NodeBeats:
    """What the beats of the policy's jobs on one node say together (verdict.nodes builds it
    from one scan): a lost node silences all of them at once, a worker problem only some."""

    # Running jobs of the policy whose pods are on the node.
    jobs: int
    # Those of them that beat recently (within two beat intervals, or still starting).
    beating: int
    # When none beats: seconds since the last of them went quiet; else None.
    quiet_for: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything known about one running job at one instant (the database's `now`)."""

    job: JobFacts
    thresholds: Thresholds
    now: datetime
    # The pod name the client ID maps to; None when the client ID does not match the pattern
    # (a worker outside the cluster or a custom ID).
    pod_name: str | None = None
    # None when no pod of that name is known (never seen, or deleted before the operator saw it)
    # or when the policy's workers.podSelector does not select it (`pod_unselected`).
    pod: PodFacts | None = None
    node: NodeFacts | None = None
    # When the client that fetched the job started (from River's default client ID).
    client_started_at: datetime | None = None
    # Whether node readiness is observed at all (RBAC may forbid reading nodes).
    nodes_observed: bool = True
    # Whether the policy's workers write beats at all (kinds without beats use runtime limits).
    beats_expected: bool = True
    # The container that runs the River client as the policy names it (workers.container);
    # None: the pod's default container (PodFacts.default_container) is the worker.
    worker_container: str | None = None
    # The beats of all the policy's jobs on the pod's node; None: only this job's are known.
    node_beats: NodeBeats | None = None
    # The batch/v1 Job that controls the pod, when the pod has one and it is known.
    owner_job: OwnerJobFacts | None = None
    # The namespace has a pod of `pod_name`, but workers.podSelector does not select it, so the
    # job is judged without its pod (`pod` is None).
    pod_unselected: bool = False
