"""The verdict rules, one small function each, and the order in which the first one wins.

Order, and why:

1. `oom_killed` — the kernel killed the job's process for memory. It is the most specific
   fact there is: even when the pod is deleted or evicted afterwards, memory is what ended
   the job, and the policy must count the attempt.
2. `pod_disrupted` — the pod is dead (gone, Failed/Succeeded, or deleted with no container
   left running) and Kubernetes says who did it (Evicted, Preempted, NodeLost, PodGC,
   NodeShutdown), or it was deleted (PodDeleted). A disruption explains whatever exit code the
   containers then had (a worker stopped by SIGTERM may exit 1), so it beats 3.
3. `process_gone` — a worker container ended after the job was taken, or restarted under the
   client that took it: Killed (a signal from outside), ApplicationCrash (non-zero exit or a
   fault signal), ContainerRestarted, ContainerExited.
4. `pod_finished` — a Failed/Succeeded pod that shows none of the above (no container status).
   Rules 1-4 are pod evidence: they hold whatever the beats say, because a dead process
   cannot beat and a fresh beat may just not have aged yet (the fast path runs in seconds).
5. `node_lost` — beat stale and the pod's node not Ready (or gone, or the taint manager
   deleting the pod); or, before the node controller says anything, the node's kubelet Lease
   is late and every job of the policy on the node went quiet (verdict.nodes). A node whose
   workers still beat is a partition the jobs survive: Healthy. A Lease that renews while beats
   stop is a worker problem: Unresponsive.
6. `unresponsive` — beat stale, pod known and alive, node Ready or not observed (without node
   permissions node loss degrades to this heartbeat-only verdict). Before Overdue: a frozen
   process cannot obey a cancel, so it must be restarted, not cancelled.
7. `stale` — beat stale and no pod attributable (a custom client ID, a worker outside the
   cluster) or the attributed pod is unknown to the cluster.
8. `stuck` — beats fresh, progress older than progressTimeout. Before Overdue: a job that
   stopped progressing is overdue *because* it is stuck, and Stuck names the cause.
9. `overdue` — running longer than maxRuntime, or than the adaptive limit for jobs without
   beats. Judges jobs whose beats are fresh (or that never beat by design).
10. `starting` — no beat yet within the startup grace. After the runtime rules, so a job
   cannot hide behind its grace beyond maxRuntime.
11. `healthy` — nothing fired.

A Terminating pod whose containers still run is judged by its beats (rules 5-11); its reason
says it is terminating.

Only the worker's container decides (`workers.container`, else the pod's default container):
a sidecar that exits, restarts or is OOM-killed never ends the job by itself; it is noted in
the verdict's message. A pod that dies is dead whichever container caused it (rule 2).
A pod deleted without a Kubernetes disruption reason is named after its batch/v1 Job when
the Job explains it: JobDeleted, Preempted (suspended, as Kueue preempts), DeadlineExceeded.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from lifeguard.model.client_id import client_prefix
from lifeguard.model.enums import Action, Cause
from lifeguard.model.observation import Observation, OwnerJobFacts, PodFacts
from lifeguard.model.own_action import parse_own_action
from lifeguard.verdict.evidence import (
    TERMINAL_PHASES,
    ProcessDeath,
    could_host_client,
    disruption_reason,
    ending_of,
    is_terminating,
    pod_is_dead,
    process_death,
    sidecar_notes,
    worker_containers,
)
from lifeguard.verdict.heartbeat import Beat, read_beat
from lifeguard.verdict.nodes import (
    Lease,
    lease_late_for,
    lease_state,
    own_beats,
    quiet_after,
    quiet_for,
)
from lifeguard.verdict.text import ago, seconds, where
from lifeguard.verdict.types import Verdict

# The reason of every verdict that blames a lost node (its Lease, its NotReady status, the taint
# manager's deletion).
NODE_LOST = "NodeLost"


@dataclass(frozen=True, slots=True)
class Case:
    """One observation with the facts every rule reads, derived once."""

    obs: Observation
    beat: Beat
    pod: PodFacts | None
    death: ProcessDeath | None
    pod_dead: bool
    terminating: bool

    @property
    def where(self) -> str:
        return where(self.obs, self.pod)


def build_case(obs: Observation) -> Case:
    pod = obs.pod
    if pod is not None and not could_host_client(obs, pod):
        pod = None
    return Case(
        obs=obs,
        beat=read_beat(obs),
        pod=pod,
        death=process_death(obs, pod) if pod is not None else None,
        pod_dead=pod is not None and pod_is_dead(obs, pod),
        terminating=pod is not None and is_terminating(pod),
    )


Rule = Callable[[Case], Verdict | None]


def _age(case: Case, then: datetime | None) -> float | None:
    return None if then is None else (case.obs.now - then).total_seconds()


def _pod_end(case: Case, pod: PodFacts) -> datetime | None:
    """When the worker's process ended: its container's exit, else the pod's deletion time."""
    finished = [
        c.terminated.finished_at
        for c in worker_containers(case.obs, pod)
        if c.terminated is not None and c.terminated.finished_at is not None
    ]
    return max(finished) if finished else pod.deletion_timestamp


