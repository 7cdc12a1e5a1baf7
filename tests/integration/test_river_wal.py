"""What one beat costs in WAL for each heartbeat store (a measurement, printed with -s).

Running jobs carry 1 KiB of args. Each beat is its own statement and transaction, as the Go
middleware writes them: the Table store's guarded upsert, and the Metadata store's
`metadata || {key: now()}` UPDATE of the job row. The first round creates the rows or keys; the
next rounds are the steady state that is measured. The test cluster runs with
full_page_writes=off, so these are record sizes without the full-page images that follow each
checkpoint in production (which make larger rows and more indexes cost even more).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from psycopg import sql

from devenv import river_jobs as rj
from devenv.river import RiverDatabase as RiverDatabaseFactory
from lifeguard.river import heartbeat_table_ddl

pytestmark = pytest.mark.integration

JOBS = 500
ROUNDS = 3
ARGS = {"payload": "x" * 1000, "customer": 42, "tags": ["a", "b", "c"]}

TABLE_BEAT = """INSERT INTO river_job_heartbeat AS hb (job_id, attempt, client_id, beat_at)
SELECT j.id, j.attempt, 'worker-1', now() FROM river_job AS j
WHERE j.id = %s AND j.state = 'running'
ON CONFLICT (job_id) DO UPDATE SET beat_at = EXCLUDED.beat_at, attempt = EXCLUDED.attempt,
  client_id = EXCLUDED.client_id
WHERE hb.attempt <= EXCLUDED.attempt"""

METADATA_BEAT = """UPDATE river_job AS j
SET metadata = j.metadata || jsonb_build_object('health_check_at'::text, to_jsonb(now()))
WHERE j.id = %s AND j.state = 'running'"""


@dataclass(frozen=True)
class Cost:
    wal_bytes_per_beat: float
    hot_fraction: float


def measure(conn: rj.Conn, beat: str, ids: list[int], table: str) -> Cost:
    for job_id in ids:  # first beats: inserts / new keys
        conn.execute(beat, (job_id,))
    conn.execute("SELECT pg_stat_force_next_flush()")
    before = conn.execute(
        "SELECT pg_current_wal_insert_lsn() AS lsn, n_tup_upd, n_tup_hot_upd"
        " FROM pg_stat_user_tables WHERE relid = %s::regclass",
        (table,),
    ).fetchone()
    for _ in range(ROUNDS):
        for job_id in ids:
            conn.execute(beat, (job_id,))
    conn.execute("SELECT pg_stat_force_next_flush()")
    after = conn.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s) AS bytes, n_tup_upd,"
        " n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = %s::regclass",
        (before["lsn"] if before else None, table),
    ).fetchone()
    assert before is not None and after is not None
    beats = ROUNDS * len(ids)
    updates = after["n_tup_upd"] - before["n_tup_upd"]
    hot = after["n_tup_hot_upd"] - before["n_tup_hot_upd"]
    return Cost(float(after["bytes"]) / beats, hot / updates if updates else 0.0)


def test_wal_bytes_per_beat_of_each_store(river_database: RiverDatabaseFactory) -> None:
    dsn = river_database()
    with rj.connect(dsn) as conn:
        conn.execute(heartbeat_table_ddl(None))
        ids = [rj.start_job(conn, None, args=ARGS)[0] for _ in range(JOBS)]
        args_size = conn.execute(
            "SELECT avg(pg_column_size(args))::int AS size FROM river_job"
        ).fetchone()
        conn.execute("VACUUM ANALYZE river_job")
        table = measure(conn, TABLE_BEAT, ids, "river_job_heartbeat")
        metadata = measure(conn, METADATA_BEAT, ids, "river_job")
        indexes = conn.execute(
            sql.SQL("SELECT count(*) AS n FROM pg_index WHERE indrelid = 'river_job'::regclass")
        ).fetchone()

    report = {
        "jobs": JOBS,
        "beats_measured_per_store": ROUNDS * JOBS,
        "args_bytes": args_size["size"] if args_size else None,
        "river_job_indexes": indexes["n"] if indexes else None,
        "table_store": {
            "wal_bytes_per_beat": round(table.wal_bytes_per_beat),
            "hot": table.hot_fraction,
        },
        "metadata_store": {
            "wal_bytes_per_beat": round(metadata.wal_bytes_per_beat),
            "hot": metadata.hot_fraction,
        },
        "ratio": round(metadata.wal_bytes_per_beat / table.wal_bytes_per_beat, 1),
    }
    print("\nWAL per beat:", json.dumps(report, indent=2))
    # What the design claims and the Table store exists for: beats stay HOT and cost less WAL.
    assert table.hot_fraction > 0.9
    assert metadata.hot_fraction < 0.1
    assert table.wal_bytes_per_beat < metadata.wal_bytes_per_beat
