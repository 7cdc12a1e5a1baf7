"""Running jobs in bulk, as River and the heartbeat middleware would leave them, in one statement.

Each job looks like a real long-running one: `running` with attempt 1, attempted_at in the
recent past, attempted_by naming a pod's River client, realistic ~1 KiB args of many small
fields (River's GIN index on args indexes each of them), and a fresh heartbeat row.
"""

from __future__ import annotations

from typing import Any

import psycopg

QUEUE = "bench"
KIND = "report"

# About 1 KiB of JSON: ids, names, a filter object, a list, and a free-text note.
_ARGS = """jsonb_build_object(
  'report_id', i, 'tenant', 'tenant-' || mod(i, 97), 'requested_by', 'user-' || mod(i, 1013),
  'format', 'parquet', 'compression', 'zstd', 'priority_hint', mod(i, 5),
  'window', jsonb_build_object('from', '2026-01-01T00:00:00Z', 'to', '2026-02-01T00:00:00Z'),
  'filters', jsonb_build_object('region', 'eu-west-' || mod(i, 3), 'status', 'active',
    'min_amount', mod(i, 1000), 'currency', 'EUR'),
  'columns', jsonb_build_array('id', 'created_at', 'amount', 'currency', 'customer_id',
    'invoice_id', 'status', 'region', 'updated_at', 'notes'),
  'destination', 's3://reports-bucket/tenant-' || mod(i, 97) || '/' || md5(i::text) || '.parquet',
  'note', repeat(md5((i * 7)::text), 15))"""


def pod_client_id(index_sql: str, pods: int) -> str:
    """River's default client ID for pod `bench-<n>`: host, underscore, start time."""
    return f"'bench-' || mod({index_sql}, {pods}) || '_2026_01_01T00_00_00_000000'"


def add_running_jobs(
    conn: psycopg.Connection[Any],
    count: int,
    *,
    pods: int = 100,
    queue: str = QUEUE,
    first: int = 0,
    client_sql: str | None = None,
) -> None:
    """Adds `count` running jobs (and their heartbeat rows) in the search path's River tables.

    `i` runs from first + 1 to first + count; `client_sql` (an SQL expression of i) names each
    job's River client, by default one of `pods` bench pods.
    """
    client = client_sql or pod_client_id("i", pods)
    conn.execute(
        f"""INSERT INTO river_job (args, attempt, attempted_at, attempted_by, kind, max_attempts,
  metadata, priority, queue, state, scheduled_at, tags)
SELECT {_ARGS}, 1, now() - make_interval(secs => 60 + mod(i, 3600)), ARRAY[{client}], %s, 25,
  '{{}}'::jsonb, 1, %s, 'running', now() - interval '2 hours', '{{}}'::varchar[]
FROM generate_series(%s::bigint + 1, %s::bigint + %s) AS i""",
        (KIND, queue, first, first, count),
    )
    conn.execute(
        """INSERT INTO river_job_heartbeat (job_id, attempt, client_id, beat_at)
SELECT j.id, j.attempt, j.attempted_by[cardinality(j.attempted_by)],
  now() - make_interval(secs => random() * 10)
FROM river_job AS j
WHERE j.state = 'running'
ON CONFLICT (job_id) DO NOTHING"""
    )
    conn.execute("ANALYZE river_job")
    conn.execute("ANALYZE river_job_heartbeat")


def args_bytes(conn: psycopg.Connection[Any]) -> float:
    row = conn.execute("SELECT avg(octet_length(args::text))::float8 FROM river_job").fetchone()
    assert row is not None
    return float(row[0] or 0.0)


def running_jobs(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM river_job WHERE state = 'running'").fetchone()
    assert row is not None
    return int(row[0])
