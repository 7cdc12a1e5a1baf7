"""Which step of a cause's rule applies now: the action, or `then` once the action failed.

The planner keeps no memory of what it did; it reads durable evidence that the first step is
under way, so an operator restart (or a second operator) neither loses nor repeats a step:
- Cancel: River's own `cancel_attempted_at` in the job's metadata (JobFacts.cancel_requested_age).
- RestartPod: the pod's deletionTimestamp. Kubernetes sets it to the end of the grace period,
  so `after` counts from the moment the kubelet should have killed the containers.
Retry and Discard end the attempt; nothing follows them.
"""

from dataclasses import dataclass
from datetime import datetime

from lifeguard.model.actions import ActionRule
from lifeguard.model.duration import format_duration, parse_duration
from lifeguard.model.enums import Action
from lifeguard.model.observation import Observation


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    escalated: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class Wait:
    """The step is under way; nothing to send in this scan."""

    action: Action
    why: str


def under_way(action: Action, obs: Observation, now: datetime) -> float | None:
    """Seconds since `action` was started for this attempt, or None if it was not."""
    if action is Action.CANCEL:
        age = obs.job.cancel_requested_age
        # A cancel requested before this attempt started belongs to an earlier attempt.
        if age is not None and age <= obs.job.running_for:
            return age
        return None
    if action is Action.RESTART_POD:
        pod = obs.pod
        if pod is not None and pod.deletion_timestamp is not None and not pod.gone:
            return (now - pod.deletion_timestamp).total_seconds()
        return None
    return None


def _since(action: Action, age: float) -> str:
    if action is Action.RESTART_POD:
        if age < 0:
            return f"the pod is terminating (grace period ends in {format_duration(-age)})"
        return f"the pod is still terminating {format_duration(age)} after its grace period"
    return f"{action.value} requested {format_duration(max(age, 0.0))} ago"


def next_step(rule: ActionRule, obs: Observation, now: datetime) -> Step | Wait:
    first = rule.action
    age = under_way(first, obs, now)
    if age is None:
        return Step(first, escalated=False)
    then = rule.then
    if then is None or rule.after is None:
        return Wait(first, f"{_since(first, age)}; no escalation configured")
    after = parse_duration(rule.after)
    if age < after:
        left = format_duration(after - age)
        return Wait(first, f"{_since(first, age)}; {then.value} in {left} if still running")
    then_age = under_way(then, obs, now)
    if then_age is not None:
        return Wait(then, f"escalated: {_since(then, then_age)}")
    return Step(
        then,
        escalated=True,
        note=f"{_since(first, age)} and the attempt still runs (after {rule.after})",
    )
