"""Tiny fluent builders for verdict and plan tables.

    running_job(kind="report").beat_age(45).on(pod("worker-1").oom_killed()).obs()

Every time is relative to NOW (the database's `now()` in production). By default a job has
run 2m on pod worker-1 (node n1, Ready), beats every 10s (last beat 5s ago; stale after 30s),
and its client started long after the container and long before the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from lifeguard.model.actions import ActionRule, ActionsSpec
from lifeguard.model.client_id import client_prefix, river_host_of_pod
from lifeguard.model.enums import Action, Cause, Mode
from lifeguard.model.observation import (
    ContainerFacts,
    JobFacts,
    NodeFacts,
    Observation,
    OwnerJobFacts,
    PodFacts,
    TerminatedFacts,
    Thresholds,
)
from lifeguard.model.own_action import OwnAction
from lifeguard.model.ownership import FleetView, PolicyFacts
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.safety import CircuitBreakerSpec, SafetySpec
from lifeguard.reconcile import (
    ApiserverOutage,
    Connected,
    DatabaseFailed,
    DatabaseOutcome,
    InventoryView,
    NoDatabase,
    Scanned,
    Snapshot,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
# The labels of every built pod, and what the built policy's pod selector asks for.
WORKER_LABELS = (("app", "worker"),)
POD_STARTED = NOW - timedelta(hours=2)
CLIENT_STARTED = POD_STARTED + timedelta(seconds=1)
SIGNAL_EXIT_BASE = 128


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# -- nodes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeBuilder:
    facts: NodeFacts

    def not_ready(self, for_: float = 60, reason: str = "NodeStatusUnknown") -> NodeBuilder:
        return NodeBuilder(replace(self.facts, ready=False, ready_since=ago(for_), reason=reason))

    def lease_silent_for(self, seconds: float, duration: float = 40) -> NodeBuilder:
        """The kubelet last renewed the node's Lease `seconds` ago (as the operator saw it)."""
        return NodeBuilder(replace(self.facts, lease_age=seconds, lease_duration=duration))

    def ready_unknown(self) -> NodeBuilder:
        return NodeBuilder(replace(self.facts, ready=None))


def node(name: str = "n1") -> NodeBuilder:
    return NodeBuilder(NodeFacts(name=name, ready=True, ready_since=POD_STARTED))


# -- pods ----------------------------------------------------------------------------------
def _terminated(code: int, ago_s: float, reason: str | None) -> TerminatedFacts:
    return TerminatedFacts(
        exit_code=code,
        reason=reason,
        started_at=POD_STARTED,
        finished_at=ago(ago_s),
    )


