"""The scan: every running job a policy selects, with its heartbeat ages, in one round trip.

Ages are computed by the database (`now() - x`), so the operator host's clock never enters a
verdict; the scan also returns that `now()` for the supervisor to inject into the pure core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql

from lifeguard.model.enums import HeartbeatStore
from lifeguard.model.observation import JobFacts
from lifeguard.model.own_action import OWN_ACTION_KEY
from lifeguard.river.actions import INFRA_RETRIES_KEY
from lifeguard.river.database import RiverDatabase, qualified
from lifeguard.river.heartbeats import HeartbeatLocation
from lifeguard.river.sqltext import age_seconds, json_counter, safe_timestamptz

# Progress payloads are for humans (explain, events); a worker must not make scans heavy.
PROGRESS_MAX_CHARS = 512
DEFAULT_MAX_JOBS = 10_000


@dataclass(frozen=True, slots=True)
class ScanQuery:
    """What one policy scans: where River lives, where beats are, and which jobs it selects.

    Selector lists hold alternatives (a job in any listed queue matches); the lists that are set
    must all match. None selects everything; an empty tuple selects nothing. Tags match when the
    job carries any of them.
    """

    schema: str | None = None
    store: HeartbeatStore = HeartbeatStore.TABLE
    metadata_key: str | None = None
    queues: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    priorities: tuple[int, ...] | None = None
    tags: tuple[str, ...] | None = None
    max_jobs: int = DEFAULT_MAX_JOBS
    # Read each job's tags too: another policy that may own these jobs selects by tags.
    with_tags: bool = False
    # The policy-wide stale threshold and startup grace (seconds): when the scan is truncated,
    # the jobs it did not read are counted as stale by these (tiers are not applied to them).
    stale_after: float | None = None
    startup_grace: float = 0.0

    def __post_init__(self) -> None:
        if self.store is HeartbeatStore.METADATA and not self.metadata_key:
            raise ValueError("the Metadata heartbeat store needs a metadata_key")
        if self.max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")

    @property
    def heartbeats(self) -> HeartbeatLocation:
        """Where this policy's beats and progress are (a retry copies progress from there)."""
        return HeartbeatLocation(self.store, self.metadata_key)


@dataclass(frozen=True, slots=True)
class Scan:
    """The running jobs at the database's `now`, at most max_jobs of them (oldest ID first);
    `running` counts every running job the selector matches, read or not."""

    now: datetime
    jobs: list[JobFacts]
    running: int
    # Of the running jobs the scan did not read (beyond max_jobs), those whose beat is older
    # than the query's stale_after (or who never beat past the startup grace), by kind.
    unread_stale_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def unread_stale(self) -> int:
        return sum(self.unread_stale_by_kind.values())

    @property
    def truncated(self) -> bool:
        return self.running > len(self.jobs)


async def scan(db: RiverDatabase, query: ScanQuery) -> Scan:
    """Running jobs matching the query's selector, oldest ID first."""
    statement, params = scan_statement(query)
    rows = await db.fetch_tuples(statement, params, schema=query.schema, doing="scan running jobs")
    now: datetime = rows[0][0]
    running: int = rows[0][1]
    unread_stale: dict[str, int] = {str(k): int(v) for k, v in (rows[0][2] or {}).items()}
    # Columns after the clock and the counts are JobFacts' fields in order (see
    # scan_statement); tags are only read when asked for (with_tags, last column): decoding an
    # array per row would cost more than the rest.
    if query.with_tags:
        jobs = [_with_tags(JobFacts(*row[3:-1]), row[-1]) for row in rows if row[3] is not None]
    else:
        jobs = [JobFacts(*row[3:]) for row in rows if row[3] is not None]
    return Scan(
        now=now, jobs=jobs, running=max(running, len(jobs)), unread_stale_by_kind=unread_stale
    )


def _with_tags(facts: JobFacts, tags: list[str] | None) -> JobFacts:
    facts.tags = tuple(tags or ())
    return facts


