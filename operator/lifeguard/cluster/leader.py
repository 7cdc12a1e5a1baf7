"""Leader election on a coordination.k8s.io/v1 Lease: one replica acts, the others wait warm.

The rules live in `election` (pure), the Lease's reads, writes and watch in `lease_lock`; this
module runs the campaign. A standby tries the Lease every retry period; besides, the watch tells
it at once when a leader empties the holder on its way out, and it tries then, so a handover
does not wait for the next try. The watch only wakes the campaign early: every decision is the
same conditional write as a periodic try, and a watch that cannot run (forbidden, the apiserver
gone) leaves the periodic tries as they were.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from lifeguard.cluster.election import (
    ElectionTiming,
    LeaseRecord,
    Observed,
    claim,
    released,
    term_valid,
)
from lifeguard.cluster.kube import ClusterError
from lifeguard.cluster.lease_lock import LeaseConflict, LeaseLock

log = logging.getLogger(__name__)

# Candidates retry after retry_period plus up to this fraction of it, so that replicas started
# together do not poll in lockstep. client-go jitters acquisition by up to 120%; a smaller
# spread keeps the takeover after a release close to one retry period.
CANDIDATE_JITTER = 0.2

T = TypeVar("T")


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
        # Set when the Lease's holder was emptied: a standby tries at once.
        self._released = asyncio.Event()
        self._started_at = clock()

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
            self._started_at = self._clock()
            self._task = asyncio.create_task(self.run(), name="leader election")
            loop = asyncio.get_running_loop()

            def released() -> None:  # on the watch's thread
                loop.call_soon_threadsafe(self._lease_released)

            self.lock.watch_releases(released)

    async def run(self) -> None:
        log.info("leader election: campaigning for %s as %s", self.lock.describe(), self.identity)
        while True:
            await self._tick()
            pause = self.timing.retry_period
            if not self._leading:
                pause *= 1 + CANDIDATE_JITTER * random.random()
            await self._wait(pause)

    async def _wait(self, seconds: float) -> None:
        """Until the next try: a retry period, or less when the Lease was released."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._released.wait(), seconds)
        self._released.clear()

    def _lease_released(self) -> None:
        # Not while shutting down: this replica's own release is what the watch reports then.
        campaigning = self._task is not None and not self._task.done()
        # Only a standby that has watched for a lease duration jumps: in a rolling update the
        # new replica (started a moment before the old leader's SIGTERM) never saw the pods
        # deleted before its first listing, which the older standby remembers. A newer one
        # tries at its next periodic try, as without the watch.
        warm = self._clock() - self._started_at >= self.timing.lease_duration
        if campaigning and warm and not self._leading and not self._released.is_set():
            log.info(
                "leader election: %s has no holder: trying to take it at once",
                self.lock.describe(),
            )
            self._released.set()

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
