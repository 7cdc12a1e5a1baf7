"""The heartbeat table's size after many jobs: `heartbeat_rows_after_10k_jobs`.

Real River workers (examples/worker, the Go middleware) run N short jobs; one in a hundred is a
long job whose worker is killed mid-job (SIGKILL), leaving its rows behind. Half of those are
retried as Lifeguard retries them (and finish on a second worker), half discarded, so some rows
have no worker left to remove them. Then one round of the operator's pruner. Before the
middleware removed its rows and anything pruned, the table kept one row per job ever run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.config import BenchConfig
from bench.figures import Results
from devenv import procs
from devenv.waiting import wait_for
from devenv.worker import build_worker
from lifeguard.metrics import Metrics
from lifeguard.model.enums import Backoff
from lifeguard.river import (
    DiscardRequest,
    RetryRequest,
    RiverDatabase,
    discard_many,
    retry_many,
)
from lifeguard.supervisor.prune import HeartbeatPruner

log = logging.getLogger("bench")

FIGURE_SIZE = 10_000
# How long one step of the run may take on a loaded machine (10k jobs through two workers).
WAIT_S = 600.0


def run_heartbeat_rows(config: BenchConfig, dsn: str, state_dir: Path, results: Results) -> None:
    jobs = config.heartbeat_rows_jobs
    crashed = max(2, jobs // 100)
    binary = build_worker()
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The long jobs first: River fetches by priority, then ID, so they are running
        # before the short ones are done.
        long_ids = _insert(conn, crashed, '{"seconds": 600}', priority=1)
        short_ids = _insert(conn, jobs - crashed, '{"seconds": 0}', priority=2)
        started = time.monotonic()
        # Slots beyond the long jobs, so the short ones run beside them.
        slots = crashed + 100
        with _worker(state_dir, binary, dsn, "a", slots) as worker_a:
            wait_for(
                lambda: (
                    _count(conn, "state = 'completed'") == len(short_ids)
                    and _count(conn, "state = 'running'") == crashed
                ),
                WAIT_S,
                "the short jobs to complete while the long ones run",
                daemon=worker_a,
            )
            # Killed once it removed the rows of the jobs it finished: only the long jobs'
            # rows are orphaned, so the figure counts what the pruner must handle.
            wait_for(
                lambda: _rows(conn) == crashed, WAIT_S, "worker A's own removals", daemon=worker_a
            )
            worker_a.stop(signal.SIGKILL)
        rows_after_crash = _rows(conn)
        attempted = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT id, attempted_at FROM river_job WHERE id = ANY(%s)", (long_ids,)
            )
        }
        retried, discarded = long_ids[: crashed // 2], long_ids[crashed // 2 :]
        # The retried jobs are made short so the bench does not wait for them.
        conn.execute(
            "UPDATE river_job SET args = '{\"seconds\": 0}' WHERE id = ANY(%s)", (retried,)
        )
        asyncio.run(_retry_and_discard(dsn, attempted, retried, discarded))
        with _worker(state_dir, binary, dsn, "b", slots) as worker_b:
            wait_for(
                lambda: _count(conn, "state = 'completed'") == len(short_ids) + len(retried),
                WAIT_S,
                "the retried jobs to complete",
                daemon=worker_b,
            )
            # Each worker removes its rows about a second after River recorded the outcome.
            wait_for(
                lambda: _rows(conn) == len(discarded),
                WAIT_S,
                "the workers' own removals",
                daemon=worker_b,
            )
        rows_before_prune = _rows(conn)
        pruned = asyncio.run(_prune_once(dsn))
        rows = _rows(conn)
        running = _count(conn, "state = 'running'")
    seconds = time.monotonic() - started
    log.info(
        "heartbeat rows after %d jobs: %d (before pruning %d, running %d)",
        jobs,
        rows,
        rows_before_prune,
        running,
    )
    if jobs == FIGURE_SIZE:
        results.set("heartbeat_rows_after_10k_jobs", rows)
    results.details["heartbeat_rows"] = {
        "jobs": jobs,
        "crashed_mid_job": crashed,
        "retried": len(retried),
        "discarded": len(discarded),
        "rows_after_the_crash": rows_after_crash,
        "rows_before_pruning": rows_before_prune,
        "pruned": pruned,
        "rows_after_pruning": rows,
        "running_jobs": running,
        "seconds": round(seconds, 1),
    }


def _insert(conn: psycopg.Connection[Any], count: int, args: str, *, priority: int) -> list[int]:
    rows = conn.execute(
        "INSERT INTO river_job (args, kind, max_attempts, priority, queue, state)"
        " SELECT %s::jsonb, 'sleep', 25, %s, 'default', 'available'"
        " FROM generate_series(1, %s) RETURNING id",
        (args, priority, count),
    ).fetchall()
    return sorted(row[0] for row in rows)


def _count(conn: psycopg.Connection[Any], where: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM river_job WHERE {where}").fetchone()
    assert row is not None
    return int(row[0])


def _rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM river_job_heartbeat").fetchone()
    assert row is not None
    return int(row[0])


class _worker:
    """A real River client (examples/worker) working `default`, stopped when the block ends."""

    def __init__(self, state_dir: Path, binary: Path, dsn: str, name: str, slots: int) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "WORKER_QUEUES": "default",
            "MAX_WORKERS": str(slots),
            "HEARTBEAT_INTERVAL": "5s",
            "FETCH_POLL_INTERVAL": "100ms",
            "SHUTDOWN_TIMEOUT": "2s",
        }
        self._daemon = procs.start_daemon(
            state_dir, f"bench-rows-worker-{name}", [binary, "run"], env=env
        )

    def __enter__(self) -> procs.Daemon:
        return self._daemon

    def __exit__(self, *_: object) -> None:
        if self._daemon.alive():
            self._daemon.stop(signal.SIGTERM, timeout=15)


async def _retry_and_discard(
    dsn: str, attempted: dict[int, Any], retried: list[int], discarded: list[int]
) -> None:
    async with RiverDatabase(dsn) as db:
        await retry_many(
            db,
            [RetryRequest(i, attempted[i], "bench: crashed", Backoff.IMMEDIATE) for i in retried],
            schema=None,
        )
        await discard_many(
            db, [DiscardRequest(i, attempted[i], "bench: crashed") for i in discarded], schema=None
        )


async def _prune_once(dsn: str) -> int:
    async with RiverDatabase(dsn) as db:
        return await HeartbeatPruner("bench", Metrics()).prune_if_due(
            db, schema=None, monotonic_now=time.monotonic()
        )
