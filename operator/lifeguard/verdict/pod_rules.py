"""Rules 1-4 of the verdict order: what the pod says about the process that ran the job.

Pod evidence (the kernel's OOM kill, a disruption, a deleted pod, a container that ended or
restarted under the client, a Failed/Succeeded pod) holds whatever the beats say: a dead process
cannot beat, and a fresh beat may just not have aged yet. Why the rules come in this order is
in `lifeguard.verdict.rules`.
"""

from dataclasses import replace
from datetime import datetime

from lifeguard.model.enums import Cause
from lifeguard.model.observation import OwnerJobFacts, PodFacts
from lifeguard.verdict.case import Case, age_of
from lifeguard.verdict.evidence import (
    TERMINAL_PHASES,
    disruption_reason,
    ending_of,
    worker_containers,
)
from lifeguard.verdict.text import ago, seconds
from lifeguard.verdict.types import Verdict


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
    age = age_of(case, death.at)
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
        age_of(case, _pod_end(case, pod)),
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
        age_of(case, _pod_end(case, pod)),
    )
