"""Freezes one cycle's Snapshot: one scan of the database, the inventory view, the clocks.

The one gathering function, used by the supervisor every cycle and by `lifeguard explain`, so
both judge the same picture. After `gather` returns, nothing reads a clock or the cache until
the next cycle: `reconcile` decides on the Snapshot alone.
"""

import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.reachability import Reachability
from lifeguard.model.duration import parse_duration
from lifeguard.model.enums import HeartbeatStore
from lifeguard.model.ownership import FleetView, PolicyFacts
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.status import KindStat
from lifeguard.plan import BeatingJob, PodRef
from lifeguard.reconcile import (
    ApiserverOutage,
    ClientIds,
    Connected,
    DatabaseFailed,
    DatabaseOutcome,
    InventoryView,
    NoDatabase,
    Scanned,
    Snapshot,
)
from lifeguard.river.database import RiverDatabase
from lifeguard.river.durations import kind_durations
from lifeguard.river.errors import DatabaseError
from lifeguard.river.scan import ScanQuery
from lifeguard.river.scan import scan as scan_jobs
from lifeguard.supervisor.connection import ConnectionProblem
from lifeguard.supervisor.policy import PolicyRef
from lifeguard.supervisor.stats import adaptive_limits, kind_stats

log = logging.getLogger(__name__)

# Run-time history changes slowly; reading it is one bounded query.
STATS_REFRESH_SECONDS = 60.0
STATS_PER_KIND = 1000

# The policy's database (its Secret's URL), or ConnectionProblem.
Connect = Callable[[JobPolicySpec], Awaitable[RiverDatabase]]
# The operator's policies now (the ownership rule's input), taken once the database is known.
FleetSource = Callable[[], FleetView]


def scan_query(spec: JobPolicySpec, *, with_tags: bool = False) -> ScanQuery:
    """What the policy asks the database for."""
    selector = spec.selector
    heartbeat = spec.heartbeat

    return ScanQuery(
        schema=spec.database.schema_,
        store=heartbeat.store,
        metadata_key=heartbeat.metadata_key if heartbeat.store is HeartbeatStore.METADATA else None,
        queues=tuple(selector.queues) if selector.queues else None,
        kinds=tuple(selector.kinds) if selector.kinds else None,
        priorities=tuple(selector.priorities) if selector.priorities else None,
        tags=tuple(selector.tags) if selector.tags else None,
        with_tags=with_tags,
        max_jobs=spec.scan.max_jobs,
        # Workers without beats are never stale: nothing unread counts against the breaker.
        stale_after=spec.stale_after_seconds()
        if heartbeat.store is not HeartbeatStore.NONE
        else None,
        startup_grace=parse_duration(heartbeat.startup_grace),
    )


class KindStatistics:
    """The policy's per-kind run times and adaptive limits, read at most once a minute."""

    def __init__(self) -> None:
        self.adaptive_limits: dict[str, float] = {}
        self.kind_stats: tuple[KindStat, ...] | None = None
        self._read_at: float | None = None
        self._every = STATS_REFRESH_SECONDS

    def forget(self) -> None:
        """The spec changed: read again at the next cycle."""
        self._read_at = None

    async def refresh(self, policy: PolicyRef, spec: JobPolicySpec, db: RiverDatabase) -> None:
        now = time.monotonic()
        if self._read_at is not None and now - self._read_at < self._every:
            return
        self._read_at = now
        # Spread out: policies created together would otherwise all read at the same instant
        # every minute and queue for the shared connections together.
        self._every = STATS_REFRESH_SECONDS * random.uniform(0.8, 1.2)
        try:
            durations = await kind_durations(
                db,
                parse_duration(spec.adaptive.window),
                STATS_PER_KIND,
                schema=spec.database.schema_,
                kinds=spec.selector.kinds or None,
            )
        except DatabaseError as exc:
            log.warning("policy %s: %s", policy, exc)
            return
        self.adaptive_limits = adaptive_limits(durations, spec.adaptive)
        self.kind_stats = tuple(kind_stats(durations, self.adaptive_limits))


def _last_outage(reachability: Reachability | None) -> ApiserverOutage | None:
    outage = reachability.outage if reachability is not None else None
    if outage is None or outage.seconds is None:
        return None
    return ApiserverOutage(outage.started, outage.seconds, outage.error)


async def gather(
    policy: PolicyRef,
    spec: JobPolicySpec | None,
    inventory: Inventory,
    connect: Connect,
    stats: KindStatistics,
    *,
    fleet_source: FleetSource | None = None,
    reachability: Reachability | None = None,
    beating_elsewhere: Mapping[PodRef, tuple[BeatingJob, ...]] | None = None,
) -> tuple[Snapshot, RiverDatabase | None]:
    """The cycle's Snapshot, and the database to write to when the scan succeeded.

    With a fleet source, the Snapshot carries the operator's policies and the pods of the
    jobs' client prefixes in every watched namespace: the policy then judges its own jobs only.
    """
    db: RiverDatabase | None = None
    outcome: DatabaseOutcome | None = None
    prefixes: set[str] = set()
    fleet: FleetView | None = None
    me: PolicyFacts | None = None
    if spec is not None:
        try:
            db = await connect(spec)
        except ConnectionProblem as exc:
            outcome = NoDatabase(exc.reason, str(exc))
        else:
            if fleet_source is not None:
                fleet = fleet_source()
                me = fleet.policy(str(policy))
            with_tags = me is not None and fleet is not None and fleet.rivals_select_by_tags(me)
            outcome = await _scan(db, spec, with_tags=with_tags)
            if isinstance(outcome, Connected):
                await stats.refresh(policy, spec, db)
                prefixes = ClientIds.of(spec).prefixes(outcome.scan.jobs)
            else:
                db = None
    # The freeze: from here on, the cycle knows only what the Snapshot holds.
    monotonic = time.monotonic()
    pods, nodes = inventory.freeze(policy.namespace, prefixes, monotonic)
    elsewhere = inventory.freeze_elsewhere(policy.namespace, prefixes) if fleet else {}
    snapshot = Snapshot(
        policy=policy.name,
        wall=datetime.now(UTC),
        monotonic=monotonic,
        inventory=InventoryView(
            pods,
            nodes,
            inventory.nodes_observed,
            elsewhere,
            jobs=inventory.owner_jobs(policy.namespace, pods),
            leases_blind=inventory.leases_blind(monotonic),
        ),
        database=outcome,
        adaptive_limits=dict(stats.adaptive_limits),
        kind_stats=stats.kind_stats,
        fleet=fleet,
        me=me,
        apiserver_outage=_last_outage(reachability),
        beating_elsewhere=dict(beating_elsewhere or {}),
    )
    return snapshot, db


async def _scan(db: RiverDatabase, spec: JobPolicySpec, *, with_tags: bool) -> DatabaseOutcome:
    try:
        scanned = await scan_jobs(db, scan_query(spec, with_tags=with_tags))
    except DatabaseError as exc:
        return DatabaseFailed(exc.reason, str(exc), event_reason=exc.event_reason)
    return Connected(
        db.target,
        Scanned(
            tuple(scanned.jobs),
            scanned.now,
            truncated=scanned.truncated,
            running=scanned.running,
            unread_stale_by_kind=scanned.unread_stale_by_kind,
        ),
    )