def scan_statement(query: ScanQuery) -> tuple[sql.Composed, dict[str, Any]]:
    """The scan's SQL and parameters (exposed for EXPLAIN in tests)."""
    metadata = sql.SQL("j.metadata")
    params: dict[str, Any] = {"limit": query.max_jobs, "progress_chars": PROGRESS_MAX_CHARS}
    if query.store is HeartbeatStore.TABLE:
        # An attempt refunded by a retry repeats its number: a beat from before this run
        # started belongs to the previous run, so it is no beat at all.
        heartbeat_join: sql.Composable = sql.SQL(
            "LEFT JOIN {table} AS h ON h.job_id = j.id AND h.attempt = j.attempt"
            " AND h.beat_at >= j.attempted_at"
        ).format(table=qualified(query.schema, "river_job_heartbeat"))
        beat_at: sql.Composable = sql.SQL("h.beat_at")
        progress_at: sql.Composable = sql.SQL("h.progress_at")
        progress: sql.Composable = sql.SQL("h.progress")
    elif query.store is HeartbeatStore.NONE:
        # Workers without beats: nothing to join or read; the beat and progress ages are NULL.
        heartbeat_join = sql.SQL("")
        beat_at = progress_at = sql.SQL("NULL::timestamptz")
        progress = sql.SQL("NULL")
    else:
        assert query.metadata_key is not None  # checked by ScanQuery
        params |= {
            "beat_key": query.metadata_key,
            "progress_at_key": query.heartbeats.progress_at_key,
            "progress_key": query.heartbeats.progress_key,
        }
        heartbeat_join = sql.SQL("")
        # Metadata outlives an attempt: a value older than this attempt's start is a leftover.
        beat_at = _this_attempt(safe_timestamptz(sql.SQL("(j.metadata ->> %(beat_key)s)")))
        progress_at = _this_attempt(
            safe_timestamptz(sql.SQL("(j.metadata ->> %(progress_at_key)s)"))
        )
        progress = sql.SQL("(j.metadata -> %(progress_key)s)")

    conditions: list[sql.Composable] = [sql.SQL("j.state = 'running'")]
    for column, values, cast in (
        ("queue", query.queues, "text[]"),
        ("kind", query.kinds, "text[]"),
        ("priority", query.priorities, "smallint[]"),
    ):
        if values is not None:
            params[column] = list(values)
            conditions.append(
                sql.SQL("j.{col} = ANY(%({p})s::{cast})").format(
                    col=sql.Identifier(column), p=sql.SQL(column), cast=sql.SQL(cast)
                )
            )
    if query.tags is not None:
        params["tags"] = list(query.tags)
        conditions.append(sql.SQL("j.tags && %(tags)s::varchar[]"))

    # The lateral join keeps one row (with the clock) when no job runs: one round trip always.
    # `state = 'running'` leads River's river_job_prioritized_fetching_index (state, queue, ...).
    # The count reads every running job the selector matches, beyond max_jobs too, from that
    # index (a heap visit only for kinds and tags): how many jobs a truncated scan left unread,
    # and the circuit breaker's denominator.
    # Only a truncated scan counts the stale jobs it did not read (PostgreSQL evaluates the
    # uncorrelated subquery in the CASE only when its branch is taken).
    params |= {"stale_after": query.stale_after, "startup_grace": query.startup_grace}
    statement = sql.SQL(
        """SELECT clock.now, clock.running, CASE WHEN clock.running > %(limit)s
    AND %(stale_after)s::float8 IS NOT NULL THEN (
  SELECT coalesce(jsonb_object_agg(by_kind.kind, by_kind.stale), '{{}}'::jsonb) FROM (
    SELECT unread.kind, count(*) AS stale FROM (
      SELECT {beat_at} AS beat_at, j.attempted_at, j.kind FROM {river_job} AS j {heartbeat_join}
      WHERE {conditions} ORDER BY j.id OFFSET %(limit)s
    ) AS unread
    WHERE coalesce(unread.beat_at, unread.attempted_at
        + make_interval(secs => %(startup_grace)s::float8 - %(stale_after)s::float8))
      < now() - make_interval(secs => %(stale_after)s::float8)
    GROUP BY unread.kind
  ) AS by_kind
) END AS unread_stale, job.* FROM (
  SELECT now() AS now, (SELECT count(*) FROM {river_job} AS j WHERE {conditions}) AS running
) AS clock
LEFT JOIN LATERAL (
  SELECT j.id, j.kind, j.queue, j.priority::int, j.attempt::int, j.max_attempts::int,
    j.attempted_at,
    j.attempted_by[cardinality(j.attempted_by)] AS client_id,
    coalesce({running_for}, 0) AS running_for,
    {beat_age} AS beat_age,
    {progress_age} AS progress_age,
    left({progress}::text, %(progress_chars)s) AS progress,
    coalesce(cardinality(j.errors), 0) AS error_count,
    {infra_retries} AS infra_retries,
    {cancel_age} AS cancel_requested_age,
    CASE WHEN {own_action_at} >= j.attempted_at THEN (j.metadata -> {own_action_key})::text
      END AS own_action{tags}
  FROM {river_job} AS j {heartbeat_join}
  WHERE {conditions}
  ORDER BY j.id
  LIMIT %(limit)s
) AS job ON true"""
    ).format(
        running_for=age_seconds(sql.SQL("j.attempted_at")),
        beat_age=age_seconds(beat_at),
        progress_age=age_seconds(progress_at),
        progress=progress,
        infra_retries=json_counter(metadata, INFRA_RETRIES_KEY),
        cancel_age=age_seconds(safe_timestamptz(sql.SQL("(j.metadata ->> 'cancel_attempted_at')"))),
        own_action_at=safe_timestamptz(
            sql.SQL("(j.metadata -> {key} ->> 'at')").format(key=sql.Literal(OWN_ACTION_KEY))
        ),
        own_action_key=sql.Literal(OWN_ACTION_KEY),
        river_job=qualified(query.schema, "river_job"),
        heartbeat_join=heartbeat_join,
        conditions=sql.SQL(" AND ").join(conditions),
        tags=sql.SQL(",\n    j.tags") if query.with_tags else sql.SQL(""),
        beat_at=beat_at,
    )
    return statement, params


def _this_attempt(timestamp: sql.Composable) -> sql.Composable:
    return sql.SQL("(CASE WHEN {ts} >= j.attempted_at THEN {ts} END)").format(ts=timestamp)
