"""Pruning heartbeat rows that no worker will remove: those of workers that died.

The Go middleware removes its job's row once River has recorded the outcome, so the table holds
about one row per running job. A worker killed mid-job (OOM, node loss, SIGKILL) never does;
its jobs are retried or rescued and its rows stay. Each policy prunes its database on a
schedule, in bounded batches (one DELETE each), so the table stays bounded without one long
statement competing with the workers' beats. Policies sharing a database prune the same rows;
the DELETE is idempotent, so the only cost is a few empty statements.
"""

import logging

from lifeguard.metrics import Metrics
from lifeguard.river.database import RiverDatabase
from lifeguard.river.errors import DatabaseError, HeartbeatTableMissing
from lifeguard.river.heartbeats import DEFAULT_PRUNE_BATCH, prune_heartbeats

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 60.0
# Per round at most this many batches: 10 000 rows a minute outpaces any realistic rate of
# workers dying mid-job, and a backlog (the first round after an upgrade) drains over minutes.
PRUNE_BATCHES_PER_ROUND = 10


class HeartbeatPruner:
    """One policy's schedule for pruning its database's heartbeat table."""

    def __init__(
        self,
        policy: str,
        metrics: Metrics,
        *,
        interval: float = PRUNE_INTERVAL_SECONDS,
        batch: int = DEFAULT_PRUNE_BATCH,
        batches_per_round: int = PRUNE_BATCHES_PER_ROUND,
    ) -> None:
        self._policy = policy
        self._metrics = metrics
        self._interval = interval
        self._batch = batch
        self._batches_per_round = batches_per_round
        self._next_at: float | None = None

    def due(self, monotonic_now: float) -> bool:
        return self._next_at is None or monotonic_now >= self._next_at

    async def prune_if_due(
        self, db: RiverDatabase, *, schema: str | None, monotonic_now: float
    ) -> int:
        """Prunes up to a round's batches when one is due; returns the rows deleted.

        Failures are logged and wait for the next round: pruning is housekeeping, and the scan
        reports an unusable database on its own.
        """
        if not self.due(monotonic_now):
            return 0
        self._next_at = monotonic_now + self._interval
        # Policies sharing a pool share its database: another one pruned it this period.
        shared = schema or ""
        if db.prune_due.get(shared, monotonic_now) > monotonic_now:
            return 0
        db.prune_due[shared] = monotonic_now + self._interval
        pruned = 0
        try:
            for _ in range(self._batches_per_round):
                deleted = await prune_heartbeats(db, schema=schema, batch=self._batch)
                pruned += deleted
                if deleted < self._batch:
                    break
        except HeartbeatTableMissing:
            pass  # the scan says so in the policy's conditions
        except DatabaseError as exc:
            log.warning("policy %s: pruning heartbeats: %s", self._policy, exc)
        if pruned:
            self._metrics.heartbeat_rows_pruned.labels(self._policy).inc(pruned)
            log.info(
                "policy %s: pruned %d heartbeat rows of jobs no longer running",
                self._policy,
                pruned,
            )
        return pruned
