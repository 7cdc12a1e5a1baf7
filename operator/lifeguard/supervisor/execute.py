"""Carries out a cycle's actions: fenced database writes in batches, uid-fenced evictions.

One table says how each action is written. Each outcome says whether the write applied; a write
whose fence did not match means the job moved on (completed, rescued by River, fetched again)
or the pod was replaced since the scan, which is exactly what the fences exist for: nothing is
done twice, and no successor is touched.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from lifeguard.cluster.kube import ApiserverUnreachable, ClusterError, EvictionResult, KubeClient
from lifeguard.model.enums import Action
from lifeguard.model.own_action import OwnAction
from lifeguard.plan import PlannedAction
from lifeguard.reconcile import Outcome, Result
from lifeguard.river import actions as river_actions
from lifeguard.river.database import RiverDatabase
from lifeguard.river.errors import DatabaseError
from lifeguard.river.heartbeats import HeartbeatLocation


def always() -> bool:
    return True


class LeadershipLost(Exception):
    """The replica's leadership ended before a batch: nothing more is written.

    `outcomes`: what the batches before it did, which the replica still says where it may (its
    log and metrics); it writes no Event or status any more."""

    def __init__(self, message: str, outcomes: Sequence[Outcome] = ()) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the actions of one policy go."""

    db: RiverDatabase
    schema: str | None
    kube: KubeClient
    namespace: str
    # The leadership guard, asked before every batch: a leader whose term ran out by its own
    # clock (frozen, cut off from the apiserver) must not write what it decided before.
    may_act: Callable[[], bool] = field(default=always)
    # Where the policy's workers keep progress: a retry, cancel or discard copies it into
    # lifeguard:resume, for the next attempt (Lifeguard's retry or a user's).
    heartbeats: HeartbeatLocation | None = None


Writer = Callable[[Sequence[PlannedAction], Target], Awaitable[list[Outcome]]]


def _error_text(action: PlannedAction) -> str:
    return river_actions.lifeguard_error(str(action.cause), action.reason, action.message)


async def _retry(actions: Sequence[PlannedAction], to: Target) -> list[river_actions.Applied]:
    requests = [
        river_actions.RetryRequest(
            job_id=a.job_id,
            attempted_at=a.attempted_at,
            reason=_error_text(a),
            backoff=a.backoff,
            refund_attempt=not a.count_attempt,
        )
        for a in actions
    ]
    return await river_actions.retry_many(
        to.db, requests, schema=to.schema, resume_from=to.heartbeats
    )


async def _cancel(actions: Sequence[PlannedAction], to: Target) -> list[river_actions.Applied]:
    # River's own errors entry will only say the job was cancelled: say why, at once (the job
    # then ends through River, out of Lifeguard's sight).
    requests = [
        river_actions.CancelRequest(
            a.job_id,
            a.attempted_at,
            river_actions.lifeguard_error(
                str(a.cause), a.reason, f"{a.message}; Lifeguard cancelled the job"
            ),
        )
        for a in actions
    ]
    return await river_actions.cancel_many(
        to.db, requests, schema=to.schema, resume_from=to.heartbeats
    )


async def _discard(actions: Sequence[PlannedAction], to: Target) -> list[river_actions.Applied]:
    requests = [
        river_actions.DiscardRequest(a.job_id, a.attempted_at, _error_text(a)) for a in actions
    ]
    return await river_actions.discard_many(
        to.db, requests, schema=to.schema, resume_from=to.heartbeats
    )


def _fenced(
    write: Callable[[Sequence[PlannedAction], Target], Awaitable[list[river_actions.Applied]]],
) -> Writer:
    """One batched statement fenced per job by (id, state running, attempted_at)."""

    async def run(actions: Sequence[PlannedAction], to: Target) -> list[Outcome]:
        try:
            applied = await write(actions, to)
        except DatabaseError as exc:
            return [Outcome(a, Result.FAILED, str(exc)) for a in actions]
        ids = {a.job_id for a in applied}
        return [Outcome(a, Result.APPLIED if a.job_id in ids else Result.FENCED) for a in actions]

    return run


def _restart_record(action: PlannedAction) -> river_actions.ActionRecord:
    pod = action.pod
    own = OwnAction(
        Action.RESTART_POD,
        action.cause,
        action.reason,
        action.message,
        pod=pod.name if pod is not None else None,
        pod_uid=pod.uid if pod is not None else "",
        namespace=pod.namespace if pod is not None else "",
    )
    return river_actions.ActionRecord(action.job_id, action.attempted_at, own.to_json())


