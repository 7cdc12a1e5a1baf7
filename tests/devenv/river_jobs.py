"""River's own writes, re-enacted in SQL for tests: insert, fetch, complete, rescue, beat.

Each statement mirrors the riverpgxv5 query River v0.51.2 runs (JobInsertFastMany, JobGetAvailable,
JobSetStateIfRunningMany, JobRescueMany) and the Go heartbeat middleware's guarded upsert, so
tests can place a job in an exact state and race Lifeguard's writes against River's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


def table(schema: str | None, name: str) -> sql.Composable:
    return sql.Identifier(schema, name) if schema is not None else sql.Identifier(name)


Conn = psycopg.Connection[dict[str, Any]]


def river_database_in(create: Callable[..., str], schema: str | None) -> str:
    """A fresh River database (conftest's `river_database` factory) with River in `schema`.

    River's migrator cannot create a schema whose name holds a quote (its migration 005 splices
    the name into SQL), so such a schema is migrated under a plain name and renamed.
    """
    if schema is None or ("'" not in schema and '"' not in schema):
        return create(schema)
    dsn = create("lifeguard_rename_me")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER SCHEMA lifeguard_rename_me RENAME TO {}").format(sql.Identifier(schema))
        )
    return dsn


def connect(dsn: str) -> Conn:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def insert_job(
    conn: Conn,
    schema: str | None,
    *,
    kind: str = "sleep",
    queue: str = "default",
    args: Mapping[str, Any] | None = None,
    max_attempts: int = 25,
    priority: int = 1,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> int:
    """Inserts an `available` job as River's insert does; returns its ID."""
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {t} (args, kind, max_attempts, metadata, priority, queue, state, tags)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'available', %s::varchar[]) RETURNING id"
        ).format(t=table(schema, "river_job")),
        (
            json.dumps(args or {}),
            kind,
            max_attempts,
            json.dumps(metadata or {}),
            priority,
            queue,
            list(tags),
        ),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def fetch_job(conn: Conn, schema: str | None, job_id: int, client_id: str) -> datetime:
    """River's fetch (JobGetAvailable) of one job: running, attempt+1, attempted_at=now()."""
    row = conn.execute(
        sql.SQL(
            "UPDATE {t} SET state = 'running', attempt = attempt + 1, attempted_at = now(),"
            " attempted_by = array_append(attempted_by, %s::text)"
            " WHERE id = %s AND state = 'available' RETURNING attempted_at"
        ).format(t=table(schema, "river_job")),
        (client_id, job_id),
    ).fetchone()
    assert row is not None, f"job {job_id} was not available to fetch"
    attempted_at: datetime = row["attempted_at"]
    return attempted_at


def start_job(
    conn: Conn,
    schema: str | None,
    client_id: str = "worker-1_2026_01_01T00_00_00_000000",
    **insert: Any,
) -> tuple[int, datetime]:
    """Inserts and fetches a job: (id, attempted_at) of a running job."""
    job_id = insert_job(conn, schema, **insert)
    return job_id, fetch_job(conn, schema, job_id, client_id)


COMPLETE_SQL = (
    "UPDATE {t} SET state = 'completed', finalized_at = now()"
    " WHERE id = %s AND state = 'running' RETURNING id"
)


def complete_job(conn: Conn, schema: str | None, job_id: int) -> bool:
    """River's completer for a successful Work: only rows still running (any attempt)."""
    row = conn.execute(
        sql.SQL(COMPLETE_SQL).format(t=table(schema, "river_job")), (job_id,)
    ).fetchone()
    return row is not None


def make_available(conn: Conn, schema: str | None, job_id: int) -> None:
    """River's scheduler moving a due retryable job to available (and a snooze/retry now)."""
    conn.execute(
        sql.SQL(
            "UPDATE {t} SET state = 'available', scheduled_at = now()"
            " WHERE id = %s AND state IN ('retryable', 'scheduled')"
        ).format(t=table(schema, "river_job")),
        (job_id,),
    )


def age_attempt(conn: Conn, schema: str | None, job_id: int, seconds: float) -> datetime:
    """Moves a running attempt's start `seconds` into the DB's past; returns attempted_at."""
    row = conn.execute(
        sql.SQL(
            "UPDATE {t} SET attempted_at = now() - make_interval(secs => %s)"
            " WHERE id = %s RETURNING attempted_at"
        ).format(t=table(schema, "river_job")),
        (seconds, job_id),
    ).fetchone()
    assert row is not None
    attempted_at: datetime = row["attempted_at"]
    return attempted_at


def beat(
    conn: Conn,
    schema: str | None,
    job_id: int,
    *,
    ago: float = 0.0,
    progress_ago: float | None = None,
    progress: Mapping[str, Any] | None = None,
    attempt: int | None = None,
    client_id: str = "worker-1",
) -> None:
    """The middleware's Table-store upsert, `ago` seconds in the DB's past, guarded by attempt."""
    conn.execute(
        sql.SQL(
            """INSERT INTO {hb} AS h (job_id, attempt, client_id, beat_at, progress_at, progress)
SELECT j.id, coalesce(%(attempt)s, j.attempt), %(client)s, now() - make_interval(secs => %(ago)s),
  now() - make_interval(secs => %(pago)s), %(progress)s
FROM {t} AS j WHERE j.id = %(id)s
ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, client_id = excluded.client_id,
  beat_at = excluded.beat_at, progress_at = coalesce(excluded.progress_at, h.progress_at),
  progress = coalesce(excluded.progress, h.progress)
WHERE h.attempt <= excluded.attempt"""
        ).format(hb=table(schema, "river_job_heartbeat"), t=table(schema, "river_job")),
        {
            "attempt": attempt,
            "client": client_id,
            "ago": ago,
            "pago": progress_ago,
            "progress": json.dumps(progress) if progress is not None else None,
            "id": job_id,
        },
    )


def set_metadata(conn: Conn, schema: str | None, job_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(
        sql.SQL("UPDATE {t} SET metadata = metadata || %s::jsonb WHERE id = %s").format(
            t=table(schema, "river_job")
        ),
        (json.dumps(values), job_id),
    )


def job(conn: Conn, schema: str | None, job_id: int) -> dict[str, Any]:
    """The job row, errors decoded, plus the DB's now()."""
    row = conn.execute(
        sql.SQL("SELECT *, state::text AS state, now() AS db_now FROM {t} WHERE id = %s").format(
            t=table(schema, "river_job")
        ),
        (job_id,),
    ).fetchone()
    assert row is not None, f"no job {job_id}"
    return dict(row)
