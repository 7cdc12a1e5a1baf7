"""Verdicts + policy + safety state + now → the actions of one scan. Pure and deterministic.

Per job, in job-id order:
1. Healthy and Starting never act; a rule whose action is None only reports.
2. While the circuit breaker is open, heartbeat-derived causes (Unresponsive, Stale, Stuck)
   are held; pod-evidence causes still act.
3. The rule's step: its action, or `then` once the action has been under way for `after`
   (see escalation). A step already under way is never sent again. A job whose pod died
   because Lifeguard restarted it (the verdict says so) is retried at once, whatever the
   breaker says (the pod's death is pod evidence), by its cause's rule.
4. RestartPod needs a live pod; without one the job is retried instead. One eviction per pod:
   its other jobs wait for the restart to turn them into InfrastructureDeath. A pod that still
   beats for another job is not restarted: its process is alive (a frozen process silences
   every job's beats within one interval, so a real freeze waits at most that long), and the
   eviction would kill that healthy job too.
5. A retry that refunds the attempt counts it once the job was refunded maxInfraRetries times,
   so no job loops forever on refunds. A retry that River's rule turns into an end (a cancel
   was requested: cancelled; the last attempt counted: discarded) says so in its note.
Then the rate limit keeps the first actions (by job id) that fit in the sliding minute and
defers the rest; retries and discards of jobs whose process is proven gone (pod evidence, as
for the breaker) neither wait for the limit nor count in it (see ratelimit). DryRun marks
every action so the shell reports and never writes.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from lifeguard.model.actions import ActionRule, ActionsSpec
from lifeguard.model.enums import Action, Cause, Mode
from lifeguard.model.observation import Observation
from lifeguard.model.safety import SafetySpec
from lifeguard.plan.breaker import (
    HEARTBEAT_DERIVED,
    NONE_UNREAD,
    Unread,
    going_stale_after,
    read_breaker,
)
from lifeguard.plan.escalation import Step, Wait, next_step
from lifeguard.plan.ratelimit import budget, in_window, never_deferred, within_budget
from lifeguard.plan.types import (
    BeatingJob,
    HeldJob,
    Plan,
    PlanEvent,
    PlannedAction,
    PodRef,
    SafetyState,
)
from lifeguard.verdict import Verdict

Judged = tuple[Observation, Verdict]


class PolicyLike(Protocol):
    """What the planner reads of a JobPolicySpec."""

    @property
    def actions(self) -> ActionsSpec: ...

    @property
    def safety(self) -> SafetySpec: ...


def _held(obs: Observation, verdict: Verdict, action: Action, why: str) -> HeldJob:
    return HeldJob(obs.job.id, verdict.cause, verdict.reason, action, why)


def _pod_ref(obs: Observation) -> PodRef | None:
    pod = obs.pod
    return PodRef(pod.namespace, pod.name, pod.uid) if pod is not None else None


def _action(
    obs: Observation, verdict: Verdict, rule: ActionRule, step: Step, dry_run: bool
) -> PlannedAction:
    action, notes = step.action, [step.note] if step.note else []
    pod = obs.pod
    if action is Action.RESTART_POD and (pod is None or pod.gone):
        action = Action.RETRY
        notes.append("no pod to restart; retrying instead")
    count_attempt = True
    if action is Action.RETRY:
        count_attempt = rule.count_attempt
        refunds = obs.job.infra_retries
        if not count_attempt and refunds >= rule.max_infra_retries:
            count_attempt = True
            notes.append(
                f"the attempt was refunded {refunds} times already"
                f" (maxInfraRetries {rule.max_infra_retries}); this retry counts"
            )
        if (ends := _retry_ends(obs, count_attempt)) is not None:
            notes.append(ends)
    job = obs.job
    return PlannedAction(
        job_id=job.id,
        attempted_at=job.attempted_at,
        kind=job.kind,
        queue=job.queue,
        attempt=job.attempt,
        max_attempts=job.max_attempts,
        pod=_pod_ref(obs),
        node=pod.node_name if pod is not None else None,
        cause=verdict.cause,
        reason=verdict.reason,
        message=verdict.message,
        action=action,
        count_attempt=count_attempt,
        backoff=rule.backoff,
        escalated=step.escalated,
        dry_run=dry_run,
        evidence_age=max(0.0, verdict.evidence_age or 0.0),
        note="; ".join(notes),
    )


def _going_stale(obs: Observation, verdict: Verdict) -> bool:
    """A job judged Healthy whose beat has missed all but its last interval."""
    beat_age, limits = obs.job.beat_age, obs.thresholds
    if verdict.cause is not Cause.HEALTHY or beat_age is None:
        return False
    start = going_stale_after(limits.stale_after, limits.beat_interval)
    return start is not None and start <= beat_age <= limits.stale_after


def _beating_jobs(judged: Sequence[Judged]) -> dict[PodRef, tuple[int, ...]]:
    """The jobs whose beat is fresh, by the live pod that runs them."""
    found: dict[PodRef, tuple[int, ...]] = {}
    for obs, _ in judged:
        beat_age, ref = obs.job.beat_age, _pod_ref(obs)
        if ref is None or obs.pod is None or obs.pod.gone or beat_age is None:
            continue
        if beat_age <= obs.thresholds.stale_after:
            found[ref] = (*found.get(ref, ()), obs.job.id)
    return found


def _jobs(jobs: Sequence[BeatingJob]) -> str:
    """ "job 4" / "jobs 4 and 7 (policy b)" / "job 4, job 7 (policy b) and 3 more"."""
    ordered = sorted(jobs, key=lambda job: (job.policy, job.job_id))
    if all(not job.policy for job in ordered):
        ids = [job.job_id for job in ordered]
        if len(ids) == 1:
            return f"job {ids[0]}"
        if len(ids) == 2:
            return f"jobs {ids[0]} and {ids[1]}"
        return f"jobs {ids[0]}, {ids[1]} and {len(ids) - 2} more"
    named = [str(job) for job in ordered]
    if len(named) <= 2:
        return " and ".join(named)
    return f"{named[0]}, {named[1]} and {len(named) - 2} more"


def _retry_ends(obs: Observation, count_attempt: bool) -> str | None:
    """What River's rule makes of a retry that does not queue the job again, as the retry's
    statement writes it (river.actions.retry_many): a cancel requested ends the job cancelled
    (River's rescuer and completer never retry it), a counted last attempt discards it."""
    job = obs.job
    if job.cancel_requested_age is not None:
        return "a cancel was requested: River's rule ends the job cancelled, never retried"
    if count_attempt and job.attempt >= job.max_attempts:
        return (
            f"its attempts are used up ({job.attempt} of {job.max_attempts}):"
            " River's rule discards it"
        )
    return None


def plan(
    judged: Sequence[Judged],
    policy: PolicyLike,
    state: SafetyState,
    now: datetime,
    unread: Unread = NONE_UNREAD,
    *,
    beating_elsewhere: Mapping[PodRef, Sequence[BeatingJob]] | None = None,
) -> Plan:
    """The actions for one scan of one policy, the jobs held back and why, and the next state.

    `unread`: the running jobs a truncated scan did not read, for the circuit breaker.
    `beating_elsewhere`: jobs other policies last saw beating, by pod (overlapping policies
    on one worker's queues): a pod that still beats for any job is never restarted."""
    ordered = sorted(judged, key=lambda pair: pair[0].job.id)
    safety = policy.safety
    breaker = read_breaker(
        [verdict.cause for _, verdict in ordered],
        safety.circuit_breaker,
        state.circuit_open,
        unread,
        going_stale=sum(1 for obs, verdict in ordered if _going_stale(obs, verdict)),
    )
    dry_run = safety.mode is Mode.DRY_RUN
    candidates: list[PlannedAction] = []
    held: list[HeldJob] = []
    restarting: dict[PodRef, int] = {}
    beating = _beating_jobs(ordered)
    exempt: set[int] = set()  # job ids whose action the rate limit never defers
    for obs, verdict in ordered:
        rule = policy.actions.for_cause(verdict.cause) if verdict.acts else None
        if rule is None:
            continue
        if rule.action is Action.NONE:
            held.append(_held(obs, verdict, Action.NONE, "the policy's action is None"))
            continue
        if verdict.own_action is Action.RESTART_POD:
            # Lifeguard restarted the pod and it is dead: the job's process is gone, so the
            # retry follows at once, by the rule of the cause Lifeguard acted on.
            step: Step | Wait = Step(Action.RETRY, escalated=False)
        elif breaker.open and verdict.cause in HEARTBEAT_DERIVED:
            held.append(_held(obs, verdict, rule.action, breaker.why()))
            continue
        else:
            step = next_step(rule, obs, now)
        if isinstance(step, Wait):
            held.append(_held(obs, verdict, step.action, step.why))
            continue
        action = _action(obs, verdict, rule, step, dry_run)
        if action.action is Action.RESTART_POD and action.pod is not None:
            alive = [
                BeatingJob(job_id) for job_id in beating.get(action.pod, ()) if job_id != obs.job.id
            ] + [
                job
                for job in (beating_elsewhere or {}).get(action.pod, ())
                if job.job_id != obs.job.id
            ]
            if alive:
                why = (
                    f"pod {action.pod} still beats for {_jobs(alive)}: its process is alive,"
                    f" and a restart would end {'that job' if len(alive) == 1 else 'them'} too"
                )
                held.append(_held(obs, verdict, Action.RESTART_POD, why))
                continue
            if action.pod in restarting:
                why = f"pod {action.pod} is being restarted for job {restarting[action.pod]}"
                held.append(_held(obs, verdict, Action.RESTART_POD, why))
                continue
            restarting[action.pod] = action.job_id
        if never_deferred(action, process_gone=verdict.own_action is Action.RESTART_POD):
            exempt.add(action.job_id)
        candidates.append(action)

    allowed = budget(state.recent_actions, now, safety.max_actions_per_minute)
    actions, deferred, limited = within_budget(candidates, exempt, allowed)
    events = [breaker.event] if breaker.event is not None else []
    if deferred and not state.rate_limited:
        events.append(
            PlanEvent(
                "ActionsRateLimited",
                f"{len(deferred)} actions deferred to later scans: at most"
                f" {safety.max_actions_per_minute} actions per minute (retries of jobs whose"
                " process is gone are never deferred)",
                warning=True,
            )
        )
    next_state = SafetyState(
        circuit_open=breaker.open,
        breaker_message=breaker.why() if breaker.open else "",
        rate_limited=bool(deferred),
        recent_actions=in_window(state.recent_actions, now) + (now,) * limited,
    )
    return Plan(
        actions=actions,
        deferred=deferred,
        held=held,
        state=next_state,
        events=events,
        beating=beating,
    )
