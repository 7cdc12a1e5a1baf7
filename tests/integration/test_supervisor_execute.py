"""The executor's table on real PostgreSQL and River's schema: each action kind is written by
its fenced statement, and each outcome says truthfully whether it applied.

Evictions need an apiserver: tests/e2e/test_operator_reconcile.py covers them (uid fence).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import kubernetes
import pytest

from devenv import river_jobs as rj
from devenv.river import RiverDatabase as RiverDatabaseFactory
from lifeguard.cluster.kube import KubeClient
from lifeguard.model.enums import Action, Backoff, Cause
from lifeguard.plan import PlannedAction
from lifeguard.reconcile import Result
from lifeguard.river import RESUME_KEY, HeartbeatLocation, RiverDatabase, heartbeat_table_ddl
from lifeguard.supervisor.execute import LeadershipLost, Target, execute

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def river(river_database: RiverDatabaseFactory) -> tuple[str, str | None]:
    return rj.river_database_in(river_database, None), None


def decided(job_id: int, attempted_at: datetime, action: Action) -> PlannedAction:
    return PlannedAction(
        job_id=job_id,
        attempted_at=attempted_at,
        kind="sleep",
        queue="default",
        attempt=1,
        max_attempts=25,
        pod=None,
        node=None,
        cause=Cause.STUCK,
        reason="ProgressStale",
        message="no progress for 5m",
        action=action,
        count_attempt=True,
        backoff=Backoff.RIVER,
        escalated=False,
        dry_run=False,
    )


def target(db: RiverDatabase, schema: str | None) -> Target:
    # No apiserver is asked: none of these actions is an eviction.
    return Target(db, schema, KubeClient(kubernetes.client.ApiClient()), "jobs")


async def test_each_kind_is_written_by_its_fenced_statement(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    retried = rj.start_job(conn, schema)
    cancelled = rj.start_job(conn, schema)
    discarded = rj.start_job(conn, schema)
    moved_on = rj.start_job(conn, schema)
    rj.complete_job(conn, schema, moved_on[0])  # completed between the scan and the write
    stale = rj.start_job(conn, schema)
    actions = [
        decided(*retried, Action.RETRY),
        decided(*moved_on, Action.RETRY),
        decided(*cancelled, Action.CANCEL),
        decided(*discarded, Action.DISCARD),
        # A decision on an earlier attempt than the one running now.
        decided(stale[0], stale[1] - timedelta(minutes=5), Action.DISCARD),
    ]

    outcomes = await execute(actions, target(db, schema))

    by_job = {o.decision.job_id: o.result for o in outcomes}
    assert by_job == {
        retried[0]: Result.APPLIED,
        moved_on[0]: Result.FENCED,
        cancelled[0]: Result.APPLIED,
        discarded[0]: Result.APPLIED,
        stale[0]: Result.FENCED,
    }
    assert rj.job(conn, schema, retried[0])["state"] == "retryable"
    assert "cancel_attempted_at" in rj.job(conn, schema, cancelled[0])["metadata"]
    assert rj.job(conn, schema, discarded[0])["state"] == "discarded"
    assert rj.job(conn, schema, moved_on[0])["state"] == "completed"
    assert rj.job(conn, schema, stale[0])["state"] == "running"


async def test_retry_cancel_and_discard_copy_progress_from_the_policys_store(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    conn.execute(heartbeat_table_ddl(schema))
    kinds = (Action.RETRY, Action.CANCEL, Action.DISCARD)
    jobs = {action: rj.start_job(conn, schema) for action in kinds}
    for step, (job_id, _) in enumerate(jobs.values(), start=1):
        rj.beat(conn, schema, job_id, progress_ago=0.0, progress={"step": step})
    actions = [decided(*job, action) for action, job in jobs.items()]

    to = replace(target(db, schema), heartbeats=HeartbeatLocation())
    outcomes = await execute(actions, to)

    assert {o.result for o in outcomes} == {Result.APPLIED}
    resumes = [rj.job(conn, schema, job_id)["metadata"][RESUME_KEY] for job_id, _ in jobs.values()]
    assert [r["progress"] for r in resumes] == [{"step": 1}, {"step": 2}, {"step": 3}]


async def test_a_write_that_fails_is_failed_with_the_reason_and_touches_nothing(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job = rj.start_job(conn, schema)

    outcomes = await execute([decided(*job, Action.RETRY)], target(db, "no_such_schema"))

    [outcome] = outcomes
    assert outcome.result is Result.FAILED and "no_such_schema" in outcome.detail
    assert rj.job(conn, schema, job[0])["state"] == "running"


async def test_a_restart_without_a_pod_fails_without_asking_the_apiserver(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job = rj.start_job(conn, schema)

    [outcome] = await execute([decided(*job, Action.RESTART_POD)], target(db, schema))

    assert outcome.result is Result.FAILED and outcome.detail == "no pod to restart"


async def test_leadership_lost_between_batches_keeps_what_was_taken(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    # Retries are written before cancels; the leadership ends after the first batch. The
    # retry applied, and the loop still logs and counts it (no Event: it no longer leads); the
    # cancel is not written at all.
    retried = rj.start_job(conn, schema)
    spared = rj.start_job(conn, schema)
    asked: list[bool] = []

    def may_act() -> bool:
        asked.append(True)
        return len(asked) == 1

    to = replace(target(db, schema), may_act=may_act)
    with pytest.raises(LeadershipLost) as lost:
        await execute([decided(*spared, Action.CANCEL), decided(*retried, Action.RETRY)], to)

    assert [(o.decision.job_id, o.result) for o in lost.value.outcomes] == [
        (retried[0], Result.APPLIED)
    ]
    assert "1 actions not taken, 1 taken" in str(lost.value)
    assert rj.job(conn, schema, retried[0])["state"] in ("available", "retryable")
    assert rj.job(conn, schema, spared[0])["state"] == "running"
