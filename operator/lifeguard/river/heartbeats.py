"""Where heartbeats live; the heartbeat table's DDL (identical to the Go heartbeat.Migrate) and
pruning."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from lifeguard.model.enums import HeartbeatStore
from lifeguard.river.database import RiverDatabase, qualified
from lifeguard.river.errors import SchemaNotFound, describe_schema

DEFAULT_PRUNE_BATCH = 1000
# The Go heartbeat.Migrate's advisory lock key (heartbeat/migrate.go): both sides serialise on it.
MIGRATE_LOCK_KEY = "river_lifeguard.heartbeat.migrate"

# No foreign key: River's cleaner deletes finished jobs and must not pay for our rows. A low
# fillfactor leaves room on each page so a beat (an UPDATE of non-indexed columns) stays HOT.
_DDL = """CREATE TABLE IF NOT EXISTS {table} (
  job_id bigint PRIMARY KEY, attempt smallint NOT NULL, client_id text NOT NULL,
  beat_at timestamptz NOT NULL, progress_at timestamptz, progress jsonb
) WITH (fillfactor = 50)"""


@dataclass(frozen=True, slots=True)
class HeartbeatLocation:
    """Where a policy's workers write beats and progress (the Go module's two stores).

    Table: `<schema>.river_job_heartbeat`. Metadata: `river_job.metadata` under `metadata_key`
    (the beat), `<key>_progress_at` and `<key>_progress` (heartbeat/store.go writes all three).
    """

    store: HeartbeatStore = HeartbeatStore.TABLE
    metadata_key: str | None = None

    def __post_init__(self) -> None:
        if self.store is HeartbeatStore.METADATA and not self.metadata_key:
            raise ValueError("the Metadata heartbeat store needs a metadata_key")

    @property
    def progress_at_key(self) -> str:
        return f"{self.metadata_key}_progress_at"

    @property
    def progress_key(self) -> str:
        return f"{self.metadata_key}_progress"


def heartbeat_table_ddl(schema: str | None) -> sql.Composed:
    return sql.SQL(_DDL).format(table=qualified(schema, "river_job_heartbeat"))


async def migrate_heartbeat_table(db: RiverDatabase, *, schema: str | None) -> bool:
    """Creates `river_job_heartbeat` next to River's tables; True if it was created now.

    Idempotent. It takes the advisory lock the Go heartbeat.Migrate takes, so workers starting
    at once and this command never race in the catalog (CREATE TABLE IF NOT EXISTS alone can).
    """
    async with db.connection(schema=schema, doing="migrate the heartbeat table") as conn:
        river_job = qualified(schema, "river_job").as_string(conn)
        heartbeat = qualified(schema, "river_job_heartbeat").as_string(conn)
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (MIGRATE_LOCK_KEY,)
            )
            cursor = await conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL AS river,"
                " to_regclass(%s) IS NOT NULL AS heartbeat",
                (river_job, heartbeat),
            )
            found = await cursor.fetchone()
            assert found is not None
            if not found["river"]:
                raise SchemaNotFound(
                    f"migrate the heartbeat table: {db.target} ({describe_schema(schema)}) has"
                    " no river_job table; run River's migrations first"
                )
            if found["heartbeat"]:
                return False
            await conn.execute(heartbeat_table_ddl(schema))
            return True


async def prune_heartbeats(
    db: RiverDatabase, *, schema: str | None, batch: int = DEFAULT_PRUNE_BATCH
) -> int:
    """Deletes up to `batch` rows whose job no longer runs that attempt; returns how many.

    The DELETE matches on (job_id, attempt) of the rows found stale, so a beat that the worker
    upserted for a new attempt in the meantime is rechecked against the new attempt and kept.
    """
    statement = sql.SQL(
        """DELETE FROM {heartbeat} AS h
USING (
  SELECT s.job_id, s.attempt FROM {heartbeat} AS s
  WHERE NOT EXISTS (
    SELECT 1 FROM {river_job} AS j
    WHERE j.id = s.job_id AND j.state = 'running' AND j.attempt = s.attempt)
  LIMIT %(batch)s
) AS stale
WHERE h.job_id = stale.job_id AND h.attempt = stale.attempt"""
    ).format(
        heartbeat=qualified(schema, "river_job_heartbeat"),
        river_job=qualified(schema, "river_job"),
    )
    async with db.connection(schema=schema, doing="prune heartbeats") as conn:
        cursor = await conn.execute(statement, {"batch": batch})
        return cursor.rowcount
