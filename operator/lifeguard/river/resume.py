"""The checkpoint a fenced write that ends or cancels an attempt leaves for the next attempt.

Retry, cancel and discard copy the attempt's last progress into the job's metadata under
`lifeguard:resume` = {attempt, progress, at}, in their own statement: the heartbeat row is
pruned once the attempt ends, the key is not. The Go module's heartbeat.ResumeFrom reads it in
the next attempt, whether Lifeguard's retry started it or a user's River JobRetry of the
cancelled or discarded job (which keeps metadata, dropping only `cancel_attempted_at`).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from lifeguard.model.enums import HeartbeatStore
from lifeguard.river.database import qualified
from lifeguard.river.heartbeats import HeartbeatLocation
from lifeguard.river.sqltext import rfc3339, safe_timestamptz

RESUME_KEY = "lifeguard:resume"


def resume_entry(schema: str | None, source: HeartbeatLocation | None) -> sql.Composable:
    """`{"lifeguard:resume": {attempt, progress, at}}` from this attempt's last progress, or `{}`,
    as a jsonb expression over the job row `j` (needs `resume_params(source)`).

    Only progress of this run counts: written for this attempt number at or after this
    attempted_at (a refunded attempt repeats its number), with a payload that is not null. An
    attempt without progress yields `{}`, so a checkpoint of an earlier attempt is kept.
    """
    if source is None or source.store is HeartbeatStore.NONE:
        # Workers without beats report no progress either: nothing to resume from.
        return sql.SQL("'{}'::jsonb")
    if source.store is HeartbeatStore.TABLE:
        return sql.SQL(
            """coalesce((SELECT jsonb_build_object({key}, jsonb_build_object(
      'attempt', h.attempt, 'progress', h.progress, 'at', {at}))
    FROM {heartbeats} AS h
    WHERE h.job_id = j.id AND h.attempt = j.attempt AND h.progress_at >= j.attempted_at
      AND jsonb_typeof(h.progress) <> 'null'), '{{}}'::jsonb)"""
        ).format(
            key=sql.Literal(RESUME_KEY),
            at=rfc3339(sql.SQL("h.progress_at")),
            heartbeats=qualified(schema, "river_job_heartbeat"),
        )
    progress_at = safe_timestamptz(sql.SQL("(j.metadata ->> %(progress_at_key)s)"))
    progress = sql.SQL("(j.metadata -> %(progress_key)s)")
    return sql.SQL(
        """CASE WHEN {progress_at} >= j.attempted_at AND jsonb_typeof({progress}) <> 'null'
      THEN jsonb_build_object({key}, jsonb_build_object(
        'attempt', j.attempt, 'progress', {progress}, 'at', {at}))
      ELSE '{{}}'::jsonb END"""
    ).format(
        progress_at=progress_at,
        progress=progress,
        key=sql.Literal(RESUME_KEY),
        at=rfc3339(progress_at),
    )


def resume_params(source: HeartbeatLocation | None) -> dict[str, Any]:
    """The statement parameters `resume_entry(schema, source)` refers to."""
    if source is None or source.store is not HeartbeatStore.METADATA:
        return {}
    return {"progress_at_key": source.progress_at_key, "progress_key": source.progress_key}