async def _record_restarts(
    actions: Sequence[PlannedAction], to: Target
) -> tuple[list[PlannedAction], list[Outcome]]:
    """Writes, fenced on each attempt, that Lifeguard restarts the job's pod and why, before
    it does: the pod's death then keeps its cause (verdict.rules.own_restart), across an
    operator restart too. A job that moved on is not acted on; without the record (the
    database failed) the pod is not evicted either."""
    with_pods = [a for a in actions if a.pod is not None]
    records = [_restart_record(a) for a in with_pods]
    try:
        applied = await river_actions.record_actions_many(to.db, records, schema=to.schema)
    except DatabaseError as exc:
        return [], [Outcome(a, Result.FAILED, str(exc)) for a in with_pods]
    ids = {a.job_id for a in applied}
    moved_on = [Outcome(a, Result.FENCED) for a in with_pods if a.job_id not in ids]
    return [a for a in with_pods if a.job_id in ids], moved_on


@dataclass(frozen=True, slots=True)
class _Eviction:
    result: Result
    detail: str
    # The apiserver surely did not evict the pod: its restart record must not stay.
    refused: bool


async def _evict_one(to: Target, name: str, uid: str) -> _Eviction:
    try:
        evicted = await to.kube.evict_pod(to.namespace, name, uid)
    except ApiserverUnreachable as exc:
        # A lost answer may hide an accepted eviction: the record stays, as if it was.
        return _Eviction(Result.FAILED, str(exc), refused=False)
    except ClusterError as exc:
        return _Eviction(Result.FAILED, str(exc), refused=True)
    result, detail = _EVICTION_RESULTS[evicted](name)
    return _Eviction(result, detail, refused=evicted is not EvictionResult.EVICTED)


async def _evict(actions: Sequence[PlannedAction], to: Target) -> list[Outcome]:
    """One eviction per pod instance, however many of its jobs asked for it."""
    evictions: dict[tuple[str, str], _Eviction] = {}
    recorded, outcomes = await _record_restarts(actions, to)
    outcomes += [Outcome(a, Result.FAILED, "no pod to restart") for a in actions if a.pod is None]
    refused: list[Outcome] = []
    for action in recorded:
        if action.pod is None:
            continue
        key = (action.pod.name, action.pod.uid)
        if key not in evictions:
            evictions[key] = await _evict_one(to, *key)
        eviction = evictions[key]
        outcome = Outcome(action, eviction.result, eviction.detail)
        (refused if eviction.refused else outcomes).append(outcome)
    return outcomes + await _withdraw_records(refused, to)


async def _withdraw_records(refused: list[Outcome], to: Target) -> list[Outcome]:
    """Withdraws the records of restarts that did not happen (a PodDisruptionBudget refused the
    eviction, the pod was gone or replaced, the apiserver forbade it): only an accepted
    eviction's record may explain the pod's death, and a later death of a pod a PDB kept (its
    node lost, a user's deletion) keeps its own cause."""
    if not refused:
        return refused
    try:
        await river_actions.withdraw_actions_many(
            to.db, [_restart_record(o.decision) for o in refused], schema=to.schema
        )
    except DatabaseError as exc:
        return [replace(o, detail=f"{o.detail}; its restart record stays ({exc})") for o in refused]
    return refused


_EVICTION_RESULTS: dict[EvictionResult, Callable[[str], tuple[Result, str]]] = {
    EvictionResult.EVICTED: lambda pod: (Result.APPLIED, f"pod {pod} evicted"),
    EvictionResult.BLOCKED: lambda pod: (
        Result.BLOCKED,
        f"a PodDisruptionBudget keeps pod {pod} for now",
    ),
    EvictionResult.NOT_FOUND: lambda pod: (Result.FENCED, f"pod {pod} is already gone"),
    EvictionResult.REPLACED: lambda pod: (
        Result.FENCED,
        f"pod {pod} was replaced by a new pod of that name, which is left alone",
    ),
}


# How each action is written, in the order the kinds are written.
WRITERS: dict[Action, Writer] = {
    Action.RETRY: _fenced(_retry),
    Action.CANCEL: _fenced(_cancel),
    Action.DISCARD: _fenced(_discard),
    Action.RESTART_POD: _evict,
}


async def execute(actions: Sequence[PlannedAction], to: Target) -> list[Outcome]:
    """Writes every action; one failing kind of write does not stop the others.

    Raises LeadershipLost, before a batch, when this replica may no longer act.
    """
    by_action: dict[Action, list[PlannedAction]] = {}
    for action in actions:
        by_action.setdefault(action.action, []).append(action)
    outcomes: list[Outcome] = []
    for kind, write in WRITERS.items():
        if kind in by_action:
            if not to.may_act():
                pending = sum(len(batch) for batch in by_action.values())
                raise LeadershipLost(
                    f"{pending} actions not taken, {len(outcomes)} taken", outcomes
                )
            outcomes += await write(by_action.pop(kind), to)
    for kind, left in by_action.items():
        outcomes += [Outcome(a, Result.FAILED, f"no way to write {kind}") for a in left]
    return outcomes
