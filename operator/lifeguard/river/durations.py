"""How long finished jobs of each kind ran: the history behind adaptive runtime limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from lifeguard.river.database import RiverDatabase, qualified

# An upper bound on rows read per call, whatever the window: the cost stays bounded on a busy
# queue (the newest completions are the most relevant ones anyway).
DEFAULT_MAX_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class KindDurations:
    """Percentiles (seconds) of the last attempt's runtime of completed jobs of one kind."""

    kind: str
    samples: int
    p50: float
    p95: float
    p99: float


async def kind_durations(
    db: RiverDatabase,
    window_seconds: float,
    limit_per_kind: int,
    *,
    schema: str | None,
    kinds: Sequence[str] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[KindDurations]:
    """p50/p95/p99 of `finalized_at - attempted_at` for jobs completed within the window.

    Reads the newest completions first through River's river_job_state_and_finalized_at_index
    (state, finalized_at), at most `max_rows` in all and `limit_per_kind` per kind.
    """
    kind_filter = sql.SQL("AND kind = ANY(%(kinds)s::text[])") if kinds is not None else sql.SQL("")
    statement = sql.SQL(
        """SELECT kind, count(*) AS samples,
  percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY seconds) AS quantiles
FROM (
  SELECT kind, seconds, row_number() OVER (PARTITION BY kind ORDER BY finalized_at DESC) AS n
  FROM (
    SELECT kind, finalized_at, EXTRACT(EPOCH FROM finalized_at - attempted_at)::float8 AS seconds
    FROM {river_job}
    WHERE state = 'completed' AND finalized_at IS NOT NULL
      AND finalized_at > now() - make_interval(secs => %(window)s)
      AND attempted_at IS NOT NULL {kind_filter}
    ORDER BY finalized_at DESC
    LIMIT %(max_rows)s
  ) AS recent
) AS ranked
WHERE n <= %(per_kind)s
GROUP BY kind
ORDER BY kind"""
    ).format(river_job=qualified(schema, "river_job"), kind_filter=kind_filter)
    params: dict[str, Any] = {
        "window": float(window_seconds),
        "max_rows": max_rows,
        "per_kind": limit_per_kind,
        "kinds": list(kinds) if kinds is not None else None,
    }
    rows = await db.fetch(statement, params, schema=schema, doing="read job durations")
    return [
        KindDurations(
            kind=row["kind"],
            samples=row["samples"],
            p50=row["quantiles"][0],
            p95=row["quantiles"][1],
            p99=row["quantiles"][2],
        )
        for row in rows
    ]
