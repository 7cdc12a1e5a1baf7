"""Rule 5 of the verdict order: the job's node was lost, and the note on a late kubelet.

Two kinds of evidence: the cluster says the node is gone or NotReady (or the taint manager is
deleting the pod) while the job's beat is stale; or, before the node controller says anything,
the node's kubelet Lease is late and every job of the policy on the node went quiet
(`lifeguard.verdict.nodes`). A late Lease whose workers still beat is no loss; the heartbeat
rules then say so in their message (`lease_note`).
"""

from lifeguard.model.enums import Cause
from lifeguard.verdict.case import Case
from lifeguard.verdict.nodes import (
    Lease,
    lease_late_for,
    lease_state,
    own_beats,
    quiet_after,
    quiet_for,
)
from lifeguard.verdict.text import seconds
from lifeguard.verdict.types import Verdict

# The reason of every verdict that blames a lost node (its Lease, its NotReady status, the taint
# manager's deletion).
NODE_LOST = "NodeLost"


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


def lease_note(case: Case) -> str | None:
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
