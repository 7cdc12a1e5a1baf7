"""Fencing under races: a Lifeguard write against River's completer, fetch and rescuer.

Each round runs River's exact statements (devenv.river_jobs) on their own connections at the
same time as a Lifeguard action, sometimes holding the row lock for a while, so both orders
and the READ COMMITTED recheck of a blocked UPDATE are exercised. Invariants: exactly one of
the competing writes applies, the action reports truthfully whether it applied, and the job is
never lost (left running with no worker) nor run twice (completed and also queued again).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from devenv import river_jobs as rj
from devenv.retrying import retry_one
from devenv.river import RiverDatabase as RiverDatabaseFactory
from lifeguard.model.enums import Backoff
from lifeguard.river import (
    CancelRequest,
    RetryRequest,
    RiverDatabase,
    cancel,
    retry_many,
)

pytestmark = pytest.mark.integration

ROUNDS = 200
REASON = "lifeguard: InfrastructureDeath/PodDeleted: pod w-1 on node n1"

AsyncConn = psycopg.AsyncConnection[dict[str, Any]]
T = TypeVar("T")


@pytest.fixture(scope="module")
def dsn(river_database: RiverDatabaseFactory) -> str:
    return river_database()


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[RiverDatabase]:
    async with RiverDatabase(dsn, max_size=8) as database:
        yield database


@pytest.fixture
async def river_conn(dsn: str) -> AsyncIterator[AsyncConn]:
    """River's side of the race: its own connection, as a River client has."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row)
    yield conn
    await conn.close()


async def river_statement(
    conn: AsyncConn, statement: str, params: tuple[Any, ...], hold: float
) -> bool:
    """Runs one of River's updates in a transaction that keeps its row lock for `hold` s."""
    async with conn.transaction():
        cursor = await conn.execute(
            sql.SQL(statement).format(t=sql.Identifier("river_job")), params
        )
        applied = cursor.rowcount == 1
        if hold:
            await asyncio.sleep(hold)
    return applied


async def jittered(step: Awaitable[T]) -> T:
    """Starts `step` a random moment later, so either side of a race may go first."""
    await asyncio.sleep(random.choice([0, 0, 0.0005, 0.002]))
    return await step


async def applied(action: Awaitable[object | None]) -> bool:
    return await action is not None


async def complete_each(conn: AsyncConn, job_ids: set[int]) -> set[int]:
    done = set()
    for job_id in job_ids:
        if await jittered(river_statement(conn, rj.COMPLETE_SQL, (job_id,), 0)):
            done.add(job_id)
    return done


# River's fetch (JobGetAvailable) of one job by another client.
REFETCH = (
    "UPDATE {t} SET state = 'running', attempt = attempt + 1, attempted_at = now(),"
    " attempted_by = array_append(attempted_by, 'w-2') WHERE id = %s AND state = 'available'"
)


async def test_retry_racing_the_completer_applies_exactly_one(
    db: RiverDatabase, river_conn: AsyncConn, dsn: str
) -> None:
    rng = random.Random(4)
    outcomes = {"retried": 0, "completed": 0}
    with rj.connect(dsn) as conn:
        for _ in range(ROUNDS):
            job_id, attempted_at = rj.start_job(conn, None)
            hold = rng.choice([0, 0, 0.003])

            request = RetryRequest(job_id, attempted_at, REASON, backoff=Backoff.IMMEDIATE)
            completed, retried = await asyncio.gather(
                jittered(river_statement(river_conn, rj.COMPLETE_SQL, (job_id,), hold)),
                jittered(applied(retry_one(db, request, schema=None))),
            )

            row = rj.job(conn, None, job_id)
            assert completed != retried, f"job {job_id}: both or neither applied"
            if retried:
                # Queued again exactly once, with one error entry: the job runs again (it had
                # not finished), and the late completer changed nothing.
                assert row["state"] == "available" and len(row["errors"]) == 1
                assert row["finalized_at"] is None
                outcomes["retried"] += 1
            else:
                # Finished: never queued again, no error written.
                assert row["state"] == "completed" and row["errors"] is None
                assert row["metadata"] == {}
                outcomes["completed"] += 1
    # Both orders really happened.
    assert outcomes["retried"] > 10 and outcomes["completed"] > 10, outcomes


