"""Heartbeat table DDL and `lifeguard db migrate`, pruning, duration history, index use."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from typing import Any

import pytest
from psycopg import sql

from devenv import river_jobs as rj
from devenv.river import RiverDatabase as RiverDatabaseFactory
from devenv.worker import build_worker
from lifeguard.cli import main
from lifeguard.river import (
    RiverDatabase,
    ScanQuery,
    SchemaNotFound,
    heartbeat_table_ddl,
    kind_durations,
    migrate_heartbeat_table,
    prune_heartbeats,
)
from lifeguard.river.scan import scan_statement

pytestmark = pytest.mark.integration

ODD_SCHEMA = "Hërtbeat 'Jobs'"


@pytest.fixture(scope="module")
def river(river_database: RiverDatabaseFactory) -> tuple[str, str | None]:
    dsn = rj.river_database_in(river_database, ODD_SCHEMA)
    return dsn, ODD_SCHEMA


def columns(conn: rj.Conn, schema: str | None) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull"
        " FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0"
        " ORDER BY a.attnum",
        (sql.Identifier(*filter(None, [schema, "river_job_heartbeat"])).as_string(conn),),
    ).fetchall()
    return [(r["attname"], r["format_type"], r["attnotnull"]) for r in rows]


EXPECTED_COLUMNS = [
    ("job_id", "bigint", True),
    ("attempt", "smallint", True),
    ("client_id", "text", True),
    ("beat_at", "timestamp with time zone", True),
    ("progress_at", "timestamp with time zone", False),
    ("progress", "jsonb", False),
]


@pytest.mark.parametrize("schema", [None, "lifeguard cli ü"])
def test_db_migrate_creates_the_heartbeat_table_once(
    river_database: RiverDatabaseFactory, schema: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = river_database(schema)
    args = ["db", "migrate", "--database-url", dsn, *(["--schema", schema] if schema else [])]

    assert main(args) == 0
    assert "created river_job_heartbeat" in capsys.readouterr().out
    assert main(args) == 0
    assert "already exists" in capsys.readouterr().out

    with rj.connect(dsn) as conn:
        assert columns(conn, schema) == EXPECTED_COLUMNS
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass(%s)",
            (sql.Identifier(*filter(None, [schema, "river_job_heartbeat"])).as_string(conn),),
        ).fetchone()
        assert options is not None and options["reloptions"] == ["fillfactor=50"]


def test_db_migrate_without_river_fails_naming_the_schema(
    river_database: RiverDatabaseFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = river_database()
    assert main(["db", "migrate", "--database-url", dsn, "--schema", "absent"]) == 1
    err = capsys.readouterr().err
    assert "'absent'" in err and "river_job" in err


async def test_migrate_is_idempotent_and_refuses_a_schema_without_river(
    db: RiverDatabase,
) -> None:
    assert await migrate_heartbeat_table(db, schema=ODD_SCHEMA) in (True, False)
    assert await migrate_heartbeat_table(db, schema=ODD_SCHEMA) is False
    with pytest.raises(SchemaNotFound):
        await migrate_heartbeat_table(db, schema="no such schema")


async def test_prune_deletes_rows_of_jobs_no_longer_running_that_attempt(
    db: RiverDatabase, conn: rj.Conn
) -> None:
    schema = ODD_SCHEMA
    await migrate_heartbeat_table(db, schema=schema)
    conn.execute(sql.SQL("DELETE FROM {}").format(rj.table(schema, "river_job_heartbeat")))
    running, _ = rj.start_job(conn, schema)
    finished, _ = rj.start_job(conn, schema)
    refetched, _ = rj.start_job(conn, schema)
    for job_id in (running, finished, refetched):
        rj.beat(conn, schema, job_id)
    rj.complete_job(conn, schema, finished)
    conn.execute(
        sql.SQL("UPDATE {} SET attempt = attempt + 1 WHERE id = %s").format(
            rj.table(schema, "river_job")
        ),
        (refetched,),
    )
    deleted_job, _ = rj.start_job(conn, schema)
    rj.beat(conn, schema, deleted_job)
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE id = %s").format(rj.table(schema, "river_job")),
        (deleted_job,),
    )

    assert await prune_heartbeats(db, schema=schema, batch=2) == 2
    assert await prune_heartbeats(db, schema=schema, batch=2) == 1
    assert await prune_heartbeats(db, schema=schema) == 0
    left = conn.execute(
        sql.SQL("SELECT job_id FROM {}").format(rj.table(schema, "river_job_heartbeat"))
    ).fetchall()
    assert [r["job_id"] for r in left] == [running]


def insert_finished(
    conn: rj.Conn,
    schema: str | None,
    kind: str,
    durations: list[float],
    *,
    ago: float = 60,
    state: str = "completed",
) -> None:
    """Finished jobs of `kind`, the i-th finalized `ago + i` seconds ago after running d_i s."""
    conn.execute(
        sql.SQL(
            """INSERT INTO {t} (args, kind, max_attempts, queue, state, attempt, attempted_at,
  finalized_at, attempted_by)
