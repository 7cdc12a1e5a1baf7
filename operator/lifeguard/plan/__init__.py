"""Verdicts + policy + safety state → actions: escalation, circuit breaker, rate limit, DryRun."""

from lifeguard.plan.breaker import Unread
from lifeguard.plan.planner import Judged, PolicyLike, plan
from lifeguard.plan.types import (
    BeatingJob,
    HeldJob,
    Plan,
    PlanEvent,
    PlannedAction,
    PodRef,
    SafetyState,
)

__all__ = [
    "BeatingJob",
    "HeldJob",
    "Judged",
    "Plan",
    "PlanEvent",
    "PlannedAction",
    "PodRef",
    "PolicyLike",
    "SafetyState",
    "Unread",
    "plan",
]
