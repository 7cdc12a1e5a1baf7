"""One policy's supervisor: gather → reconcile → execute → feed outcomes → report, every
scanInterval, or at once when a pod it may care about ends (the fast path).

The loop only sequences I/O; every decision is `lifeguard.reconcile`'s. A supervisor never lets
an error escape its loop: a missing Secret, a bad DSN or a database outage becomes a condition
and an Event on its own policy, and other policies keep working.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import KubeClient
from lifeguard.metrics import Metrics
from lifeguard.model.duration import parse_duration
from lifeguard.model.enums import Cause, HeartbeatStore
from lifeguard.model.observation import PodFacts
from lifeguard.model.policy import JobPolicySpec
from lifeguard.reconcile import (
    Effects,
    InvalidSpec,
    Outcome,
    ReconcileState,
    Snapshot,
    configured,
    feed_outcomes,
    patched,
    reconcile,
)
from lifeguard.supervisor.apply import patch_status, post_events, record_metrics, write_logs
from lifeguard.supervisor.beats import BeatBoard
from lifeguard.supervisor.connection import DatabaseSource
from lifeguard.supervisor.execute import LeadershipLost, Target, always, execute
from lifeguard.supervisor.gather import FleetSource, KindStatistics, gather, scan_query
from lifeguard.supervisor.policy import PolicyRef, SpecError, parse_spec
from lifeguard.supervisor.pools import SharedPools
from lifeguard.supervisor.prune import HeartbeatPruner

log = logging.getLogger(__name__)

# Pod deaths often come in bursts (a node, a rollout): gather them into one fast scan.
FAST_PATH_DEBOUNCE_SECONDS = 0.2


class Supervisor:
    """The loop for one JobPolicy."""

    def __init__(
        self,
        ref: PolicyRef,
        *,
        kube: KubeClient,
        inventory: Inventory,
        metrics: Metrics,
        may_act: Callable[[], bool] = always,
        pools: SharedPools | None = None,
        fleet_source: FleetSource | None = None,
        beats: BeatBoard | None = None,
    ) -> None:
        self.ref = ref
        # The leadership guard (see Fleet): asked before the scan, before every action batch
        # and before the cycle's Events and status, so that a leader whose term ran out by its
        # own clock writes nothing more.
        self._may_act = may_act
        self._kube = kube
        self._inventory = inventory
        self._metrics = metrics
        self._source = DatabaseSource(kube, ref.namespace, pools=pools, holder=str(ref))
        self._fleet_source = fleet_source
        self._beats = beats
        self._stats = KindStatistics()
        self._pruner = HeartbeatPruner(str(ref), metrics)
        self._spec: JobPolicySpec | InvalidSpec = InvalidSpec("no spec")
        self._state = ReconcileState()
        # A new generation (and the status to resume from), taken at the next cycle's start:
        # a cycle replaces the state when it ends, so it must not change under it.
        self._configured: tuple[int | None, Mapping[str, Any] | None] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def configure(
        self, spec: Mapping[str, Any], generation: int | None, status: Mapping[str, Any] | None
    ) -> None:
        """Takes a new spec (create, resume, update); the next scan uses it."""
        self._configured = (generation, status)
        try:
            self._spec = parse_spec(spec)
        except SpecError as exc:
            self._spec = InvalidSpec(str(exc))
        self._source.forget_secret()
        self._stats.forget()
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
        spec = self._spec
        if pod.namespace != self.ref.namespace or isinstance(spec, InvalidSpec):
            return
        if spec.workers.pod_selector.matches(dict(pod.labels)):
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
            spec = self._spec
            interval = 30.0 if isinstance(spec, InvalidSpec) else parse_duration(spec.scan_interval)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
                await asyncio.sleep(FAST_PATH_DEBOUNCE_SECONDS)
            except TimeoutError:
                pass

    async def cycle(self) -> None:
        """One gather → reconcile → execute → feed outcomes → report round."""
        started = time.monotonic()
        if not self._may_act():
            log.info("policy %s: not leading, no scan", self.ref)
            return
        spec = self._spec
        if self._configured is not None:
            self._state = configured(self._state, *self._configured)
            self._configured = None
        try:
            valid = None if isinstance(spec, InvalidSpec) else spec
            snapshot, db = await gather(
                self.ref,
                valid,
                self._inventory,
                self._source.database,
                self._stats,
                fleet_source=self._fleet_source,
                reachability=self._kube.reachability,
                beating_elsewhere=(
                    self._beats.elsewhere(str(self.ref), now=time.monotonic())
                    if self._beats is not None
                    else None
                ),
            )
            self._state, effects = reconcile(snapshot, self._state, spec)
            if self._beats is not None and effects.plan is not None and valid is not None:
                self._beats.publish(
                    str(self.ref),
                    self.ref.name,
                    effects.plan.beating,
                    now=snapshot.monotonic,
                    scan_interval=parse_duration(valid.scan_interval),
                )
            outcomes: list[Outcome] = []
            if effects.actions and db is not None and valid is not None:
                target = Target(
                    db,
                    valid.database.schema_,
                    self._kube,
                    self.ref.namespace,
                    self._may_act,
                    heartbeats=scan_query(valid).heartbeats,
                )
                try:
                    outcomes = await execute(effects.actions, target)
                except LeadershipLost as lost:
                    self._say_taken(snapshot, effects, lost.outcomes)
                    raise
            self._state, effects = feed_outcomes(snapshot, self._state, effects, outcomes)
            write_logs(self.ref, effects)
            record_metrics(self.ref, effects, self._metrics)
            if not self._may_act():
                raise LeadershipLost("no Events or status")
            await post_events(self.ref, effects, self._kube)
            if effects.status is not None and await patch_status(
                self.ref, effects.status, self._kube
            ):
                self._state = patched(self._state, effects.status, time.monotonic())
            if (
                db is not None
                and valid is not None
                and valid.heartbeat.store is HeartbeatStore.TABLE
                and self._may_act()
            ):
                # Housekeeping after the cycle's work: the rows dead workers left behind.
                await self._pruner.prune_if_due(
                    db, schema=valid.database.schema_, monotonic_now=time.monotonic()
                )
        except LeadershipLost as exc:
            # The elector steps down and stops this supervisor; nothing here may write.
            log.warning("policy %s: leadership lost mid-cycle: %s", self.ref, exc)
        finally:
            self._metrics.scan_duration.labels(str(self.ref)).observe(time.monotonic() - started)

    def _say_taken(self, snapshot: Snapshot, effects: Effects, taken: Sequence[Outcome]) -> None:
        """The actions earlier batches took before leadership ended, in this replica's log and
        metrics: they were written (River's `errors` says so too), and the next leader sees
        their jobs moved on, so nobody else would tell. No Event: this replica no longer
        writes to the API."""
        if not taken or effects.plan is None:
            return
        done = {o.decision.job_id for o in taken}
        plan = replace(effects.plan, actions=[a for a in effects.plan.actions if a.job_id in done])
        _, said = feed_outcomes(snapshot, self._state, replace(effects, plan=plan), taken)
        write_logs(self.ref, said)
        record_metrics(self.ref, said, self._metrics)