SELECT '{{}}', %(kind)s, 25, 'default', %(state)s::{state_type}, 1,
  now() - make_interval(secs => %(ago)s + d.i) - make_interval(secs => d.seconds),
  now() - make_interval(secs => %(ago)s + d.i), ARRAY['w']
FROM unnest(%(durations)s::float8[]) WITH ORDINALITY AS d(seconds, i)"""
        ).format(t=rj.table(schema, "river_job"), state_type=rj.table(schema, "river_job_state")),
        {"kind": kind, "durations": durations, "ago": ago, "state": state},
    )


def percentile(values: list[float], q: float) -> float:
    """percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def test_kind_durations_are_percentiles_of_the_newest_completions_in_the_window(
    river_database: RiverDatabaseFactory,
) -> None:
    dsn = river_database()
    report = [float(s) for s in range(1, 101)]  # newest first: 1 s ... 100 s
    with rj.connect(dsn) as conn:
        insert_finished(conn, None, "report", report)
        insert_finished(conn, None, "report", [5000.0] * 5, ago=7200)  # outside the window
        insert_finished(conn, None, "report", [9999.0] * 5, state="discarded")
        insert_finished(conn, None, 'odd "kind" ü', [2.0, 4.0])

    async with RiverDatabase(dsn) as db:
        stats = await kind_durations(db, window_seconds=3600, limit_per_kind=50, schema=None)
        only_odd = await kind_durations(
            db, window_seconds=3600, limit_per_kind=50, schema=None, kinds=['odd "kind" ü']
        )

    by_kind = {s.kind: s for s in stats}
    assert set(by_kind) == {"report", 'odd "kind" ü'}
    newest = report[:50]
    assert by_kind["report"].samples == 50
    for q, value in (
        (0.5, by_kind["report"].p50),
        (0.95, by_kind["report"].p95),
        (0.99, by_kind["report"].p99),
    ):
        assert value == pytest.approx(percentile(newest, q), abs=1e-3)
    assert by_kind['odd "kind" ü'].samples == 2
    assert by_kind['odd "kind" ü'].p50 == pytest.approx(statistics.median([2.0, 4.0]), abs=1e-3)
    assert [s.kind for s in only_odd] == ['odd "kind" ü']


def plan(conn: rj.Conn, statement: sql.Composable, params: dict[str, Any]) -> str:
    rows = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + statement, params).fetchall()
    return json.dumps(rows[0]["QUERY PLAN"])


def test_scan_and_durations_use_rivers_indexes(river_database: RiverDatabaseFactory) -> None:
    dsn = river_database()
    with rj.connect(dsn) as conn:
        insert_finished(conn, None, "report", [1.0] * 20000)
        for _ in range(5):
            rj.start_job(conn, None)
        conn.execute(heartbeat_table_ddl(None))
        conn.execute("ANALYZE river_job")
        statement, params = scan_statement(ScanQuery(queues=("default",)))
        assert "river_job_prioritized_fetching_index" in plan(conn, statement, params)

        durations = sql.SQL(
            "SELECT kind FROM river_job WHERE state = 'completed' AND finalized_at IS NOT NULL"
            " AND finalized_at > now() - interval '1 hour' ORDER BY finalized_at DESC LIMIT 100"
        )
        assert "river_job_state_and_finalized_at_index" in plan(conn, durations, {})


def test_heartbeat_ddl_matches_the_go_migration(river_database: RiverDatabaseFactory) -> None:
    """The Go heartbeat.Migrate and `lifeguard db migrate` create the same table."""
    go_dsn, py_dsn = river_database(), river_database()
    done = subprocess.run(
        [str(build_worker()), "migrate"],
        env={**os.environ, "DATABASE_URL": go_dsn},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert main(["db", "migrate", "--database-url", py_dsn]) == 0
    with rj.connect(go_dsn) as go, rj.connect(py_dsn) as py:
        assert columns(go, None) == columns(py, None) == EXPECTED_COLUMNS
    # Either side may run first: the other finds the table and leaves it alone.
    assert main(["db", "migrate", "--database-url", go_dsn]) == 0
