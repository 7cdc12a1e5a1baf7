"""The heartbeat table stays bounded with real River workers: a worker removes the row of each
job it finished, and the operator's pruner removes what a crashed worker left behind."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from psycopg import sql

# The real worker's helpers (pytest puts this folder on sys.path).
from test_river_worker import river_worker

from devenv import river_jobs as rj
from devenv.river import RiverDatabase as RiverDatabaseFactory
from devenv.waiting import wait_for
from lifeguard.metrics import Metrics
from lifeguard.model.enums import Backoff
from lifeguard.river import (
    DiscardRequest,
    RetryRequest,
    RiverDatabase,
    discard_many,
    heartbeat_table_ddl,
    retry_many,
)
from lifeguard.supervisor.prune import HeartbeatPruner

pytestmark = pytest.mark.integration

SCHEMA = None


@pytest.fixture
def river(river_database: RiverDatabaseFactory) -> tuple[str, str | None]:
    dsn = river_database(SCHEMA)
    with rj.connect(dsn) as conn:
        conn.execute(heartbeat_table_ddl(SCHEMA))
    return dsn, SCHEMA


def heartbeat_rows(conn: rj.Conn) -> set[tuple[int, int]]:
    rows = conn.execute(
        sql.SQL("SELECT job_id, attempt FROM {t}").format(t=rj.table(SCHEMA, "river_job_heartbeat"))
    ).fetchall()
    return {(row["job_id"], row["attempt"]) for row in rows}


def running_jobs(conn: rj.Conn) -> set[tuple[int, int]]:
    rows = conn.execute(
        sql.SQL("SELECT id, attempt FROM {t} WHERE state = 'running'").format(
            t=rj.table(SCHEMA, "river_job")
        )
    ).fetchall()
    return {(row["id"], row["attempt"]) for row in rows}


def states(conn: rj.Conn, ids: list[int]) -> list[str]:
    return [rj.job(conn, SCHEMA, job_id)["state"] for job_id in ids]


async def test_after_jobs_complete_crash_and_are_retried_only_running_jobs_keep_rows(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
) -> None:
    dsn, _ = river
    quick = [rj.insert_job(conn, SCHEMA, kind="sleep", args={"seconds": 0.1}) for _ in range(30)]
    doomed = [rj.insert_job(conn, SCHEMA, kind="sleep", args={"seconds": 3}) for _ in range(10)]

    # Worker A finishes the quick jobs, then dies (SIGKILL) in the middle of the others.
    with river_worker(state_dir, worker_binary, dsn, SCHEMA, MAX_WORKERS="40") as worker_a:
        wait_for(
            lambda: (
                all(s == "completed" for s in states(conn, quick))
                and all(s == "running" for s in states(conn, doomed))
            ),
            30,
            "the quick jobs to complete while the others run",
            daemon=worker_a,
        )
        wait_for(
            lambda: heartbeat_rows(conn) == running_jobs(conn),
            10,
            "worker A to remove the rows of the jobs it completed",
            daemon=worker_a,
        )
        worker_a.stop(signal.SIGKILL)

    # The crash left a row per job; half are retried (and finish on worker B), half discarded.
    attempted = {job_id: rj.job(conn, SCHEMA, job_id)["attempted_at"] for job_id in doomed}
    retried, discarded = doomed[:5], doomed[5:]
    assert heartbeat_rows(conn) == {(job_id, 1) for job_id in doomed}
    await retry_many(
        db,
        [RetryRequest(i, attempted[i], "crashed", Backoff.IMMEDIATE) for i in retried],
        schema=SCHEMA,
    )
    await discard_many(
        db, [DiscardRequest(i, attempted[i], "crashed") for i in discarded], schema=SCHEMA
    )

    with river_worker(state_dir, worker_binary, dsn, SCHEMA, MAX_WORKERS="40") as worker_b:
        hanging = [rj.insert_job(conn, SCHEMA, kind="hang") for _ in range(3)]
        wait_for(
            lambda: (
                all(s == "completed" for s in states(conn, retried))
                and all(s == "running" for s in states(conn, hanging))
            ),
            30,
            "the retried jobs to complete on worker B",
            daemon=worker_b,
        )
        running = running_jobs(conn)
        assert running == {(job_id, 1) for job_id in hanging}
        # Worker B removed the rows of the jobs it finished; the discarded jobs' rows stay,
        # since no worker runs them any more.
        wait_for(
            lambda: heartbeat_rows(conn) == running | {(job_id, 1) for job_id in discarded},
            10,
            "worker B to remove the rows of the retried jobs",
            daemon=worker_b,
        )

        metrics = Metrics()
        pruner = HeartbeatPruner("ns/policy", metrics, batch=2)
        assert await pruner.prune_if_due(db, schema=SCHEMA, monotonic_now=0.0) == 5
        assert heartbeat_rows(conn) == running
        # Not due again within its period; due after it.
        assert not pruner.due(30.0) and pruner.due(60.0)
        assert await pruner.prune_if_due(db, schema=SCHEMA, monotonic_now=60.0) == 0
        # Another policy on the same pool within that period prunes nothing: the database
        # was pruned once for all of them.
        orphan = (2**40, 1)  # a row of a job River's cleaner deleted: prunable
        conn.execute(
            sql.SQL(
                "INSERT INTO {t} (job_id, attempt, client_id, beat_at) VALUES (%s, %s, 'x', now())"
            ).format(t=rj.table(SCHEMA, "river_job_heartbeat")),
            orphan,
        )
        other = HeartbeatPruner("ns/other", metrics, batch=2)
        assert other.due(61.0)
        assert await other.prune_if_due(db, schema=SCHEMA, monotonic_now=61.0) == 0
        assert orphan in heartbeat_rows(conn)
        assert await other.prune_if_due(db, schema=SCHEMA, monotonic_now=121.0) == 1
        assert orphan not in heartbeat_rows(conn)
        pruned = metrics.registry.get_sample_value(
            "lifeguard_heartbeat_rows_pruned_total", {"policy": "ns/policy"}
        )
        assert pruned == 5
