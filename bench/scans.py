"""Scan figures: the operator's own scan, timed, and its round trips counted on the wire."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.seed import QUEUE
from lifeguard.river import RiverDatabase, ScanQuery, scan
from lifeguard.river.database import Connection
from lifeguard.river.scan import scan_statement


class TracedDatabase(RiverDatabase):
    """A RiverDatabase whose connections log the client's protocol messages (libpq PQtrace).

    The pool's checkout check runs before `connection()` yields, so the trace holds exactly what
    the operation sent.
    """

    def __init__(self, dsn: str, trace_dir: Path, **kwargs: Any) -> None:
        super().__init__(dsn, **kwargs)
        self._trace_dir = trace_dir
        self.trace_files: list[Path] = []

    @asynccontextmanager
    async def connection(self, *, schema: str | None, doing: str) -> AsyncIterator[Connection]:
        async with super().connection(schema=schema, doing=doing) as conn:
            with tempfile.NamedTemporaryFile(
                "w+", dir=self._trace_dir, suffix=".trace", delete=False
            ) as trace:
                conn.pgconn.trace(trace.fileno())
                try:
                    yield conn
                finally:
                    conn.pgconn.untrace()
                trace.flush()
            self.trace_files.append(Path(trace.name))


def round_trips(trace: str) -> int:
    """Client messages that wait for the server: Sync (extended protocol) and Query (simple)."""
    count = 0
    for line in trace.splitlines():
        fields = line.split("\t")
        # Lines are "<timestamp>\t<F|B>\t<length>\t<Message>\t..." (timestamps may be off).
        direction = next((f for f in fields if f in ("F", "B")), None)
        if direction != "F":
            continue
        after = fields[fields.index("F") + 2 :]
        if after and after[0].split(" ")[0] in ("Sync", "Query"):
            count += 1
    return count


async def scan_wall_time(dsn: str, *, max_jobs: int, repeats: int) -> tuple[float, int]:
    """Median wall time of `repeats` scans after a warm-up, and the jobs one scan returned."""
    query = ScanQuery(queues=(QUEUE,), max_jobs=max_jobs)
    async with RiverDatabase(dsn, statement_timeout=120.0) as db:
        result = await scan(db, query)  # warm-up: connection, plan, cache
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = await scan(db, query)
            timings.append(time.perf_counter() - started)
    return statistics.median(timings), len(result.jobs)


def scan_round_trips(dsn: str, trace_dir: Path) -> int:
    """Round trips of one scan (after a first one that opened the pool's connection)."""
    trace_dir.mkdir(parents=True, exist_ok=True)

    async def traced_scan() -> list[Path]:
        db = TracedDatabase(dsn, trace_dir)
        async with db:
            await scan(db, ScanQuery(queues=(QUEUE,)))
            first = len(db.trace_files)
            await scan(db, ScanQuery(queues=(QUEUE,)))
            return db.trace_files[first:]

    files = asyncio.run(traced_scan())
    if not files:
        raise RuntimeError("the scan used no traced connection")
    return sum(round_trips(path.read_text(errors="replace")) for path in files)


def scan_breakdown(dsn: str, *, max_jobs: int, repeats: int) -> dict[str, float]:
    """Where one scan's time goes: the server, the driver's decoding, and the Python rows.

    Each part is the median of `repeats` runs of the operator's own scan statement:
    `server_s` is EXPLAIN ANALYZE's execution time (no rows sent); `fetch_text_s` and
    `fetch_binary_s` fetch the rows as tuples in each wire format on a plain connection;
    `river_fetch_s` is RiverDatabase.fetch_tuples (the pool, binary tuples), the step before
    the scan builds its JobFacts. The scan's own wall time minus this is the JobFacts part.
    """
    statement, params = scan_statement(ScanQuery(queues=(QUEUE,), max_jobs=max_jobs))

    def median_of(run: Callable[[], object]) -> float:
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    with psycopg.connect(dsn, autocommit=True) as conn:
        query = statement.as_string(conn)
        conn.execute(query, params).fetchall()  # warm the cache and the plan
        server = []
        for _ in range(repeats):
            plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + query, params).fetchone()
            assert plan is not None
            server.append(float(plan[0][0]["Execution Time"]) / 1000)
        text = median_of(lambda: conn.execute(query, params).fetchall())
        binary = median_of(lambda: conn.cursor(binary=True).execute(query, params).fetchall())

    async def river_fetch() -> float:
        async with RiverDatabase(dsn, statement_timeout=120.0) as db:
            await db.fetch_tuples(statement, params, schema=None, doing="bench")
            timings = []
            for _ in range(repeats):
                started = time.perf_counter()
                await db.fetch_tuples(statement, params, schema=None, doing="bench")
                timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    return {
        "server_s": round(statistics.median(server), 4),
        "fetch_text_s": round(text, 4),
        "fetch_binary_s": round(binary, 4),
        "river_fetch_s": round(asyncio.run(river_fetch()), 4),
    }
