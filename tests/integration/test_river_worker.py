"""Lifeguard's writes as real River clients (examples/worker, run as local processes) see them.

A retried job is fetched again, its errors (with Lifeguard's entry) decoded by River, and
completed; a cancel reaches the producer running the job; River's own rescuer and Lifeguard
retrying the same stuck jobs rescue each exactly once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import re
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from devenv import procs
from devenv import river_jobs as rj
from devenv.retrying import retry_one
from devenv.river import RiverDatabase as RiverDatabaseFactory
from devenv.waiting import wait_for
from lifeguard.model.client_id import river_host_of_pod
from lifeguard.model.enums import Backoff, HeartbeatStore
from lifeguard.river import (
    RESUME_KEY,
    Applied,
    CancelRequest,
    HeartbeatLocation,
    RetryRequest,
    RiverDatabase,
    ScanQuery,
    cancel,
    heartbeat_table_ddl,
    lifeguard_error,
    prune_heartbeats,
    scan,
)

pytestmark = pytest.mark.integration

# A River client only accepts schemas matching ^[a-zA-Z_][a-zA-Z0-9_]*$ and lower-case queue
# names (client.go); upper case still needs quoting right (unquoted, PostgreSQL folds it).
WORKER_SCHEMA = "Lifeguard_Workers"
DEAD_CLIENT = "report-worker-7f_2026_01_01T00_00_00_000000"
_names = iter(range(1, 10_000))


@pytest.fixture(params=[None, WORKER_SCHEMA], ids=["search-path", "odd-schema"])
def river(
    request: pytest.FixtureRequest, river_database: RiverDatabaseFactory
) -> tuple[str, str | None]:
    schema: str | None = request.param
    dsn = river_database(schema)
    with rj.connect(dsn) as conn:
        conn.execute(heartbeat_table_ddl(schema))
    return dsn, schema


@contextmanager
def river_worker(
    state_dir: Path, binary: Path, dsn: str, schema: str | None, **env: str
) -> Iterator[procs.Daemon]:
    """A real River client working `default`, stopped by PID when the block ends."""
    settings = {
        "DATABASE_URL": dsn,
        "RIVER_SCHEMA": schema or "",
        "WORKER_QUEUES": "default",
        "HEARTBEAT_INTERVAL": "1s",
        "SHUTDOWN_TIMEOUT": "2s",
        **env,
    }
    daemon = procs.start_daemon(
        state_dir, f"river-worker-{next(_names)}", [binary, "run"], env={**os.environ, **settings}
    )
    try:
        yield daemon
    finally:
        daemon.stop(signal.SIGTERM, timeout=15)


def job_state(
    conn: rj.Conn, schema: str | None, job_id: int, *states: str
) -> dict[str, Any] | None:
    row = rj.job(conn, schema, job_id)
    return row if row["state"] in states else None


@pytest.mark.parametrize("backoff", [Backoff.IMMEDIATE, Backoff.RIVER])
async def test_a_retried_job_is_fetched_again_and_completed_by_a_river_worker(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
    backoff: Backoff,
) -> None:
    dsn, schema = river
    # A job whose worker died mid-run: fetched by a client that is gone.
    job_id, attempted_at = rj.start_job(
        conn, schema, client_id=DEAD_CLIENT, kind="sleep", args={"seconds": 0.2}
    )
    reason = lifeguard_error("InfrastructureDeath", "OOMKilled", "pod report-worker-7f on node n2")
    applied = await retry_one(
        db, RetryRequest(job_id, attempted_at, reason, backoff=backoff), schema=schema
    )
    assert applied == Applied(job_id, "available" if backoff is Backoff.IMMEDIATE else "retryable")

    with river_worker(state_dir, worker_binary, dsn, schema) as worker:
        # River decodes every errors entry when it fetches a job (riverpgxv5
        # jobRowFromInternal): a malformed entry would leave the job unfetched.
        row = wait_for(
            lambda: job_state(conn, schema, job_id, "completed", "discarded", "cancelled"),
            30,
            "the retried job to finish",
            daemon=worker,
        )
    assert row["state"] == "completed", row
    assert row["attempt"] == 2
    assert row["attempted_by"][0] == DEAD_CLIENT and row["attempted_by"][-1] != DEAD_CLIENT
    assert [e["error"] for e in row["errors"]] == [reason]
    assert row["metadata"]["lifeguard:retries"] == 1


async def test_a_cancel_reaches_a_running_river_worker(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
) -> None:
    dsn, schema = river
    job_id = rj.insert_job(conn, schema, kind="hang")
    with river_worker(state_dir, worker_binary, dsn, schema) as worker:
        wait_for(
            lambda: job_state(conn, schema, job_id, "running"),
            30,
            "the hang job to run",
            daemon=worker,
        )
        # Its client ID starts with the pod's (here: this host's) name.
        prefix = river_host_of_pod(socket.gethostname()) + "_"
        [running] = (await scan(db, ScanQuery(schema=schema))).jobs
        assert running.id == job_id and running.client_id is not None
        assert running.client_id.startswith(prefix)

        applied = await cancel(db, CancelRequest(job_id, running.attempted_at), schema=schema)

        assert applied == Applied(job_id, "running")
        row = wait_for(
            lambda: job_state(
                conn, schema, job_id, "cancelled", "completed", "retryable", "discarded"
            ),
            20,
            "River to cancel the job",
            daemon=worker,
        )
    assert row["state"] == "cancelled", row
    assert row["finalized_at"] is not None
    assert "cancel_attempted_at" in row["metadata"]


async def test_rivers_rescuer_and_lifeguard_rescue_each_stuck_job_once(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
) -> None:
    dsn, schema = river
    stuck = []
    for _ in range(16):
        job_id, _ = rj.start_job(conn, schema, client_id=DEAD_CLIENT, args={"seconds": 0.1})
        stuck.append((job_id, rj.age_attempt(conn, schema, job_id, 7200)))
    raced, rescuer_only = stuck[:8], stuck[8:]
    reason = lifeguard_error("Stale", "BeatStale", "no beat for 2h and no pod")

    # River's rescuer ignores jobs without a timeout (JobTimeout -1), so the worker gets one, and
    # River requires RescueStuckJobsAfter >= JobTimeout.
    with river_worker(
        state_dir, worker_binary, dsn, schema, RESCUE_STUCK_JOBS_AFTER="1s", JOB_TIMEOUT="1s"
    ) as worker:
        lifeguard_applied = 0
        for job_id, attempted_at in raced:
            await asyncio.sleep(0.2)
            request = RetryRequest(job_id, attempted_at, reason, backoff=Backoff.IMMEDIATE)
            lifeguard_applied += await retry_one(db, request, schema=schema) is not None
        rows = [
            wait_for(
                functools.partial(job_state, conn, schema, job_id, "completed", "discarded"),
                60,
                f"stuck job {job_id} to be rescued and completed",
                daemon=worker,
            )
            for job_id, _ in stuck
        ]

    river_rescues = 0
    for row in rows:
        assert row["state"] == "completed" and row["attempt"] == 2, row
        # Exactly one rescue of attempt 1: River's or Lifeguard's entry, and its counter.
        [entry] = row["errors"]
        assert entry["attempt"] == 1
        by_river = row["metadata"].get("river:rescue_count", 0)
        by_lifeguard = row["metadata"].get("lifeguard:retries", 0)
        assert by_river + by_lifeguard == 1, row
        assert entry["error"] == (reason if by_lifeguard else "Stuck job rescued by JobRescuer")
        river_rescues += by_river
    assert lifeguard_applied + river_rescues == len(stuck)
    # The jobs Lifeguard left alone were River's: its rescuer really ran alongside.
    assert river_rescues >= len(rescuer_only)


async def test_a_scan_sees_a_real_workers_running_job_with_its_client(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
) -> None:
    dsn, schema = river
    job_id = rj.insert_job(conn, schema, kind="hang")
    with river_worker(state_dir, worker_binary, dsn, schema) as worker:
        wait_for(
            lambda: job_state(conn, schema, job_id, "running"),
            30,
            "the hang job to run",
            daemon=worker,
        )
        result = await scan(db, ScanQuery(schema=schema))
        [job] = result.jobs
        assert job.id == job_id and job.kind == "hang" and job.attempt == 1
        assert job.client_id is not None
        assert job.client_id.startswith(river_host_of_pod(socket.gethostname()) + "_")
        assert 0 <= job.running_for < 30


@pytest.mark.parametrize("store", [HeartbeatStore.TABLE, HeartbeatStore.METADATA])
async def test_beats_of_a_real_worker_are_read_by_the_scan_and_removed_after(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
    store: HeartbeatStore,
) -> None:
    """The Go middleware writes (health_check_at as River users write it, for Metadata)."""
    dsn, schema = river
    job_id = rj.insert_job(
        conn, schema, kind="sleep", args={"seconds": 4, "progress_every_seconds": 0.5}
    )
    query = ScanQuery(
        schema=schema,
        store=store,
        metadata_key="health_check_at" if store is HeartbeatStore.METADATA else None,
    )
    with river_worker(
        state_dir,
        worker_binary,
        dsn,
        schema,
        HEARTBEAT_STORE=store.value.lower(),
        HEARTBEAT_METADATA_KEY="health_check_at",
        HEARTBEAT_INTERVAL="500ms",
    ) as worker:
        wait_for(
            lambda: job_state(conn, schema, job_id, "running"), 30, "the job to run", daemon=worker
        )
        await asyncio.sleep(1.5)
        [job] = (await scan(db, query)).jobs
        assert job.beat_age is not None and job.beat_age < 1.5, job
        assert job.progress_age is not None and job.progress_age < 1.5, job
        assert job.progress is not None and "step" in job.progress
        wait_for(
            lambda: job_state(conn, schema, job_id, "completed"),
            30,
            "the job to complete",
            daemon=worker,
        )
        if store is HeartbeatStore.TABLE:
            # The worker removes its row once River recorded the outcome: nothing to prune.
            wait_for(
                lambda: (
                    not conn.execute(
                        sql.SQL("SELECT 1 FROM {t} WHERE job_id = %s").format(
                            t=rj.table(schema, "river_job_heartbeat")
                        ),
                        (job_id,),
                    ).fetchone()
                ),
                30,
                "the worker to remove the finished job's heartbeat row",
                daemon=worker,
            )
    if store is HeartbeatStore.TABLE:
        assert await prune_heartbeats(db, schema=schema) == 0
    else:
        metadata = rj.job(conn, schema, job_id)["metadata"]
        assert {"health_check_at", "health_check_at_progress_at"} <= set(metadata)


async def test_retries_racing_a_real_workers_completions_never_lose_or_double_run_a_job(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
) -> None:
    """Retry each job as its real worker finishes it: the retry applies only if River's
    completer has not, and then the job simply runs once more."""
    dsn, schema = river
    rng = random.Random(7)
    reason = lifeguard_error("Unresponsive", "BeatStale", "race test")
    ids = [rj.insert_job(conn, schema, kind="sleep", args={"seconds": 0.3}) for _ in range(12)]
    applied: set[int] = set()
    with river_worker(state_dir, worker_binary, dsn, schema, MAX_WORKERS="12") as worker:
        running = wait_for(
            lambda: (
                [r for r in (rj.job(conn, schema, i) for i in ids) if r["state"] == "running"]
                if all(rj.job(conn, schema, i)["state"] != "available" for i in ids)
                else None
            ),
            30,
            "the worker to fetch every job",
            daemon=worker,
        )
        for row in running:
            await asyncio.sleep(rng.uniform(0, 0.05))
            request = RetryRequest(row["id"], row["attempted_at"], reason, Backoff.IMMEDIATE)
            if await retry_one(db, request, schema=schema):
                applied.add(row["id"])
        rows = [
            wait_for(
                functools.partial(
                    job_state, conn, schema, i, "completed", "discarded", "cancelled"
                ),
                30,
                f"job {i} to finish",
                daemon=worker,
            )
            for i in ids
        ]
    for row in rows:
        assert row["state"] == "completed", row
        if row["id"] in applied:
            assert row["attempt"] == 2 and [e["error"] for e in row["errors"]] == [reason]
        else:
            assert row["attempt"] == 1 and row["errors"] is None


# --- run again at once, and resume -----------------------------------------------------------


def steps_done(worker: procs.Daemon, job_id: int) -> list[int]:
    """The steps a worker logged as done for a sleep job (`log_steps`), in order."""
    pattern = re.compile(rf'msg="sleep step done" job_id={job_id} attempt=\d+ step=(\d+)')
    return [int(m) for m in pattern.findall(worker.log_path.read_text(errors="replace"))]


def resumed_from(worker: procs.Daemon, job_id: int) -> int | None:
    pattern = re.compile(rf'msg="sleep job resumes" job_id={job_id} attempt=\d+ from_step=(\d+)')
    found = pattern.findall(worker.log_path.read_text(errors="replace"))
    return int(found[-1]) if found else None


async def test_an_immediate_retry_wakes_an_idle_river_worker_at_once(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
) -> None:
    """With a 10-minute poll interval, only River's insert notification can make the worker
    fetch the job within seconds."""
    dsn, schema = river
    job_id, attempted_at = rj.start_job(
        conn, schema, client_id=DEAD_CLIENT, kind="sleep", args={"seconds": 0.1}
    )
    with river_worker(state_dir, worker_binary, dsn, schema, FETCH_POLL_INTERVAL="10m") as worker:
        wait_for(
            lambda: "worker started" in worker.log_tail(), 30, "the worker to start", daemon=worker
        )
        await asyncio.sleep(1.0)  # past the producer's first fetch, which finds nothing
        reason = lifeguard_error("InfrastructureDeath", "PodDeleted", "pod worker-7f")
        request = RetryRequest(job_id, attempted_at, reason, backoff=Backoff.IMMEDIATE)
        assert await retry_one(db, request, schema=schema) == Applied(job_id, "available")
        row = wait_for(
            lambda: job_state(conn, schema, job_id, "completed"),
            15,
            "the retried job to run on the idle worker",
            daemon=worker,
        )
    assert row["attempt"] == 2


@pytest.mark.parametrize("store", [HeartbeatStore.TABLE, HeartbeatStore.METADATA])
async def test_a_retried_job_resumes_from_the_last_progress_of_the_killed_attempt(
    db: RiverDatabase,
    conn: rj.Conn,
    river: tuple[str, str | None],
    state_dir: Path,
    worker_binary: Path,
    store: HeartbeatStore,
) -> None:
    dsn, schema = river
    steps = 10
    job_id = rj.insert_job(
        conn,
        schema,
        kind="sleep",
        args={"seconds": steps, "progress_every_seconds": 1, "log_steps": True},
    )
    location = HeartbeatLocation(
        store, "health_check_at" if store is HeartbeatStore.METADATA else None
    )
    query = ScanQuery(schema=schema, store=store, metadata_key=location.metadata_key)
    settings = {"HEARTBEAT_STORE": store.value.lower(), "HEARTBEAT_METADATA_KEY": "health_check_at"}

    with river_worker(state_dir, worker_binary, dsn, schema, **settings) as first:
        wait_for(
            lambda: len(steps_done(first, job_id)) >= 4,
            30,
            "four steps on the first worker",
            daemon=first,
        )
        first.stop(signal.SIGKILL)
    [job] = (await scan(db, query)).jobs
    assert job.progress is not None and '"step"' in job.progress
    reason = lifeguard_error("InfrastructureDeath", "Killed", "the first worker was killed")
    request = RetryRequest(job_id, job.attempted_at, reason, backoff=Backoff.IMMEDIATE)
    assert await retry_one(db, request, schema=schema, resume_from=location)
    checkpoint = rj.job(conn, schema, job_id)["metadata"][RESUME_KEY]
    assert checkpoint["attempt"] == 1 and checkpoint["progress"]["steps"] == steps

    with river_worker(state_dir, worker_binary, dsn, schema, **settings) as second:
        wait_for(
            lambda: job_state(conn, schema, job_id, "completed"),
            30,
            "the resumed job to complete",
            daemon=second,
        )
        start = resumed_from(second, job_id)
        done_second = steps_done(second, job_id)
    done_first = steps_done(first, job_id)

    assert start == checkpoint["progress"]["step"] and start >= 3
    assert done_second == list(range(start + 1, steps + 1))
    # Redone: the steps the first worker finished after its last progress write (written at
    # most once a second, so at most about one step of 1 s here).
    redone = len(done_first) - start
    assert 0 <= redone <= 2, (done_first, start)
    assert len(done_first) + len(done_second) <= steps + 2
