"""Node loss from two silences at once: the kubelet's Lease and every beat on the node.

A lost node stops its kubelet renewing the node's Lease and silences every worker on it at the
same moment. Either alone means something else: a kubelet that is slow or cut off from the
apiserver while its workers still write beats is a partition the jobs survive; beats that stop
while the Lease renews are a worker problem (Unresponsive), not node loss. Together they are
certain well before the node controller's grace period (50 s by default) marks the node
NotReady, and before a job's own beat turns stale (three intervals).
"""

from collections.abc import Sequence
from dataclasses import replace
from enum import StrEnum

from lifeguard.model.observation import NodeBeats, NodeFacts, Observation, Thresholds

# A kubelet renews its Lease every quarter of the Lease's duration (the kubelet's
# renewIntervalFraction 0.25: 10 s of the default 40 s), with a little jitter.
LEASE_RENEW_FRACTION = 0.25
# Late: a renewal missed by more than one renew interval (age > 2 renew intervals, 20 s by
# default). The operator sees a renewal only when it polls (every 5 s), so a healthy kubelet's
# Lease can look up to ~15 s old; the second interval is that margin, and more.
LEASE_LATE_RENEWALS = 2.0
# Silent: three renewals missed (30 s by default), as good as lost on the Lease alone.
LEASE_SILENT_RENEWALS = 3.0
# A job is quiet once its last beat is older than two beat intervals (its stale threshold, if
# shorter): a live worker beats every interval, so two missed in a row are not jitter.
QUIET_BEAT_INTERVALS = 2.0


class Lease(StrEnum):
    """How the node's kubelet Lease looks."""

    UNKNOWN = "Unknown"  # not watched (no permission) or no duration
    FRESH = "Fresh"
    LATE = "Late"
    SILENT = "Silent"


def lease_state(node: NodeFacts) -> Lease:
    if node.lease_age is None or not node.lease_duration:
        return Lease.UNKNOWN
    renew = LEASE_RENEW_FRACTION * node.lease_duration
    if node.lease_age > LEASE_SILENT_RENEWALS * renew:
        return Lease.SILENT
    if node.lease_age > LEASE_LATE_RENEWALS * renew:
        return Lease.LATE
    return Lease.FRESH


def lease_late_for(node: NodeFacts) -> float:
    """Seconds the Lease has been late (0 when it is not)."""
    if node.lease_age is None or not node.lease_duration:
        return 0.0
    late_after = LEASE_LATE_RENEWALS * LEASE_RENEW_FRACTION * node.lease_duration
    return max(0.0, node.lease_age - late_after)


def quiet_after(thresholds: Thresholds) -> float:
    """The beat age from which a job counts as quiet for node loss."""
    if thresholds.beat_interval is None:
        return thresholds.stale_after
    return min(QUIET_BEAT_INTERVALS * thresholds.beat_interval, thresholds.stale_after)


def quiet_for(obs: Observation) -> float | None:
    """Seconds since the job went quiet; None while it beats (or has not started beating yet:
    a job within its startup grace is no evidence that its node is gone)."""
    job = obs.job
    if job.beat_age is None and job.running_for < obs.thresholds.startup_grace:
        return None
    silence = job.beat_age if job.beat_age is not None else job.running_for
    overdue = silence - quiet_after(obs.thresholds)
    return overdue if overdue > 0 else None


def own_beats(obs: Observation) -> NodeBeats:
    """The node's beats as far as this job alone tells (no other job on the node is known)."""
    quiet = quiet_for(obs)
    return NodeBeats(jobs=1, beating=0 if quiet is not None else 1, quiet_for=quiet)


def with_node_beats(observations: Sequence[Observation]) -> list[Observation]:
    """The observations, each with the summary of its node's jobs among them.

    Only jobs of workers that beat and whose pod is known count: a job without a pod has no
    node, and a job without beats is silent by design. Jobs of other policies are not in the
    scan, so a node is judged by this policy's jobs on it.
    """
    quiet: dict[str, list[float | None]] = {}
    for obs in observations:
        if obs.beats_expected and obs.pod is not None and obs.pod.node_name:
            quiet.setdefault(obs.pod.node_name, []).append(quiet_for(obs))
    summaries: dict[str, NodeBeats] = {}
    for name, ages in quiet.items():
        beating = sum(1 for age in ages if age is None)
        summaries[name] = NodeBeats(
            jobs=len(ages),
            beating=beating,
            quiet_for=None if beating else min(age for age in ages if age is not None),
        )
    result = []
    for obs in observations:
        node = obs.pod.node_name if obs.pod is not None else None
        summary = summaries.get(node) if node else None
        result.append(replace(obs, node_beats=summary) if summary is not None else obs)
    return result