@dataclass(frozen=True)
class PodBuilder:
    facts: PodFacts

    def _pod(self, **changes: object) -> PodBuilder:
        return PodBuilder(replace(self.facts, **changes))  # type: ignore[arg-type]

    def _worker(self, **changes: object) -> PodBuilder:
        first, *rest = self.facts.containers
        return self._pod(containers=(replace(first, **changes), *rest))  # type: ignore[arg-type]

    # where and what
    def on(self, node_name: str) -> PodBuilder:
        return self._pod(node_name=node_name)

    def in_namespace(self, namespace: str) -> PodBuilder:
        return self._pod(namespace=namespace)

    def phase(self, phase: str) -> PodBuilder:
        return self._pod(phase=phase)

    def with_sidecar(self, name: str = "proxy", native: bool = False) -> PodBuilder:
        """A second container; `native`: a restartable init container (a native sidecar)."""
        sidecar = ContainerFacts(name=name, running_since=POD_STARTED, sidecar=native)
        return self._pod(containers=(*self.facts.containers, sidecar))

    def sidecar_first(self, name: str = "proxy", annotated: str | None = None) -> PodBuilder:
        """A sidecar listed before the worker; the annotation (if any) names the default."""
        sidecar = ContainerFacts(name=name, running_since=POD_STARTED)
        default = annotated if annotated is not None else name
        return self._pod(containers=(sidecar, *self.facts.containers), default_container=default)

    def _sidecar(self, **changes: object) -> PodBuilder:
        *workers, sidecar = self.facts.containers
        return self._pod(containers=(*workers, replace(sidecar, **changes)))  # type: ignore[arg-type]

    def sidecar_exited(
        self, code: int = 1, ago_s: float = 3, reason: str | None = "Error"
    ) -> PodBuilder:
        return self._sidecar(running_since=None, terminated=_terminated(code, ago_s, reason))

    def sidecar_restarted(self, times: int = 2, ago_s: float = 3, code: int = 1) -> PodBuilder:
        """The last container ended `ago_s` ago with `code`, `times` restarts so far."""
        return self._sidecar(
            running_since=ago(ago_s - 1),
            restart_count=times,
            last_terminated=_terminated(code, ago_s, "Error"),
        )

    def of_job(self, name: str = "mailer") -> PodBuilder:
        return self._pod(owner_job=name)

    def no_containers(self) -> PodBuilder:
        return self._pod(containers=())

    # the worker container's current state
    def exited(
        self, code: int, ago_s: float = 3, reason: str | None = "Error", phase: str = "Failed"
    ) -> PodBuilder:
        ended = self._worker(running_since=None, terminated=_terminated(code, ago_s, reason))
        return ended._pod(phase=phase)

    def oom_killed(self, ago_s: float = 3) -> PodBuilder:
        return self.exited(137, ago_s, reason="OOMKilled")

    def killed(self, signal: int = 9, ago_s: float = 3) -> PodBuilder:
        return self.exited(SIGNAL_EXIT_BASE + signal, ago_s, reason="Error")

    def crashed(self, code: int = 1, ago_s: float = 3) -> PodBuilder:
        return self.exited(code, ago_s, reason="Error")

    def restarted(
        self, ago_s: float = 10, code: int = 1, reason: str | None = "Error"
    ) -> PodBuilder:
        """The worker container ended `ago_s` ago with `code` and runs again since."""
        restarts = self.facts.containers[0].restart_count + 1
        return self._worker(
            running_since=ago(ago_s - 1),
            restart_count=restarts,
            last_terminated=_terminated(code, ago_s, reason),
        )

    def crash_looping(self, ago_s: float = 10, code: int = 1) -> PodBuilder:
        """The worker container ended and waits in back-off to start again."""
        return self.restarted(ago_s, code)._worker(
            running_since=None, waiting_reason="CrashLoopBackOff"
        )

    def started(self, ago_s: float) -> PodBuilder:
        """The worker container (re)started `ago_s` ago, with no last state recorded."""
        return self._worker(running_since=ago(ago_s))

    # what happened to the pod
    def terminating(self, grace_left: float = 25) -> PodBuilder:
        return self._pod(deletion_timestamp=NOW + timedelta(seconds=grace_left))

    def deleted(self, ago_s: float = 1) -> PodBuilder:
        return self._pod(gone=True, deletion_timestamp=ago(ago_s))

    def disrupted(self, by: str) -> PodBuilder:
        return self._pod(disruption_target=by)

    def evicted_by_kubelet(self) -> PodBuilder:
        return self.killed(9)._pod(
            reason="Evicted",
            message="The node was low on resource: memory.",
            disruption_target="TerminationByKubelet",
        )

    def status_reason(self, reason: str, message: str | None = None) -> PodBuilder:
        return self._pod(reason=reason, message=message)


def pod(name: str = "worker-1", node_name: str = "n1") -> PodBuilder:
    return PodBuilder(
        PodFacts(
            namespace="jobs",
            name=name,
            uid=f"uid-{name}",
            node_name=node_name,
            phase="Running",
            containers=(ContainerFacts(name="worker", running_since=POD_STARTED),),
            labels=WORKER_LABELS,
            default_container="worker",
        )
    )


# -- batch/v1 Jobs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnerJobBuilder:
    facts: OwnerJobFacts

    def _job(self, **changes: object) -> OwnerJobBuilder:
        return OwnerJobBuilder(replace(self.facts, **changes))  # type: ignore[arg-type]

    def suspended(self) -> OwnerJobBuilder:
        return self._job(suspended=True)

    def deadline_exceeded(self, seconds: int = 30) -> OwnerJobBuilder:
        return self._job(active_deadline_seconds=seconds, failed_reason="DeadlineExceeded")

    def failed(self, reason: str = "BackoffLimitExceeded") -> OwnerJobBuilder:
        return self._job(failed_reason=reason)

    def deleted(self) -> OwnerJobBuilder:
        return self._job(gone=True, deletion_timestamp=ago(2))

    def ignores_disruptions(self) -> OwnerJobBuilder:
        return self._job(ignores_disruptions=True)


def owner_job(name: str = "mailer") -> OwnerJobBuilder:
    return OwnerJobBuilder(OwnerJobFacts(namespace="jobs", name=name, backoff_limit=6))