def job_reason(job: OwnerJobFacts | None) -> tuple[str, str] | None:
    """Why the pod's batch/v1 Job ended its pods, when it did: (reason, sentence)."""
    if job is None:
        return None
    if job.gone or job.deletion_timestamp is not None:
        return "JobDeleted", f"its Job {job.name} was deleted"
    if job.suspended:
        return (
            "Preempted",
            f"its Job {job.name} was suspended (batch schedulers such as Kueue preempt a Job"
            " this way)",
        )
    if job.failed_reason == "DeadlineExceeded":
        limit = job.active_deadline_seconds
        within = f" ({seconds(float(limit))})" if limit is not None else ""
        return "DeadlineExceeded", f"its Job {job.name} ran past activeDeadlineSeconds{within}"
    return None


def _death_verdict(case: Case) -> Verdict:
    death = case.death
    assert death is not None
    ending = ending_of(death.terminated)
    if death.restarted and ending.reason == "ContainerExited":
        ending = replace(ending, reason="ContainerRestarted")
    container = f"container {death.container} of {case.where}"
    when = ago(case.obs.now, death.at)
    age = _age(case, death.at)
    if death.terminated is None:
        message = (
            f"{container} restarted{when}, after client {case.obs.job.client_id} took the job:"
            " the process that ran it is gone"
        )
    elif death.restarted:
        message = f"{container} {ending.how}{when} and restarted; the job's process is gone"
    else:
        message = f"{container} {ending.how}{when}"
    return Verdict(ending.cause, ending.reason, message, age)


def oom_killed(case: Case) -> Verdict | None:
    if case.death is None or case.death.terminated is None:
        return None
    if ending_of(case.death.terminated).cause is not Cause.RESOURCE_EXHAUSTED:
        return None
    return _death_verdict(case)


def pod_disrupted(case: Case) -> Verdict | None:
    pod = case.pod
    if pod is None or not case.pod_dead:
        return None
    reason = disruption_reason(pod)
    detail = f": {pod.message}" if pod.message else ""
    deleted = pod.gone or pod.deletion_timestamp is not None
    if reason is None and deleted and (by_job := job_reason(case.obs.owner_job)) is not None:
        reason, detail = by_job[0], f": {by_job[1]}"
    if reason is None and deleted:
        reason = "PodDeleted"
    if reason is None:
        return None
    state = "was deleted" if pod.gone else f"is {pod.phase}"
    if pod.deletion_timestamp is not None and not pod.gone:
        state = "is being deleted and its containers have stopped"
    who = f" ({pod.disruption_target})" if pod.disruption_target else ""
    return Verdict(
        Cause.INFRASTRUCTURE_DEATH,
        reason,
        f"{case.where} {state}; reason {reason}{who}{detail}",
        _age(case, _pod_end(case, pod)),
    )


def process_gone(case: Case) -> Verdict | None:
    return _death_verdict(case) if case.death is not None else None


