"""One policy's supervisor: scan, judge, plan, act and report, every scanInterval or at once
when a pod it may care about ends (the fast path).

A supervisor never lets an error escape its loop: a missing Secret, a bad DSN or a database
outage becomes a condition and an Event on its own policy, and other policies keep working.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from lifeguard import plan as planning
from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import (
    ClusterError,
    Forbidden,
    KubeClient,
    ObjectRef,
    SecretKeyMissing,
    SecretNotFound,
)
from lifeguard.metrics import Metrics
from lifeguard.model.conditions import ConditionStatus as S
from lifeguard.model.duration import parse_duration
from lifeguard.model.enums import Cause, Mode
from lifeguard.model.observation import PodFacts
from lifeguard.model.policy import API_VERSION, KIND, JobPolicySpec
from lifeguard.model.status import RecentAction
from lifeguard.model.validation import validate_spec
from lifeguard.river.database import RiverDatabase
from lifeguard.river.durations import kind_durations
from lifeguard.river.errors import DatabaseError, DatabaseUnavailable
from lifeguard.river.scan import scan as scan_jobs
from lifeguard.supervisor.act import Outcome, Result, execute
from lifeguard.supervisor.gather import Gatherer, scan_query
from lifeguard.supervisor.report import (
    CIRCUIT_OPEN,
    DATABASE_CONNECTED,
    NODES_OBSERVED,
    READY,
    StatusBook,
)
from lifeguard.supervisor.stats import adaptive_limits, kind_stats
from lifeguard.verdict import decide

log = logging.getLogger(__name__)

# A status write at least this often, so lastScanTime shows the operator is alive.
STATUS_REFRESH_SECONDS = 60.0
# Pod deaths often come in bursts (a node, a rollout): gather them into one fast scan.
FAST_PATH_DEBOUNCE_SECONDS = 0.2
SECRET_CACHE_SECONDS = 60.0
# Run-time history changes slowly; reading it is one bounded query.
STATS_REFRESH_SECONDS = 60.0
STATS_PER_KIND = 1000
MAX_EVENTS_PER_SCAN = 20


@dataclass(frozen=True, slots=True)
class PolicyRef:
    namespace: str
    name: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def object_ref(self) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND, self.namespace, self.name, self.uid)


class SpecError(Exception):
    """The spec cannot be used; the message names the field."""


def parse_spec(raw: Mapping[str, Any]) -> JobPolicySpec:
    try:
        spec = JobPolicySpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(problems) from None
    problems_list = validate_spec(spec)
    if problems_list:
        raise SpecError("; ".join(problems_list))
    return spec


class Supervisor:
    """The loop for one JobPolicy."""

    def __init__(
        self,
        ref: PolicyRef,
        *,
        kube: KubeClient,
        inventory: Inventory,
        metrics: Metrics,
    ) -> None:
        self.ref = ref
        self._kube = kube
        self._inventory = inventory
        self._metrics = metrics
        self._spec: JobPolicySpec | None = None
        self._spec_error: str | None = None
        self._book = StatusBook(generation=None)
        self._safety = planning.SafetyState()
        self._db: RiverDatabase | None = None
        self._dsn: str | None = None
        self._dsn_read_at = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_patch = 0.0
        self._seen_verdicts: set[tuple[int, datetime, Cause]] = set()
        self._running_since: dict[int, tuple[str, float]] = {}
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
            self._spec = parse_spec(spec)
            self._spec_error = None
        except SpecError as exc:
            self._spec, self._spec_error = None, str(exc)
        self._dsn_read_at = 0.0  # the Secret reference may have changed
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
        await self._close_db()
        self._metrics.forget_policy(str(self.ref), [c.value for c in Cause])

    def poke(self, pod: PodFacts) -> None:
        """The fast path: a pod in this policy's namespace just ended; look at once."""
        if pod.namespace != self.ref.namespace or self._spec is None:
            return
        if not self._spec.workers.pod_selector.matches(dict(pod.labels)):
            return
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
        now = datetime.now(UTC)
        book = self._book
        book.ensure_conditions(now)
        try:
            if self._spec is None:
                await self._invalid(self._spec_error or "no spec", now)
                return
            db = await self._database(self._spec)
            await self._scan_and_act(self._spec, db)
        finally:
            self._note_nodes(now)
            await self._report()
            self._metrics.scan_duration.labels(str(self.ref)).observe(time.monotonic() - started)
            self.scans += 1

    async def _scan_and_act(self, spec: JobPolicySpec, db: RiverDatabase | None) -> None:
        if db is None:
            return
        query = scan_query(spec)
        book = self._book
        try:
            scanned = await scan_jobs(db, query)
        except DatabaseError as exc:
            await self._database_failed(exc)
            return
        now = scanned.now
        if book.condition(DATABASE_CONNECTED, S.TRUE, "Connected", f"Scanning {db.target}.", now):
            await self._event("Normal", "DatabaseReconnected", f"Connected to {db.target} again.")

        await self._refresh_stats(spec, db, query.schema)
        gatherer = Gatherer(
            self.ref.namespace, spec, self._inventory, adaptive_limits=self._adaptive_limits
        )
        observations = gatherer.observe(scanned.jobs, now)
        judged = [(obs, decide(obs)) for obs in observations]
        result = planning.plan(judged, spec, self._safety, now)
        self._safety = result.state
        self._observe_metrics(judged, now)

        to_apply = [a for a in result.actions if not a.dry_run]
        outcomes = (
            await execute(
                to_apply, db=db, schema=query.schema, kube=self._kube, namespace=self.ref.namespace
            )
            if to_apply
            else []
        )
        await self._record(result, outcomes, now)
        for event in result.events:
            await self._event("Warning" if event.warning else "Normal", event.reason, event.message)

        breaker_open = result.state.circuit_open
        book.condition(
            CIRCUIT_OPEN,
            S.TRUE if breaker_open else S.FALSE,
            "TooManyStale" if breaker_open else "Closed",
            result.state.breaker_message
            if breaker_open
            else "Heartbeat-based actions are allowed.",
            now,
        )
        self._metrics.circuit_open.labels(str(self.ref)).set(1 if breaker_open else 0)
        mode = "dry run" if spec.safety.mode is Mode.DRY_RUN else "enforcing"
        truncated = " (truncated)" if scanned.truncated else ""
        book.condition(
            READY,
            S.TRUE,
            "Scanning",
            f"Watching {len(judged)} running jobs{truncated}, {mode}.",
            now,
        )
        book.scanned([v.cause for _, v in judged], now)

    # -- gather helpers --------------------------------------------------------------------
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

    async def _database(self, spec: JobPolicySpec) -> RiverDatabase | None:
        """The pool for the policy's Secret; None (with conditions set) when it cannot be had."""
        now = datetime.now(UTC)
        ref = spec.database.secret_ref
        if self._db is None or time.monotonic() - self._dsn_read_at > SECRET_CACHE_SECONDS:
            try:
                dsn = await self._kube.read_secret_value(self.ref.namespace, ref.name, ref.key)
            except (SecretNotFound, SecretKeyMissing, Forbidden) as exc:
                reason = {
                    SecretNotFound: "SecretNotFound",
                    SecretKeyMissing: "SecretKeyMissing",
                    Forbidden: "SecretForbidden",
                }[type(exc)]
                await self._not_ready(reason, f"spec.database.secretRef: {exc}.", now)
                self._book.condition(
                    DATABASE_CONNECTED, S.UNKNOWN, reason, "No database URL to connect to.", now
                )
                await self._close_db()
                return None
            except ClusterError as exc:
                log.warning("policy %s: %s", self.ref, exc)
                if self._db is None:
                    return None
                dsn = self._dsn or ""
            self._dsn_read_at = time.monotonic()
            if dsn != self._dsn or self._db is None:
                await self._close_db()
                self._dsn = dsn
                try:
                    self._db = RiverDatabase(dsn)
                except Exception as exc:  # a malformed URL fails in libpq's parser
                    await self._not_ready(
                        "InvalidDatabaseURL",
                        f"spec.database.secretRef: the URL in Secret {ref.name} key {ref.key}"
                        f" is not a valid libpq URL: {type(exc).__name__}",
                        now,
                    )
                    self._db = None
                    return None
                await self._db.open()
        return self._db

    async def _close_db(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def _database_failed(self, exc: DatabaseError) -> None:
        now = datetime.now(UTC)
        self._metrics.database_errors.labels(str(self.ref)).inc()
        reason = "Unreachable" if isinstance(exc, DatabaseUnavailable) else type(exc).__name__
        log.warning("policy %s: %s", self.ref, exc)
        changed = self._book.condition(DATABASE_CONNECTED, S.FALSE, reason, str(exc), now)
        first = self._book.conditions and changed
        await self._not_ready("DatabaseUnavailable", str(exc), now)
        if first or self.scans == 0:
            await self._event("Warning", "DatabaseUnreachable", str(exc))

    async def _invalid(self, problems: str, now: datetime) -> None:
        await self._not_ready("InvalidSpec", problems, now)

    async def _not_ready(self, reason: str, message: str, now: datetime) -> None:
        if self._book.condition(READY, S.FALSE, reason, message, now) or self.scans == 0:
            await self._event("Warning", reason, message)

    def _note_nodes(self, now: datetime) -> None:
        if self._inventory.nodes_observed:
            return
        self._book.condition(
            NODES_OBSERVED,
            S.FALSE,
            "NodeReadForbidden",
            "The operator may not read nodes: node loss is detected from heartbeats alone.",
            now,
        )

    # -- report helpers --------------------------------------------------------------------
    def _observe_metrics(self, judged: list[tuple[Any, Any]], now: datetime) -> None:
        policy = str(self.ref)
        counts: dict[str, int] = {c.value: 0 for c in Cause}
        seen: set[tuple[int, datetime, Cause]] = set()
        running_now: dict[int, tuple[str, float]] = {}
        for obs, verdict in judged:
            counts[verdict.cause.value] += 1
            key = (obs.job.id, obs.job.attempted_at, verdict.cause)
            seen.add(key)
            if key not in self._seen_verdicts:
                self._metrics.verdicts.labels(policy, verdict.cause.value, verdict.reason).inc()
            if obs.job.beat_age is not None:
                self._metrics.heartbeat_age.labels(policy).observe(obs.job.beat_age)
            running_now[obs.job.id] = (obs.job.kind, obs.job.running_for)
        for cause, count in counts.items():
            self._metrics.running_jobs.labels(policy, cause).set(count)
        for job_id, (kind, running_for) in self._running_since.items():
            if job_id not in running_now:
                label = self._metrics.kind_label(kind)
                self._metrics.job_duration.labels(label).observe(running_for)
        self._seen_verdicts = seen
        self._running_since = running_now

    async def _record(
        self,
        result: planning.Plan,
        outcomes: list[Outcome],
        now: datetime,
    ) -> None:
        policy = str(self.ref)
        applied_by_job = {o.decision.job_id: o for o in outcomes}
        events = 0
        for action in result.actions:
            outcome = applied_by_job.get(action.job_id)
            if action.dry_run:
                label, applied = "dry_run", False
            else:
                label = outcome.result.value if outcome else Result.FAILED.value
                applied = outcome is not None and outcome.result is Result.APPLIED
            self._metrics.actions.labels(
                policy, action.action.value, action.cause.value, label
            ).inc()
            if applied:
                self._metrics.rescue_seconds.labels(action.cause.value).observe(action.evidence_age)
            self._book.record(
                RecentAction(
                    time=now,
                    job_id=action.job_id,
                    kind=action.kind,
                    pod=action.pod.name if action.pod else None,
                    cause=action.cause,
                    reason=action.reason,
                    action=action.action,
                    applied=applied,
                )
            )
            if outcome is not None and outcome.result is Result.FAILED:
                log.warning(
                    "policy %s job %s: %s failed: %s",
                    self.ref,
                    action.job_id,
                    action.action,
                    outcome.detail,
                )
            if events < MAX_EVENTS_PER_SCAN and (applied or action.dry_run):
                events += 1
                await self._action_event(action, applied)
            log.info(
                "policy %s job %s kind %s: %s/%s -> %s (%s)",
                self.ref,
                action.job_id,
                action.kind,
                action.cause,
                action.reason,
                action.action,
                label,
                extra={
                    "policy": policy,
                    "job_id": action.job_id,
                    "cause": str(action.cause),
                    "action": str(action.action),
                    "result": label,
                },
            )
        for deferred in result.deferred:
            self._metrics.actions.labels(
                policy, deferred.action.value, deferred.cause.value, "deferred"
            ).inc()

    async def _action_event(self, action: planning.PlannedAction, applied: bool) -> None:
        verbs = {
            "Retry": ("JobRetried", "retried"),
            "Cancel": ("JobCancelled", "asked to cancel"),
            "Discard": ("JobDiscarded", "discarded"),
            "RestartPod": ("PodRestarted", "restarted the pod of"),
        }
        reason, verb = verbs.get(action.action.value, ("JobActedOn", "acted on"))
        pod_name = action.pod.name if action.pod else None
        where = f" (pod {pod_name})" if pod_name else ""
        text = f"{action.cause}/{action.reason}: {action.message}"
        if action.dry_run:
            message = f"DryRun: would have {verb} job {action.job_id}{where}. {text}"
            await self._event("Normal", "DryRun" + reason, message)
            return
        message = f"Lifeguard {verb} job {action.job_id} ({action.kind}){where}. {text}"
        await self._event("Normal", reason, message)
        if action.action.value == "RestartPod" and pod_name:
            pod = self._inventory.pod(self.ref.namespace, pod_name)
            await self._post(
                ObjectRef("v1", "Pod", self.ref.namespace, pod_name, pod.uid if pod else ""),
                "Warning",
                "PodRestarted",
                f"Evicted by River Lifeguard (policy {self.ref.name}): job {action.job_id}"
                f" {action.cause}/{action.reason}.",
            )

    async def _event(self, type_: str, reason: str, message: str) -> None:
        await self._post(self.ref.object_ref(), type_, reason, message)

    async def _post(self, about: ObjectRef, type_: str, reason: str, message: str) -> None:
        try:
            await self._kube.post_event(about, type_, reason, message)
        except ClusterError as exc:
            log.warning("policy %s: %s", self.ref, exc)

    async def _report(self) -> None:
        book = self._book
        changes = book.changes()
        stale = time.monotonic() - self._last_patch > STATUS_REFRESH_SECONDS
        if changes is None and not stale:
            return
        rendered = changes if changes is not None else book.render()
        try:
            await self._kube.patch_policy_status(self.ref.namespace, self.ref.name, rendered)
        except ClusterError as exc:
            log.warning("policy %s: %s", self.ref, exc)
            return
        book.patched(rendered)
        self._last_patch = time.monotonic()
