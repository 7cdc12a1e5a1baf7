"""Carries out a plan: fenced database writes in batches, evictions through the Eviction API.

Each outcome says whether the write applied. A fenced write that did not apply means the job
moved on (completed, rescued by River, fetched again) between the scan and the write, which is
exactly the case the fence exists for: nothing is done twice.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from lifeguard.cluster.kube import ClusterError, EvictionResult, KubeClient
from lifeguard.model.enums import Action
from lifeguard.plan import PlannedAction
from lifeguard.river import actions as river_actions
from lifeguard.river.database import RiverDatabase
from lifeguard.river.errors import DatabaseError

log = logging.getLogger(__name__)


# What the plan decided for one job.
Decision = PlannedAction


class Result(StrEnum):
    APPLIED = "applied"
    # The fence did not match: the job moved on since the scan.
    FENCED = "fenced"
    # A PodDisruptionBudget refused the eviction for now.
    BLOCKED = "blocked"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    result: Result
    detail: str = ""


async def execute(
    decisions: Sequence[Decision],
    *,
    db: RiverDatabase,
    schema: str | None,
    kube: KubeClient,
    namespace: str,
) -> list[Outcome]:
    """Applies every decision; one failing kind of write does not stop the others."""
    by_action: dict[Action, list[Decision]] = {}
    for decision in decisions:
        by_action.setdefault(decision.action, []).append(decision)
    outcomes: list[Outcome] = []
    outcomes += await _retries(by_action.get(Action.RETRY, []), db, schema)
    outcomes += await _cancels(by_action.get(Action.CANCEL, []), db, schema)
    outcomes += await _discards(by_action.get(Action.DISCARD, []), db, schema)
    outcomes += await _restarts(by_action.get(Action.RESTART_POD, []), kube, namespace)
    return outcomes


def _error_text(decision: Decision) -> str:
    return river_actions.lifeguard_error(str(decision.cause), decision.reason, decision.message)


def _sorted(applied_ids: set[int], decisions: Sequence[Decision]) -> list[Outcome]:
    return [
        Outcome(d, Result.APPLIED if d.job_id in applied_ids else Result.FENCED) for d in decisions
    ]


async def _retries(
    decisions: Sequence[Decision], db: RiverDatabase, schema: str | None
) -> list[Outcome]:
    if not decisions:
        return []
    requests = [
        river_actions.RetryRequest(
            job_id=d.job_id,
            attempted_at=d.attempted_at,
            reason=_error_text(d),
            backoff=d.backoff,
            refund_attempt=not d.count_attempt,
        )
        for d in decisions
    ]
    try:
        applied = await river_actions.retry_many(db, requests, schema=schema)
    except DatabaseError as exc:
        return [Outcome(d, Result.FAILED, str(exc)) for d in decisions]
    return _sorted({a.job_id for a in applied}, decisions)


async def _cancels(
    decisions: Sequence[Decision], db: RiverDatabase, schema: str | None
) -> list[Outcome]:
    if not decisions:
        return []
    requests = [river_actions.CancelRequest(d.job_id, d.attempted_at) for d in decisions]
    try:
        applied = await river_actions.cancel_many(db, requests, schema=schema)
    except DatabaseError as exc:
        return [Outcome(d, Result.FAILED, str(exc)) for d in decisions]
    return _sorted({a.job_id for a in applied}, decisions)


async def _discards(
    decisions: Sequence[Decision], db: RiverDatabase, schema: str | None
) -> list[Outcome]:
    if not decisions:
        return []
    requests = [
        river_actions.DiscardRequest(d.job_id, d.attempted_at, _error_text(d)) for d in decisions
    ]
    try:
        applied = await river_actions.discard_many(db, requests, schema=schema)
    except DatabaseError as exc:
        return [Outcome(d, Result.FAILED, str(exc)) for d in decisions]
    return _sorted({a.job_id for a in applied}, decisions)


async def _restarts(
    decisions: Sequence[Decision], kube: KubeClient, namespace: str
) -> list[Outcome]:
    """One eviction per pod, however many of its jobs asked for it."""
    results: dict[str, tuple[Result, str]] = {}
    outcomes = []
    for decision in decisions:
        if decision.pod is None:
            outcomes.append(Outcome(decision, Result.FAILED, "no pod to restart"))
            continue
        pod = decision.pod.name
        if pod not in results:
            try:
                evicted = await kube.evict_pod(namespace, pod)
            except ClusterError as exc:
                results[pod] = (Result.FAILED, str(exc))
            else:
                results[pod] = {
                    EvictionResult.EVICTED: (Result.APPLIED, f"pod {pod} evicted"),
                    EvictionResult.BLOCKED: (
                        Result.BLOCKED,
                        f"a PodDisruptionBudget keeps pod {pod} for now",
                    ),
                    EvictionResult.NOT_FOUND: (Result.FENCED, f"pod {pod} is already gone"),
                }[evicted]
        result, detail = results[pod]
        outcomes.append(Outcome(decision, result, detail))
    return outcomes
