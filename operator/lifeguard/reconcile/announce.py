"""Telling people what a scan decided: recent actions, Events, metrics and log lines, as data.

Owns the rule "each decision is announced once per job attempt and action": a DryRun decision
(or an action that keeps failing) is taken again every scan, and repeating it would flood
Events and inflate totals. The memory of what was announced lives in ReconcileState, once.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lifeguard.model.enums import Action
from lifeguard.model.status import RecentAction
from lifeguard.plan import Plan, PlannedAction
from lifeguard.reconcile.effects import Event, LogLine, Metric, Outcome, Result, inc, observe
from lifeguard.reconcile.state import Announced
from lifeguard.reconcile.status import StatusBook

MAX_EVENTS_PER_SCAN = 20

_VERBS = {
    Action.RETRY: ("JobRetried", "retried"),
    Action.CANCEL: ("JobCancelled", "asked River to cancel"),
    Action.DISCARD: ("JobDiscarded", "discarded"),
    Action.RESTART_POD: ("PodRestarted", "restarted the pod of"),
}


@dataclass
class Announcement:
    """What announcing one scan's decisions produced; `announced` is the memory to keep."""

    announced: set[Announced]
    events: list[Event] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)


def announce(
    plan: Plan,
    outcomes: Sequence[Outcome],
    book: StatusBook,
    *,
    now: datetime,
    running: set[int],
    announced: frozenset[Announced],
    policy_name: str,
) -> Announcement:
    """Records each decision in `book` once per attempt; Events, metrics and logs to emit."""
    out = Announcement(announced=set(announced))
    by_job = {o.decision.job_id: o for o in outcomes}
    action_events = 0
    for action in plan.actions:
        outcome = by_job.get(action.job_id)
        if action.dry_run:
            result, applied = "dry_run", False
        else:
            result = outcome.result.value if outcome else Result.FAILED.value
            applied = outcome is not None and outcome.result is Result.APPLIED
        key = (action.job_id, action.attempted_at, action.action)
        repeated = not applied and key in out.announced
        # Every write attempt counts; a dry-run decision only the first time it is made.
        if not (repeated and action.dry_run):
            out.metrics.append(inc("actions", action.action.value, action.cause.value, result))
        if outcome is not None and outcome.result is Result.FAILED:
            out.logs.append(
                LogLine(
                    "warning",
                    f"job {action.job_id}: {action.action} failed: {outcome.detail}",
                    (("job_id", action.job_id), ("result", result)),
                )
            )
        if repeated:
            continue
        out.announced.add(key)
        if applied:
            out.metrics.append(
                observe(
                    "rescue_seconds", (action.evidence_age,), action.cause.value, per_policy=False
                )
            )
        book.record(
            RecentAction(
                time=now,
                job_id=action.job_id,
                kind=action.kind,
                pod=action.pod.name if action.pod else None,
                cause=action.cause,
                reason=action.reason,
                action=action.action,
                applied=applied,
            )
        )
        out.logs.append(
            LogLine(
                "info",
                f"job {action.job_id} ({action.kind}): {action.cause}/{action.reason}"
                f" -> {action.action}: {result}",
                (
                    ("job_id", action.job_id),
                    ("cause", str(action.cause)),
                    ("action", str(action.action)),
                    ("result", result),
                ),
            )
        )
        if action_events < MAX_EVENTS_PER_SCAN and (applied or action.dry_run):
            action_events += 1
            out.events += action_events_of(action, policy_name)
    for deferred in plan.deferred:
        out.metrics.append(inc("actions", deferred.action.value, deferred.cause.value, "deferred"))
    for event in plan.events:
        out.events.append(
            Event("Warning" if event.warning else "Normal", event.reason, event.message)
        )
        # In the log too: whoever reads it for a job that waited learns that the safety
        # rules held it (rate limit, breaker), not a missed death. Once per change, as Events.
        out.logs.append(
            LogLine("warning" if event.warning else "info", f"{event.reason}: {event.message}")
        )
    # Forget what concerns jobs no longer running, so memory stays bounded.
    out.announced = {a for a in out.announced if a[0] in running}
    return out


def action_events_of(action: PlannedAction, policy_name: str) -> list[Event]:
    """The Event on the policy for one decision, and one on the pod it restarts."""
    reason, verb = _VERBS.get(action.action, ("JobActedOn", "acted on"))
    pod = action.pod
    where = f" (pod {pod.name})" if pod else ""
    text = f"{action.cause}/{action.reason}: {action.message}"
    if action.note:
        text += f" ({action.note})"
    if action.dry_run:
        return [
            Event(
                "Normal",
                f"DryRun{reason}",
                f"DryRun: would have {verb} job {action.job_id}{where}. {text}",
            )
        ]
    events = [
        Event(
            "Normal", reason, f"Lifeguard {verb} job {action.job_id} ({action.kind}){where}. {text}"
        )
    ]
    if action.action is Action.RESTART_POD and pod is not None:
        events.append(
            Event(
                "Warning",
                "PodRestarted",
                f"Evicted by River Lifeguard (JobPolicy {policy_name}): job {action.job_id}"
                f" is {action.cause}/{action.reason}.",
                pod=pod,
            )
        )
    return events
