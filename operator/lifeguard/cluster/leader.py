"""Leader election on a coordination.k8s.io/v1 Lease: one replica acts, the others wait warm.

The rules live in `election` (pure); this module reads and writes the Lease and runs the
campaign. The Lease calls get a thread of their own: the shared worker threads may be busy with
evictions or Events when a renewal is due, and a renewal that waits its turn behind them could
cost the leader its term.
"""

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException

from lifeguard.cluster.election import (
    OPERATOR_LEASE_LABELS,
    ElectionTiming,
    LeaseRecord,
    Observed,
    claim,
    released,
    term_valid,
)
from lifeguard.cluster.kube import ClusterError

log = logging.getLogger(__name__)

# Candidates retry after retry_period plus up to this fraction of it, so that replicas started
# together do not poll in lockstep. client-go jitters acquisition by up to 120%; a smaller
# spread keeps the takeover after a release close to one retry period.
CANDIDATE_JITTER = 0.2

T = TypeVar("T")


class LeaseConflict(ClusterError):
    """The Lease changed since it was read (HTTP 409): someone else wrote it first."""


class LeaseLock:
    """Reads and writes one Lease; each write is conditional on the resourceVersion read."""

    def __init__(
        self, api_client: kubernetes.client.ApiClient, namespace: str, name: str, timeout: float
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.uid = ""
        self._api = kubernetes.client.CoordinationV1Api(api_client)
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leader-lease")
        self._resource_version = ""
        self._kept_metadata: dict[str, Any] = {}

    def describe(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    async def get(self) -> LeaseRecord | None:
        try:
            body = await self._call(
                self._api.read_namespaced_lease, self.name, self.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._error("reading", exc) from None
        return self._remember(body)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": dict(OPERATOR_LEASE_LABELS),
            },
            "spec": record.to_spec(),
        }
        try:
            body = await self._call(
                self._api.create_namespaced_lease, self.namespace, lease, _preload_content=False
            )
        except ApiException as exc:
            raise self._error("creating", exc) from None
        return self._remember(body)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        """Replaces the spec only if nobody wrote the Lease since this lock last read it."""
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            # A replace writes the whole object: keep the labels and annotations it had
            # (the chart's, by which `lifeguard explain` finds the Lease).
            "metadata": {
                **self._kept_metadata,
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": self._resource_version,
            },
            "spec": record.to_spec(),
        }
        try:
            body = await self._call(
                self._api.replace_namespaced_lease,
                self.name,
                self.namespace,
                lease,
                _preload_content=False,
            )
        except ApiException as exc:
            raise self._error("updating", exc) from None
        return self._remember(body)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        call = functools.partial(method, *args, _request_timeout=self._timeout, **kwargs)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._executor, call)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{self.describe()}: {exc}") from None
        body: dict[str, Any] = json.loads(response.data)
        return body

    def _remember(self, body: dict[str, Any]) -> LeaseRecord:
        metadata = body.get("metadata") or {}
        self._resource_version = str(metadata.get("resourceVersion") or "")
        self.uid = str(metadata.get("uid") or "")
        self._kept_metadata = {
            key: metadata[key] for key in ("labels", "annotations") if metadata.get(key)
        }
        return LeaseRecord.from_spec(body.get("spec"))

    def _error(self, doing: str, exc: ApiException) -> ClusterError:
        if exc.status == 409:
            return LeaseConflict(f"{doing} {self.describe()}: changed meanwhile")
        if exc.status == 403:
            return ClusterError(
                f"not allowed {doing} {self.describe()}: the operator's Role must grant get,"
                " create and update on this Lease"
            )
        return ClusterError(f"{doing} {self.describe()}: {exc.status} {exc.reason}")