# -- jobs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobBuilder:
    job: JobFacts
    thresholds: Thresholds = field(
        default_factory=lambda: Thresholds(30.0, 60.0, beat_interval=10.0)
    )
    pod_name: str | None = "worker-1"
    pod: PodFacts | None = field(default_factory=lambda: pod().facts)
    node: NodeFacts | None = None
    node_missing: bool = False
    client_started_at: datetime | None = CLIENT_STARTED
    nodes_observed: bool = True
    beats_expected: bool = True
    worker_container: str | None = None
    owner: OwnerJobFacts | None = None
    pod_unselected: bool = False

    def _job(self, **changes: object) -> JobBuilder:
        return replace(self, job=replace(self.job, **changes))  # type: ignore[arg-type]

    def _limits(self, **changes: object) -> JobBuilder:
        return replace(self, thresholds=replace(self.thresholds, **changes))  # type: ignore[arg-type]

    # the job's own facts
    def id(self, job_id: int) -> JobBuilder:
        return self._job(id=job_id)

    def running_for(self, seconds: float) -> JobBuilder:
        return self._job(running_for=seconds, attempted_at=ago(seconds))

    def beat_age(self, seconds: float) -> JobBuilder:
        return self._job(beat_age=seconds)

    def no_beat(self) -> JobBuilder:
        return self._job(beat_age=None)

    def progress_age(self, seconds: float | None) -> JobBuilder:
        return self._job(progress_age=seconds)

    def attempt(self, attempt: int, max_attempts: int = 25) -> JobBuilder:
        return self._job(attempt=attempt, max_attempts=max_attempts)

    def infra_retries(self, count: int) -> JobBuilder:
        return self._job(infra_retries=count)

    def cancel_requested(self, seconds_ago: float) -> JobBuilder:
        return self._job(cancel_requested_age=seconds_ago)

    def lifeguard_restarted(
        self,
        pod_name: str = "worker-1",
        cause: Cause = Cause.UNRESPONSIVE,
        reason: str = "BeatStale",
        message: str = "pod worker-1 on node n1 is running but its last beat was 31s ago",
        pod_uid: str = "",
        namespace: str = "jobs",
    ) -> JobBuilder:
        """Lifeguard recorded (metadata lifeguard:action) that it restarts this job's pod."""
        own = OwnAction(
            Action.RESTART_POD,
            cause,
            reason,
            message,
            pod=pod_name,
            pod_uid=pod_uid,
            namespace=namespace,
        )
        return self._job(own_action=own.to_json())

    # limits
    def stale_after(self, seconds: float) -> JobBuilder:
        return self._limits(stale_after=seconds)

    def startup_grace(self, seconds: float) -> JobBuilder:
        return self._limits(startup_grace=seconds)

    def progress_timeout(self, seconds: float) -> JobBuilder:
        return self._limits(progress_timeout=seconds)

    def max_runtime(self, seconds: float) -> JobBuilder:
        return self._limits(max_runtime=seconds)

    def adaptive_limit(self, seconds: float) -> JobBuilder:
        return self._limits(adaptive_limit=seconds)

    def without_beats(self) -> JobBuilder:
        return replace(self, beats_expected=False)._job(beat_age=None)

    # where it runs
    def on(self, pod_builder: PodBuilder) -> JobBuilder:
        return replace(self, pod=pod_builder.facts, pod_name=pod_builder.facts.name)

    def node_is(self, node_builder: NodeBuilder) -> JobBuilder:
        return replace(self, node=node_builder.facts)

    def node_deleted(self) -> JobBuilder:
        return replace(self, node_missing=True)

    def nodes_unobserved(self) -> JobBuilder:
        return replace(self, nodes_observed=False)

    def pod_unknown(self, name: str = "worker-1") -> JobBuilder:
        """The client ID names a pod the cluster does not know."""
        return replace(self, pod_name=name, pod=None)

    def pod_not_selected(self, name: str = "worker-1") -> JobBuilder:
        """The client ID names a pod of the namespace that workers.podSelector does not select."""
        return replace(self, pod_name=name, pod=None, pod_unselected=True)

    def unattributed(self) -> JobBuilder:
        """The client ID matches no pod pattern (a worker outside the cluster)."""
        return replace(self, pod_name=None, pod=None, client_started_at=None)._job(
            client_id="laptop-7"
        )

    def client_started(self, seconds_ago: float | None) -> JobBuilder:
        return replace(self, client_started_at=None if seconds_ago is None else ago(seconds_ago))

    def worker_is(self, container: str) -> JobBuilder:
        return replace(self, worker_container=container)

    def owned_by(self, job: OwnerJobBuilder) -> JobBuilder:
        """The pod belongs to this batch/v1 Job (sets the pod's owner too)."""
        pod_facts = replace(self.pod, owner_job=job.facts.name) if self.pod else None
        return replace(self, owner=job.facts, pod=pod_facts)

    def obs(self) -> Observation:
        node_facts = self.node
        if node_facts is None and self.pod is not None and self.pod.node_name:
            node_facts = node(self.pod.node_name).facts
        if self.node_missing or not self.nodes_observed:
            node_facts = None
        return Observation(
            job=self.job,
            thresholds=self.thresholds,
            now=NOW,
            pod_name=self.pod_name,
            pod=self.pod,
            node=node_facts,
            client_started_at=self.client_started_at,
            nodes_observed=self.nodes_observed,
            beats_expected=self.beats_expected,
            worker_container=self.worker_container,
            owner_job=self.owner,
            pod_unselected=self.pod_unselected,
        )


