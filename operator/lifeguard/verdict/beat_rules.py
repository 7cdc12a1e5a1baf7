"""Rules 6, 7, 10 and 11 of the verdict order: what the job's beat says when nothing worse does.

A stale beat blames the worker's pod when it is known and alive (Unresponsive: a frozen process,
restarted rather than cancelled), or nothing when no pod is attributable (Stale); no beat yet
within the startup grace is Starting; anything else is Healthy. A late kubelet Lease whose
workers still beat is noted, not judged (`node_rules.lease_note`). Why the rules come in this
order is in `lifeguard.verdict.rules`.
"""

from lifeguard.model.enums import Cause
from lifeguard.verdict.case import Case
from lifeguard.verdict.heartbeat import Beat
from lifeguard.verdict.node_rules import lease_note
from lifeguard.verdict.text import seconds
from lifeguard.verdict.types import Verdict


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
    lease = lease_note(case)
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
    elif lease := lease_note(case):
        notes.append(lease)
    note = f" ({'; '.join(notes)})" if notes else ""
    return Verdict(Cause.HEALTHY, reason, f"{case.where} is working: {said}{note}")