def pod_finished(case: Case) -> Verdict | None:
    pod = case.pod
    if pod is None or pod.phase not in TERMINAL_PHASES:
        return None
    reason = "PodFailed" if pod.phase == "Failed" else "PodSucceeded"
    detail = f": {pod.message}" if pod.message else ""
    return Verdict(
        Cause.INFRASTRUCTURE_DEATH,
        reason,
        f"{case.where} is {pod.phase} while the job is still running{detail}",
        _age(case, _pod_end(case, pod)),
    )


def node_lost(case: Case) -> Verdict | None:
    if case.pod is None:
        return None
    return _node_gone(case) or _node_silent(case)


def _node_gone(case: Case) -> Verdict | None:
    """The cluster says the node is gone or NotReady, and the job's beat is stale."""
    pod, obs = case.pod, case.obs
    if pod is None or not case.beat.stale:
        return None
    if pod.disruption_target == "DeletionByTaintManager":
        state = "is being deleted by the taint manager (its node is unreachable)"
    elif not obs.nodes_observed or pod.node_name is None:
        return None
    elif obs.node is None:
        state = f"runs on node {pod.node_name}, which no longer exists"
    elif obs.node.ready is False:
        why = f" ({obs.node.reason})" if obs.node.reason else ""
        state = f"runs on node {pod.node_name}, which is NotReady{why}"
        if obs.node.ready_since is not None:
            state += f" for {seconds((obs.now - obs.node.ready_since).total_seconds())}"
    else:
        return None
    # The loss is certain once both hold: the node is NotReady and the beat is stale.
    since = case.beat.stale_for
    if obs.node is not None and obs.node.ready is False and obs.node.ready_since is not None:
        not_ready_for = (obs.now - obs.node.ready_since).total_seconds()
        since = not_ready_for if since is None else min(since, not_ready_for)
    return Verdict(
        Cause.INFRASTRUCTURE_DEATH,
        NODE_LOST,
        f"pod {pod.name} {state}; {case.beat.describe()}",
        since,
    )


def _node_silent(case: Case) -> Verdict | None:
    """The kubelet's Lease is late and every job of the policy on the node went quiet."""
    pod, obs = case.pod, case.obs
    node = obs.node
    if pod is None or node is None or not obs.nodes_observed or not obs.beats_expected:
        return None
    lease = lease_state(node)
    if lease not in (Lease.LATE, Lease.SILENT):
        return None
    beats = obs.node_beats
    if beats is None:
        # Only this job is known, not its neighbours: a late Lease is not enough, nor is a
        # quiet beat; it takes a silent kubelet and a stale beat.
        if lease is not Lease.SILENT or not case.beat.stale:
            return None
        beats = own_beats(obs)
    if beats.beating or beats.quiet_for is None or quiet_for(obs) is None:
        return None
    quiet = seconds(quiet_after(obs.thresholds))
    workers = (
        f"none of the {beats.jobs} jobs on it has beaten for over {quiet}"
        if beats.jobs > 1
        else f"its worker has not beaten for over {quiet}"
    )
    return Verdict(
        Cause.INFRASTRUCTURE_DEATH,
        NODE_LOST,
        f"pod {pod.name} runs on node {node.name}, whose kubelet has not renewed its Lease for"
        f" {seconds(node.lease_age or 0.0)} and {workers}; {case.beat.describe()}",
        min(lease_late_for(node), beats.quiet_for),
    )


def _lease_note(case: Case) -> str | None:
    """Says so when the kubelet is late but workers on the node still beat."""
    node = case.obs.node
    if node is None or lease_state(node) not in (Lease.LATE, Lease.SILENT):
        return None
    this_beats = quiet_for(case.obs) is None
    others = (case.obs.node_beats.beating if case.obs.node_beats else int(this_beats)) - int(
        this_beats
    )
    if others > 0:
        still = f"{others} other job{'s' if others > 1 else ''} on it still beat"
    elif this_beats:
        still = "the worker still beats"
    else:
        return None
    lease_age = seconds(node.lease_age or 0.0)
    return f"node {node.name}'s kubelet has not renewed its Lease for {lease_age}, but {still}"


