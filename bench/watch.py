"""Watching River jobs from the bench: when each job left `running`, seen by polling the row.

Polling (not LISTEN: River's state changes notify nothing we could subscribe to per row) every
`interval` seconds bounds the error of each timestamp by the interval plus one query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import psycopg

from devenv.waiting import wait_for


class JobWatch:
    def __init__(self, dsn: str, interval: float) -> None:
        self.dsn = dsn
        self.interval = interval

    def states(self, ids: Iterable[int]) -> dict[int, str]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, state::text FROM river_job WHERE id = ANY(%s)", (list(ids),)
            ).fetchall()
        return {int(r[0]): str(r[1]) for r in rows}

    def wait_running(self, ids: Iterable[int], timeout: float) -> None:
        wanted = set(ids)
        last: dict[int, str] = {}

        def running() -> bool:
            last.update(self.states(wanted))
            return all(last.get(i) == "running" for i in wanted)

        try:
            wait_for(running, timeout, f"jobs {sorted(wanted)} to run")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen {last}") from None

    def left_running(self, ids: Iterable[int], timeout: float) -> dict[int, tuple[float, str]]:
        """For each job, the wall-clock time (time.time()) its attempt was first seen to end:
        out of `running`, or running again as a new attempt (an immediate retry is fetched by
        an idle worker within milliseconds, between two polls)."""
        pending = set(ids)
        seen: dict[int, tuple[float, str]] = {}
        started: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while pending and time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT id, state::text, attempted_at FROM river_job WHERE id = ANY(%s)",
                    (list(pending),),
                ).fetchall()
                now = time.time()
                for job_id, state, attempted_at in rows:
                    first = started.setdefault(int(job_id), attempted_at)
                    if state != "running" or attempted_at != first:
                        seen[int(job_id)] = (now, str(state) if state != "running" else "rerun")
                        pending.discard(int(job_id))
                if pending:
                    time.sleep(self.interval)
        return seen

    def row(self, job_id: int) -> dict[str, Any]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(
                "SELECT id, state::text AS state, attempt, attempted_at, errors, metadata"
                " FROM river_job WHERE id = %s",
                (job_id,),
            )
            names = [d.name for d in cursor.description or ()]
            found = cursor.fetchone()
        if found is None:
            raise KeyError(f"no job {job_id}")
        return dict(zip(names, found, strict=True))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