Transition = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class LeaderElector:
    """Campaigns for the Lease, renews it while leading, and says whether acting is safe now.

    `on_started` runs when this replica becomes leader, `on_stopped` when it stops (lost
    renewals, someone else's record, a term run out while frozen, or shutdown); they never
    overlap. `may_act()` is the guard every action batch asks first.
    """

    def __init__(
        self,
        lock: LeaseLock,
        identity: str,
        timing: ElectionTiming,
        *,
        on_started: Transition = _nothing,
        on_stopped: Transition = _nothing,
        on_leader_seen: Callable[[str], None] = lambda _: None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lock = lock
        self.identity = identity
        self.timing = timing.check()
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._on_leader_seen = on_leader_seen
        self._clock = clock
        self._wall_clock = wall_clock
        self._observed = Observed(LeaseRecord(), clock())
        self._leading = False
        self._renewed_at: float | None = None
        self._reported_leader: str | None = None
        self._transitions = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    # -- what others ask -------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str:
        """The holder this replica last saw in the Lease ("" when none)."""
        return self.identity if self._leading else self._observed.record.holder

    def may_act(self) -> bool:
        """True only while this replica leads and its term is valid by its own clock.

        A leader frozen (SIGSTOP, a stalled VM) past its renew deadline finds here, first thing
        after it resumes, that it may no longer act, and steps down before touching anything.
        """
        if not self._leading:
            return False
        if term_valid(self._renewed_at, self.timing, self._clock()):
            return True
        self._step_down_soon(self._expired_reason())
        return False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="leader election")

    async def run(self) -> None:
        log.info("leader election: campaigning for %s as %s", self.lock.describe(), self.identity)
        while True:
            await self._tick()
            pause = self.timing.retry_period
            if not self._leading:
                pause *= 1 + CANDIDATE_JITTER * random.random()
            await asyncio.sleep(pause)

    async def release(self) -> None:
        """Stops campaigning; a leader stops acting, then empties the Lease's holder so that a
        standby takes over at its next try instead of after a lease duration."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        was_leading = self._leading
        await self._stop_leading("shutting down")
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if was_leading:
            await self._write_release()
        self.lock.close()

    # -- the campaign ----------------------------------------------------------------------
    async def _tick(self) -> None:
        started = self._clock()
        if self._leading and not term_valid(self._renewed_at, self.timing, started):
            await self._stop_leading(self._expired_reason())
        try:
            renewed = await self._try_acquire_or_renew(started)
        except ClusterError as exc:
            log.warning("leader election: %s", exc)
            renewed = False
        self._report_leader()
        if renewed:
            # The renewal's send time, not its answer's: the term is counted from the moment
            # the apiserver could first have stored it.
            self._renewed_at = started
            if not self._leading:
                await self._start_leading()
        elif self._leading:
            holder = self._observed.record.holder
            if holder and holder != self.identity:
                await self._stop_leading(f"{holder} holds {self.lock.describe()}")

    async def _try_acquire_or_renew(self, now: float) -> bool:
        if self._leading:
            # The fast path: the record this leader wrote last is still the current one.
            renewal = claim(
                self._observed.record, self.identity, self.timing, self._wall_clock(), True
            )
            with contextlib.suppress(LeaseConflict):
                await self._write(renewal, now)
                return True
        current = await self.lock.get()
        if current is None:
            try:
                record = await self.lock.create(
                    claim(LeaseRecord(), self.identity, self.timing, self._wall_clock(), False)
                )
            except LeaseConflict:
                return False  # another replica created it first
            self._observed = Observed(record, now)
            return True
        self._observed = self._observed.seen(current, now)
        if self._observed.held_by_other(self.identity, self._clock()):
            return False
        try:
            await self._write(
                claim(current, self.identity, self.timing, self._wall_clock(), self._leading), now
            )
        except LeaseConflict:
            return False
        return True

    async def _write(self, record: LeaseRecord, now: float) -> None:
        written = await self.lock.update(record)
        self._observed = Observed(written, now)

    async def _write_release(self) -> None:
        for _ in range(3):
            try:
                await self.lock.update(released(self._observed.record, self._wall_clock()))
            except LeaseConflict:
                current = await self.lock.get()
                if current is None or current.holder != self.identity:
                    return  # someone else holds it already: nothing of ours to release
                self._observed = Observed(current, self._clock())
                continue
            except ClusterError as exc:
                log.warning("leader election: could not release: %s", exc)
                return
            log.info("leader election: released %s", self.lock.describe())
            return

    # -- transitions -----------------------------------------------------------------------
    async def _start_leading(self) -> None:
        async with self._transitions:
            if self._leading:
                return
            self._leading = True
            log.info("leader election: %s became leader of %s", self.identity, self.lock.describe())
            await self._on_started()

    async def _stop_leading(self, reason: str) -> None:
        async with self._transitions:
            if not self._leading:
                return
            self._leading = False
            self._renewed_at = None
            log.warning("leader election: %s stepped down: %s", self.identity, reason)
            await self._on_stopped()

    def _step_down_soon(self, reason: str) -> None:
        # may_act() is called from inside an action batch, which on_stopped cancels: step
        # down in a task of its own. Mark the term over at once so nothing else acts meanwhile.
        self._renewed_at = None
        task = asyncio.get_running_loop().create_task(self._stop_leading(reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _expired_reason(self) -> str:
        return (
            f"no renewal for the renew deadline ({self.timing.renew_deadline:g}s) by its own"
            " clock; it may have been frozen, it acts no more"
        )

    def _report_leader(self) -> None:
        holder = self.leader
        if holder != self._reported_leader:
            self._reported_leader = holder
            if holder and holder != self.identity:
                log.info("leader election: %s leads, this replica stands by", holder)
            self._on_leader_seen(holder)