def _stale_reason(beat: Beat) -> str:
    return "NoBeatYet" if beat.never else "BeatStale"


def unresponsive(case: Case) -> Verdict | None:
    if case.pod is None or not case.beat.stale:
        return None
    notes = []
    if case.terminating:
        notes.append("the pod is terminating")
    if not case.obs.nodes_observed:
        notes.append("node readiness is not observed")
    lease = _lease_note(case)
    if lease:
        notes.append(lease)
    note = f" ({'; '.join(notes)})" if notes else ""
    return Verdict(
        Cause.UNRESPONSIVE,
        _stale_reason(case.beat),
        f"{case.where} is running but {case.beat.describe()}{note}",
        case.beat.stale_for,
    )


def stale(case: Case) -> Verdict | None:
    obs = case.obs
    if not case.beat.stale:
        return None
    if obs.pod_name is not None and obs.pod_unselected:
        return Verdict(
            Cause.STALE,
            "PodNotSelected",
            f"client {obs.job.client_id} maps to pod {obs.pod_name}, which workers.podSelector"
            f" does not select (Lifeguard judges it without its pod); {case.beat.describe()}",
            case.beat.stale_for,
        )
    if obs.pod_name is not None:
        return Verdict(
            Cause.STALE,
            "NoPod",
            f"client {obs.job.client_id} maps to pod {obs.pod_name}, which the cluster does not"
            f" know; {case.beat.describe()}",
            case.beat.stale_for,
        )
    return Verdict(
        Cause.STALE,
        _stale_reason(case.beat),
        f"no pod is attributable to {case.where}; {case.beat.describe()}",
        case.beat.stale_for,
    )


def stuck(case: Case) -> Verdict | None:
    job, timeout = case.obs.job, case.obs.thresholds.progress_timeout
    if timeout is None or not case.beat.fresh:
        return None
    # A job that never reported progress has made none since it started.
    age = job.progress_age if job.progress_age is not None else job.running_for
    if age <= timeout:
        return None
    said = (
        f"its last progress was {seconds(age)} ago"
        if job.progress_age is not None
        else f"it has reported no progress in {seconds(age)} since it started"
    )
    return Verdict(
        Cause.STUCK,
        "ProgressStale",
        f"{case.where} still beats, but {said} (timeout {seconds(timeout)})",
        age - timeout,
    )


def overdue(case: Case) -> Verdict | None:
    obs = case.obs
    running_for, limits = obs.job.running_for, obs.thresholds
    if limits.max_runtime is not None and running_for > limits.max_runtime:
        return Verdict(
            Cause.OVERDUE,
            "MaxRuntimeExceeded",
            f"job {obs.job.id} ({obs.job.kind}) on {case.where} has run for"
            f" {seconds(running_for)}, beyond maxRuntime {seconds(limits.max_runtime)}",
            running_for - limits.max_runtime,
        )
    without_beats = not obs.beats_expected or case.beat.never
    if without_beats and limits.adaptive_limit is not None and running_for > limits.adaptive_limit:
        return Verdict(
            Cause.OVERDUE,
            "AdaptiveLimitExceeded",
            f"job {obs.job.id} ({obs.job.kind}) on {case.where} has run for"
            f" {seconds(running_for)}, beyond the adaptive limit"
            f" {seconds(limits.adaptive_limit)} learned for its kind",
            running_for - limits.adaptive_limit,
        )
    return None


def starting(case: Case) -> Verdict | None:
    obs = case.obs
    if not obs.beats_expected or not case.beat.never or case.beat.stale:
        return None
    reason = "PodTerminating" if case.terminating else "NoBeatYet"
    return Verdict(
        Cause.STARTING,
        reason,
        f"{case.where} took the job {seconds(obs.job.running_for)} ago and has not beaten yet"
        f" (startup grace {seconds(obs.thresholds.startup_grace)})"
        + ("; the pod is terminating" if case.terminating else ""),
    )


