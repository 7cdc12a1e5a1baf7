"""At most N actions in any sliding 60-second window of the injected clock, for the actions on
jobs whose process may still run.

The limit guards against a wrong picture acting on many living jobs at once (cancels, pod
restarts, retries judged by beats or run time). A retry or discard of a job whose pod or
process is dead touches no living process: deferring it only leaves the job waiting, which is
what a burst of deaths (a node, a rollout, a drain) must not cost. Such actions neither wait
for the limit nor use it up, as the circuit breaker lets pod evidence act: the limit's minute
stays whole for the actions it is there to slow down, however many pods just died.
"""

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from lifeguard.model.enums import Action, Cause
from lifeguard.plan.types import PlannedAction

WINDOW = timedelta(seconds=60)

# Causes that the verdict only gives on evidence that the job's process is gone: its container
# ended or restarted, its pod is dead or deleted, or its node is lost.
PROCESS_GONE = frozenset(
    {Cause.INFRASTRUCTURE_DEATH, Cause.RESOURCE_EXHAUSTED, Cause.APPLICATION_CRASH}
)
# Actions that only end the attempt in the database: nothing is sent to a process or a pod.
ENDS_ATTEMPT = frozenset({Action.RETRY, Action.DISCARD})


def in_window(times: tuple[datetime, ...], now: datetime) -> tuple[datetime, ...]:
    """The times still inside the window ending now (a clock going back keeps them)."""
    return tuple(t for t in times if now - t < WINDOW)


def budget(times: tuple[datetime, ...], now: datetime, per_minute: int) -> int:
    return max(0, per_minute - len(in_window(times, now)))


def never_deferred(action: PlannedAction, process_gone: bool) -> bool:
    """Whether the action ends an attempt whose process is proven gone (`process_gone`: the
    verdict says so beyond its cause, as for a pod Lifeguard restarted itself)."""
    return action.action in ENDS_ATTEMPT and (process_gone or action.cause in PROCESS_GONE)


def within_budget(
    candidates: Sequence[PlannedAction], exempt: Collection[int], allowed: int
) -> tuple[list[PlannedAction], list[PlannedAction], int]:
    """(taken, deferred, limited taken): every candidate whose job id is in `exempt`, and the
    first others (by their order) that fit in `allowed`; the last is how many of those others
    were taken, what the window records."""
    taken: list[PlannedAction] = []
    deferred: list[PlannedAction] = []
    limited = 0
    for action in candidates:
        if action.job_id in exempt:
            taken.append(action)
        elif limited < allowed:
            taken.append(action)
            limited += 1
        else:
            deferred.append(action)
    return taken, deferred, limited