def running_job(
    kind: str = "report", job_id: int = 1, queue: str = "default", running_for: float = 120
) -> JobBuilder:
    return JobBuilder(
        job=JobFacts(
            id=job_id,
            kind=kind,
            queue=queue,
            priority=1,
            attempt=1,
            max_attempts=25,
            attempted_at=ago(running_for),
            client_id="worker-1_2026_03_01T10_00_01_000000",
            running_for=running_for,
            beat_age=5.0,
        )
    )


# -- policies (for plan tables) -------------------------------------------------------------
@dataclass(frozen=True)
class PolicyBuilder:
    """The two parts of a JobPolicySpec the planner reads, from the real model types."""

    actions: ActionsSpec = field(default_factory=ActionsSpec)
    safety: SafetySpec = field(default_factory=SafetySpec)

    def rule(self, cause: str, **fields: object) -> PolicyBuilder:
        """Replace the rule of one cause, e.g. rule("stuck", action="Cancel")."""
        assert cause in ActionsSpec.model_fields, f"no cause field {cause!r}"
        rule = ActionRule.model_validate(fields)
        return replace(self, actions=self.actions.model_copy(update={cause: rule}))

    def dry_run(self) -> PolicyBuilder:
        return replace(self, safety=self.safety.model_copy(update={"mode": Mode.DRY_RUN}))

    def max_actions_per_minute(self, count: int) -> PolicyBuilder:
        return replace(
            self, safety=self.safety.model_copy(update={"max_actions_per_minute": count})
        )

    def breaker(self, stale_fraction: float = 0.5, min_jobs: int = 5) -> PolicyBuilder:
        breaker = CircuitBreakerSpec(stale_fraction=stale_fraction, min_jobs=min_jobs)
        return replace(self, safety=self.safety.model_copy(update={"circuit_breaker": breaker}))


def policy() -> PolicyBuilder:
    return PolicyBuilder()


# -- snapshots and full policies (for reconcile tables) --------------------------------------
def policy_spec(**overrides: object) -> JobPolicySpec:
    """A complete JobPolicySpec whose workers are the built pods; `overrides` are camelCase."""
    raw: dict[str, object] = {
        "database": {"secretRef": {"name": "db"}},
        "workers": {"podSelector": {"matchLabels": dict(WORKER_LABELS)}},
        **overrides,
    }
    return JobPolicySpec.model_validate(raw)


# The namespace of the policy a SnapshotBuilder's snapshot is for (and of `pod()`'s pods).
POLICY_NAMESPACE = "jobs"


def _client_id(pod_name: str) -> str:
    return f"{river_host_of_pod(pod_name)}_{CLIENT_STARTED:%Y_%m_%dT%H_%M_%S_%f}"


