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

The rules live by the evidence they read: `pod_rules` (1-4), `node_rules` (5), `beat_rules`
(6, 7, 10, 11) and `limit_rules` (8, 9), each on the `Case` (`verdict.case`). This module
holds their order, and what `decide` adds to the first verdict: Lifeguard's own restart of the
pod (`own_restart`) and the notes on sidecars and a failed Job.
"""

from dataclasses import replace

from lifeguard.model.client_id import client_prefix
from lifeguard.model.enums import Action, Cause
from lifeguard.model.observation import Observation
from lifeguard.model.own_action import parse_own_action
from lifeguard.verdict.beat_rules import healthy, stale, starting, unresponsive
from lifeguard.verdict.case import Case, Rule, build_case
from lifeguard.verdict.evidence import sidecar_notes
from lifeguard.verdict.limit_rules import overdue, stuck
from lifeguard.verdict.node_rules import NODE_LOST, node_lost
from lifeguard.verdict.pod_rules import oom_killed, pod_disrupted, pod_finished, process_gone
from lifeguard.verdict.types import Verdict

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
