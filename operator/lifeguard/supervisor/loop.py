"""One policy's supervisor: scan, judge, plan, act and report, every scanInterval or at once
when a pod it may care about ends (the fast path).

A supervisor never lets an error escape its loop: a missing Secret, a bad DSN or a database
outage becomes a condition and an Event on its own policy, and other policies keep working.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lifeguard import plan as planning
from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ClusterError, KubeClient
from lifeguard.metrics import Metrics
from lifeguard.model.conditions import ConditionStatus as S
from lifeguard.model.duration import parse_duration
from lifeguard.model.enums import Cause, Mode
from lifeguard.model.observation import Observation, PodFacts
from lifeguard.model.policy import JobPolicySpec
from lifeguard.river.database import RiverDatabase
from lifeguard.river.durations import kind_durations
from lifeguard.river.errors import DatabaseError, DatabaseUnavailable
from lifeguard.river.scan import Scan
from lifeguard.river.scan import scan as scan_jobs
from lifeguard.supervisor.act import execute
from lifeguard.supervisor.announce import Announcer
from lifeguard.supervisor.connection import ConnectionProblem, DatabaseSource
from lifeguard.supervisor.gather import Gatherer, scan_query
from lifeguard.supervisor.policy import PolicyRef, SpecError, parse_spec
from lifeguard.supervisor.report import (
    CIRCUIT_OPEN,
    DATABASE_CONNECTED,
    NODES_OBSERVED,
    READY,
    StatusBook,
)
from lifeguard.supervisor.stats import adaptive_limits, kind_stats
from lifeguard.verdict import Verdict, decide

log = logging.getLogger(__name__)

# A status write at least this often, so lastScanTime shows the operator is alive.
STATUS_REFRESH_SECONDS = 60.0
# Pod deaths often come in bursts (a node, a rollout): gather them into one fast scan.
FAST_PATH_DEBOUNCE_SECONDS = 0.2
# Run-time history changes slowly; reading it is one bounded query.
STATS_REFRESH_SECONDS = 60.0
STATS_PER_KIND = 1000

Judged = list[tuple[Observation, Verdict]]


class Supervisor:
    """The loop for one JobPolicy."""

    def __init__(
        self, ref: PolicyRef, *, kube: KubeClient, inventory: Inventory, metrics: Metrics
    ) -> None:
        self.ref = ref
        self._kube = kube
        self._inventory = inventory
        self._metrics = metrics
        self._source = DatabaseSource(kube, ref.namespace)
        self._announcer = Announcer(ref, kube=kube, metrics=metrics, inventory=inventory)
        self._spec: JobPolicySpec | None = None
        self._spec_error: str | None = None
        self._book = StatusBook(generation=None)
        self._safety = planning.SafetyState()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_patch = 0.0
        self._seen_verdicts: set[tuple[int, datetime, Cause]] = set()
        self._running: dict[int, tuple[str, float]] = {}
        self._adaptive_limits: dict[str, float] = {}
        self._stats_read_at = 0.0
        self.scans = 0

    # -- lifecycle -------------------------------------------------------------------------
    def configure(
        self, spec: Mapping[str, Any], generation: int | None, status: Mapping[str, Any] | None
    ) -> None:
        """Takes a new spec (create, resume, update); the next scan uses it."""
        if self._book.generation is None:
            self._book = StatusBook.resume(dict(status or {}), generation)
        self._book.generation = generation
        try:
            self._spec, self._spec_error = parse_spec(spec), None
        except SpecError as exc:
            self._spec, self._spec_error = None, str(exc)
        self._source.forget_secret()
        self._stats_read_at = 0.0
        self._wake.set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"supervisor {self.ref}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._source.close()
        self._metrics.forget_policy(str(self.ref), [c.value for c in Cause])

    def poke(self, pod: PodFacts) -> None:
        """The fast path: a pod this policy may care about just ended; look at once."""
        if pod.namespace != self.ref.namespace or self._spec is None:
            return
        if self._spec.workers.pod_selector.matches(dict(pod.labels)):
            self._wake.set()

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any single failure
                log.exception("policy %s: scan failed unexpectedly", self.ref)
            interval = parse_duration(self._spec.scan_interval) if self._spec else 30.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
                await asyncio.sleep(FAST_PATH_DEBOUNCE_SECONDS)
            except TimeoutError:
                pass

    async def cycle(self) -> None:
        """One gather → decide → act → report round."""
        started = time.monotonic()
        self._book.ensure_conditions(datetime.now(UTC))
        try:
            if self._spec is None:
                await self._not_ready("InvalidSpec", self._spec_error or "no spec")
            else:
                await self._scan_and_act(self._spec)
        finally:
            self._note_nodes()
            await self._report()
            self._metrics.scan_duration.labels(str(self.ref)).observe(time.monotonic() - started)
            self.scans += 1

    async def _scan_and_act(self, spec: JobPolicySpec) -> None:
        try:
            db = await self._source.database(spec)
        except ConnectionProblem as exc:
            await self._not_ready(exc.reason, str(exc))
            self._book.condition(
                DATABASE_CONNECTED, S.UNKNOWN, exc.reason, "No database URL to connect to.", _now()
            )
            return
        query = scan_query(spec)
        try:
            scanned = await scan_jobs(db, query)
        except DatabaseError as exc:
            await self._database_failed(exc)
            return
        await self._connected(db, scanned.now)
        await self._refresh_stats(spec, db, query.schema)

        observations = Gatherer(
            self.ref.namespace, spec, self._inventory, adaptive_limits=self._adaptive_limits
        ).observe(scanned.jobs, scanned.now)
        judged = [(obs, decide(obs)) for obs in observations]
        plan = planning.plan(judged, spec, self._safety, scanned.now)
        self._safety = plan.state
        self._observe(judged)

        to_apply = [a for a in plan.actions if not a.dry_run]
        outcomes = (
            await execute(
                to_apply, db=db, schema=query.schema, kube=self._kube, namespace=self.ref.namespace
            )
            if to_apply
            else []
        )
        running = {obs.job.id for obs, _ in judged}
        await self._announcer.decisions(plan, outcomes, self._book, scanned.now, running)
        self._scanned(spec, scanned, judged, plan)

    def _scanned(
        self, spec: JobPolicySpec, scanned: Scan, judged: Judged, plan: planning.Plan
    ) -> None:
        now, book = scanned.now, self._book
        breaker_open = plan.state.circuit_open
        book.condition(
            CIRCUIT_OPEN,
            S.TRUE if breaker_open else S.FALSE,
            "TooManyStale" if breaker_open else "Closed",
            plan.state.breaker_message if breaker_open else "Heartbeat-based actions are allowed.",
            now,
        )
        self._metrics.circuit_open.labels(str(self.ref)).set(1 if breaker_open else 0)
        mode = "dry run" if spec.safety.mode is Mode.DRY_RUN else "enforcing"
        truncated = f" (only the first {len(judged)} read)" if scanned.truncated else ""
        book.condition(
            READY,
            S.TRUE,
            "Scanning",
            f"Watching {len(judged)} running jobs{truncated}, {mode}.",
            now,
        )
        book.scanned([verdict.cause for _, verdict in judged], now)

    # -- database --------------------------------------------------------------------------
    async def _connected(self, db: RiverDatabase, now: datetime) -> None:
        if self._book.condition(
            DATABASE_CONNECTED, S.TRUE, "Connected", f"Scanning {db.target}.", now
        ):
            await self._announcer.event(
                "Normal", "DatabaseReconnected", f"Connected to {db.target} again."
            )

    async def _database_failed(self, exc: DatabaseError) -> None:
        self._metrics.database_errors.labels(str(self.ref)).inc()
        log.warning("policy %s: %s", self.ref, exc, extra={"policy": str(self.ref)})
        reason = "Unreachable" if isinstance(exc, DatabaseUnavailable) else type(exc).__name__
        if self._book.condition(DATABASE_CONNECTED, S.FALSE, reason, str(exc), _now()):
            await self._announcer.event("Warning", "DatabaseUnreachable", str(exc))
        await self._not_ready("DatabaseUnavailable", str(exc))

    async def _refresh_stats(
        self, spec: JobPolicySpec, db: RiverDatabase, schema: str | None
    ) -> None:
        if time.monotonic() - self._stats_read_at < STATS_REFRESH_SECONDS:
            return
        self._stats_read_at = time.monotonic()
        try:
            durations = await kind_durations(
                db,
                parse_duration(spec.adaptive.window),
                STATS_PER_KIND,
                schema=schema,
                kinds=spec.selector.kinds or None,
            )
        except DatabaseError as exc:
            log.warning("policy %s: %s", self.ref, exc)
            return
        self._adaptive_limits = adaptive_limits(durations, spec.adaptive)
        self._book.kind_stats = kind_stats(durations, self._adaptive_limits)

    # -- report ----------------------------------------------------------------------------
    async def _not_ready(self, reason: str, message: str) -> None:
        if self._book.condition(READY, S.FALSE, reason, message, _now()) or self.scans == 0:
            await self._announcer.event("Warning", reason, message)

    def _note_nodes(self) -> None:
        if not self._inventory.nodes_observed:
            self._book.condition(
                NODES_OBSERVED,
                S.FALSE,
                "NodeReadForbidden",
                "The operator may not read nodes: node loss is detected from heartbeats alone.",
                _now(),
            )

    def _observe(self, judged: Sequence[tuple[Observation, Verdict]]) -> None:
        """Gauges and histograms of one scan; verdicts counted once per attempt and cause."""
        policy = str(self.ref)
        counts = dict.fromkeys((c.value for c in Cause), 0)
        seen: set[tuple[int, datetime, Cause]] = set()
        running: dict[int, tuple[str, float]] = {}
        for obs, verdict in judged:
            counts[verdict.cause.value] += 1
            key = (obs.job.id, obs.job.attempted_at, verdict.cause)
            seen.add(key)
            if key not in self._seen_verdicts:
                self._metrics.verdicts.labels(policy, verdict.cause.value, verdict.reason).inc()
            if obs.job.beat_age is not None:
                self._metrics.heartbeat_age.labels(policy).observe(obs.job.beat_age)
            running[obs.job.id] = (obs.job.kind, obs.job.running_for)
        for cause, count in counts.items():
            self._metrics.running_jobs.labels(policy, cause).set(count)
        for job_id, (kind, running_for) in self._running.items():
            if job_id not in running:
                label = self._metrics.kind_label(kind)
                self._metrics.job_duration.labels(label).observe(running_for)
        self._seen_verdicts, self._running = seen, running

    async def _report(self) -> None:
        book = self._book
        changes = book.changes()
        if changes is None and time.monotonic() - self._last_patch < STATUS_REFRESH_SECONDS:
            return
        rendered = changes if changes is not None else book.render()
        try:
            await self._kube.patch_policy_status(self.ref.namespace, self.ref.name, rendered)
        except ClusterError as exc:
            log.warning("policy %s: %s", self.ref, exc)
            return
        book.patched(rendered)
        self._last_patch = time.monotonic()


def _now() -> datetime:
    return datetime.now(UTC)