async def test_retry_of_a_stale_observation_never_touches_the_refetched_attempt(
    db: RiverDatabase, river_conn: AsyncConn, dsn: str
) -> None:
    """The scan saw attempt 1; meanwhile River requeued and fetched the job again (attempt 2)."""
    with rj.connect(dsn) as conn:
        for _ in range(ROUNDS // 2):
            job_id, observed = rj.start_job(conn, None)
            # Attempt 1 failed in River's hands: retryable, then due and available.
            conn.execute("UPDATE river_job SET state = 'available' WHERE id = %s", (job_id,))

            fetched, retried = await asyncio.gather(
                jittered(
                    river_statement(river_conn, REFETCH, (job_id,), random.choice([0, 0.002]))
                ),
                jittered(
                    applied(retry_one(db, RetryRequest(job_id, observed, REASON), schema=None))
                ),
            )

            row = rj.job(conn, None, job_id)
            assert fetched and not retried
            assert row["state"] == "running" and row["attempt"] == 2 and row["errors"] is None


async def test_retry_racing_rivers_rescuer_rescues_once(
    db: RiverDatabase, river_conn: AsyncConn, dsn: str
) -> None:
    """River's JobRescueMany and a Lifeguard retry of the same stuck attempt: one rescue."""
    rescue = (
        "UPDATE {t} SET errors = array_append(errors, jsonb_build_object('at', now(),"
        " 'attempt', attempt, 'error', 'Stuck job rescued by JobRescuer', 'trace', '')),"
        " metadata = metadata || jsonb_build_object('river:rescue_count', 1),"
        " scheduled_at = now() + interval '1 second', state = 'retryable'"
        " WHERE id = %s AND state = 'running' AND attempted_at < now() - interval '1 second'"
    )
    counts = {"river": 0, "lifeguard": 0}
    with rj.connect(dsn) as conn:
        for _ in range(ROUNDS // 2):
            job_id, _ = rj.start_job(conn, None)
            observed = rj.age_attempt(conn, None, job_id, 3600)

            rescued, retried = await asyncio.gather(
                jittered(river_statement(river_conn, rescue, (job_id,), random.choice([0, 0.002]))),
                jittered(
                    applied(retry_one(db, RetryRequest(job_id, observed, REASON), schema=None))
                ),
            )

            row = rj.job(conn, None, job_id)
            assert rescued != retried
            assert row["state"] == "retryable" and len(row["errors"]) == 1
            river_count = row["metadata"].get("river:rescue_count", 0)
            lifeguard_count = row["metadata"].get("lifeguard:retries", 0)
            assert (river_count, lifeguard_count) == ((1, 0) if rescued else (0, 1))
            counts["river" if rescued else "lifeguard"] += 1
    assert counts["river"] > 5 and counts["lifeguard"] > 5, counts


async def test_batch_retry_and_cancel_racing_completions_report_what_applied(
    db: RiverDatabase, river_conn: AsyncConn, dsn: str
) -> None:
    with rj.connect(dsn) as conn:
        for _ in range(ROUNDS // 10):
            jobs = [rj.start_job(conn, None) for _ in range(10)]
            to_complete = {job_id for job_id, _ in jobs if random.random() < 0.5}

            requests = [RetryRequest(i, at, REASON) for i, at in jobs]
            completed, batch = await asyncio.gather(
                complete_each(river_conn, to_complete),
                jittered(retry_many(db, requests, schema=None)),
            )
            retried = {a.job_id for a in batch}

            assert completed.isdisjoint(retried)
            assert completed | retried == {job_id for job_id, _ in jobs}
            for job_id, _ in jobs:
                state = rj.job(conn, None, job_id)["state"]
                assert state == ("retryable" if job_id in retried else "completed")

        # A cancel racing the completer: it either reaches the running job or changes nothing.
        for _ in range(ROUNDS // 4):
            job_id, attempted_at = rj.start_job(conn, None)

            completed_one, cancelled = await asyncio.gather(
                jittered(river_statement(river_conn, rj.COMPLETE_SQL, (job_id,), 0)),
                jittered(applied(cancel(db, CancelRequest(job_id, attempted_at), schema=None))),
            )
            row = rj.job(conn, None, job_id)
            assert completed_one and row["state"] == "completed"
            assert ("cancel_attempted_at" in row["metadata"]) == cancelled