@dataclass(frozen=True)
class SnapshotBuilder:
    """One cycle's Snapshot: jobs with their pods and nodes, the database's answer, clocks.

    Jobs come from JobBuilders: their pod (and node) goes into the inventory view, and their
    client ID is made to name that pod, as River's default client ID does. Thresholds come from
    the policy, as in the operator, not from the JobBuilder.
    """

    jobs: tuple[JobFacts, ...] = ()
    pods: tuple[PodFacts, ...] = ()
    nodes: tuple[NodeFacts, ...] = ()
    nodes_observed: bool = True
    owner_jobs: tuple[OwnerJobFacts, ...] = ()
    adaptive_limits: tuple[tuple[str, float], ...] = ()
    leases_blind: bool = False
    database: DatabaseOutcome | None = None
    outage: ApiserverOutage | None = None
    at: float = 1000.0
    now: datetime = NOW
    fleet: FleetView | None = None
    me: PolicyFacts | None = None
    # The namespace of the policy the snapshot is for: its pods form the view, others are
    # the pods elsewhere.
    namespace: str = POLICY_NAMESPACE

    def job(self, *builders: JobBuilder) -> SnapshotBuilder:
        built = self
        for b in builders:
            job, pods, nodes = b.job, built.pods, built.nodes
            if b.pod_name is not None:
                job = replace(job, client_id=_client_id(b.pod_name))
            if b.pod is not None and b.pod not in pods:
                pods = (*pods, b.pod)
                node_facts = b.node or (node(b.pod.node_name).facts if b.pod.node_name else None)
                if node_facts is not None and not b.node_missing and node_facts not in nodes:
                    nodes = (*nodes, node_facts)
            built = replace(built, jobs=(*built.jobs, job), pods=pods, nodes=nodes)
            if b.owner is not None and b.owner not in built.owner_jobs:
                built = replace(built, owner_jobs=(*built.owner_jobs, b.owner))
            if not b.nodes_observed:
                built = replace(built, nodes_observed=False)
        return built

    def pod(self, builder: PodBuilder) -> SnapshotBuilder:
        """A pod the inventory holds whether or not a job names it."""
        return replace(self, pods=(*self.pods, builder.facts))

    def no_secret(
        self, reason: str = "SecretNotFound", message: str = "no Secret"
    ) -> SnapshotBuilder:
        return replace(self, database=NoDatabase(reason, message))

    def unreachable(self, message: str = "connection refused") -> SnapshotBuilder:
        return replace(self, database=DatabaseFailed("Unreachable", message))

    def database_failed(self, reason: str, event_reason: str, message: str) -> SnapshotBuilder:
        return replace(self, database=DatabaseFailed(reason, message, event_reason))

    def blind_to_leases(self) -> SnapshotBuilder:
        """The operator has not listed node Leases lately: its view carries no Lease ages."""
        nodes = tuple(replace(n, lease_age=None, lease_duration=None) for n in self.nodes)
        return replace(self, leases_blind=True, nodes=nodes)

    def after_apiserver_outage(
        self, started: float, seconds: float, error: str = "connection refused"
    ) -> SnapshotBuilder:
        return replace(self, outage=ApiserverOutage(started, seconds, error))

    def later(self, seconds: float) -> SnapshotBuilder:
        """The same world `seconds` later on both clocks (jobs keep their ages)."""
        return replace(self, at=self.at + seconds, now=self.now + timedelta(seconds=seconds))

    def adaptive(self, limits: dict[str, float]) -> SnapshotBuilder:
        """Run-time limits learned per kind."""
        return replace(self, adaptive_limits=tuple(limits.items()))

    def without_nodes(self) -> SnapshotBuilder:
        return replace(self, nodes=(), nodes_observed=False)

    def among(self, *policies: PolicyFacts, me: str = "jobs/rescue") -> SnapshotBuilder:
        """The operator supervises `policies`; this snapshot is the one named `me`'s."""
        mine = next(p for p in policies if p.key == me)
        return replace(self, fleet=FleetView(policies), me=mine, namespace=mine.namespace)

    def snap(self) -> Snapshot:
        by_prefix: dict[str, tuple[PodFacts, ...]] = {}
        elsewhere: dict[str, tuple[PodFacts, ...]] = {}
        for facts in self.pods:
            prefix = client_prefix(facts.name)
            into = by_prefix if facts.namespace == self.namespace else elsewhere
            into[prefix] = (*into.get(prefix, ()), facts)
        view = InventoryView(
            by_prefix,
            {n.name: n for n in self.nodes},
            self.nodes_observed,
            elsewhere,
            jobs={j.name: j for j in self.owner_jobs},
            leases_blind=self.leases_blind,
        )
        database = self.database or Connected("postgres://db/river", Scanned(self.jobs, self.now))
        return Snapshot(
            policy="rescue",
            wall=self.now,
            monotonic=self.at,
            inventory=view,
            database=database,
            fleet=self.fleet,
            me=self.me,
            adaptive_limits=dict(self.adaptive_limits),
            apiserver_outage=self.outage,
        )


def snapshot(*jobs: JobBuilder) -> SnapshotBuilder:
    return SnapshotBuilder().job(*jobs)