def healthy(case: Case) -> Verdict:
    obs = case.obs
    if case.beat.fresh:
        reason, said = "BeatFresh", case.beat.describe()
    else:
        reason, said = "Running", f"it has run for {seconds(obs.job.running_for)} within its limits"
    notes = []
    if case.terminating:
        reason = "PodTerminating"
        notes.append("the pod is terminating; River shuts down gracefully")
    if obs.node is not None and obs.node.ready is False:
        notes.append(f"node {obs.node.name} is NotReady but the worker still beats")
    elif lease := _lease_note(case):
        notes.append(lease)
    note = f" ({'; '.join(notes)})" if notes else ""
    return Verdict(Cause.HEALTHY, reason, f"{case.where} is working: {said}{note}")


RULES: tuple[Rule, ...] = (
    oom_killed,
    pod_disrupted,
    process_gone,
    pod_finished,
    node_lost,
    unresponsive,
    stale,
    stuck,
    overdue,
    starting,
)


def notes(case: Case, verdict: Verdict) -> tuple[str, ...]:
    """What the sidecars went through, and a failed Job that will not replace its pod."""
    found: list[str] = []
    if case.pod is not None:
        found += sidecar_notes(case.obs, case.pod)
    job = case.obs.owner_job
    if job is not None and job.failed_reason and job.failed_reason != verdict.reason:
        found.append(f"Job {job.name} failed ({job.failed_reason}): no new pod will replace it")
    return tuple(found)


# What a pod Lifeguard restarted looks like afterwards: dead (evicted, deleted, killed by the
# stop signal, exited) or gone from the cluster.
_AFTER_RESTART = (Cause.INFRASTRUCTURE_DEATH, Cause.APPLICATION_CRASH, Cause.STALE)


def own_restart(case: Case, verdict: Verdict) -> Verdict:
    """The verdict once Lifeguard's own restart of the job's pod took effect: the cause it
    acted on, not the eviction it caused ("Unresponsive/BeatStale ...; Lifeguard restarted pod
    mailer"). Read from the record written before the eviction, so it survives a restart of the
    operator; a death of another pod (another name, or a successor's uid), or an OOM kill,
    keeps its own verdict, and so does a lost node: no kubelet carried the restart out."""
    own = parse_own_action(case.obs.job.own_action)
    if own is None or own.action is not Action.RESTART_POD or verdict.cause not in _AFTER_RESTART:
        return verdict
    if case.pod is not None:
        if case.pod.name != own.pod:
            return verdict
    # No pod known: the client ID names a prefix of the pod's name (all of it up to 60
    # characters), the one Lifeguard restarted or another.
    elif own.pod is None or case.obs.pod_name != client_prefix(own.pod):
        return verdict
    if own.pod_uid and case.pod is not None and case.pod.uid and case.pod.uid != own.pod_uid:
        return verdict  # a successor that took the name: its death is its own
    lost = verdict if verdict.reason == NODE_LOST else node_lost(case)
    if lost is not None:
        # The node died with the process, so no kubelet carried the eviction out (the pod may
        # still be gone, deleted after its grace): the node's loss is the cause, and its rule
        # counts or refunds the attempt; the restart is a footnote.
        note = (
            f"{own.describe()} for {own.cause.value}/{own.reason}, but its node was lost"
            " before the restart took effect"
        )
        return replace(lost, message=f"{lost.message}; {note}")
    return Verdict(
        own.cause,
        own.reason,
        f"{own.message}; {own.describe()}",
        verdict.evidence_age,
        own_action=Action.RESTART_POD,
    )


def decide(obs: Observation) -> Verdict:
    """The verdict of the first rule that fires; Healthy when none does."""
    case = build_case(obs)
    verdict = next((v for rule in RULES if (v := rule(case)) is not None), None)
    if verdict is None:
        verdict = healthy(case)
    verdict = own_restart(case, verdict)
    found = notes(case, verdict)
    if not found:
        return verdict
    return replace(verdict, message=f"{verdict.message}; {'; '.join(found)}", notes=found)
