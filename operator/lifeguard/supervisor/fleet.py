"""All supervisors of one operator process, keyed by policy, sharing the pod and node caches,
the database pools, and what each policy must know of the others (who owns which job).

Only a leader supervises. Every replica learns each policy's spec from kopf's handlers and keeps
it here; a standby starts no supervisor (no scan, no write) until it leads, and a leader that
steps down stops them all.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ClusterError, KubeClient
from lifeguard.metrics import Metrics
from lifeguard.model.conditions import READY, Condition, ConditionStatus, set_condition
from lifeguard.model.observation import PodFacts
from lifeguard.model.ownership import FleetView, PolicyFacts
from lifeguard.supervisor.beats import BeatBoard
from lifeguard.supervisor.execute import always
from lifeguard.supervisor.loop import Supervisor
from lifeguard.supervisor.policy import PolicyRef, SpecError, parse_spec
from lifeguard.supervisor.pools import DEFAULT_MAX_CONNECTIONS, SharedPools

log = logging.getLogger(__name__)

KOPF_INDEXES = "kopf's indexes"


@dataclass(slots=True)
class PolicyConfig:
    """What kopf last told this replica about a policy."""

    ref: PolicyRef
    spec: Mapping[str, Any]
    generation: int | None
    status: Mapping[str, Any] | None
    created: datetime | None = None


class Fleet:
    def __init__(
        self,
        *,
        kube: KubeClient,
        inventory: Inventory,
        metrics: Metrics,
        may_act: Callable[[], bool] = always,
        leading: bool = True,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        watched_namespaces: Sequence[str] | None = None,
    ) -> None:
        self.kube = kube
        self.inventory = inventory
        self.metrics = metrics
        # Asked before every action batch: False once this replica's leadership is over.
        self.may_act = may_act
        self.leading = leading
        self._policies: dict[tuple[str, str], PolicyConfig] = {}
        self._supervisors: dict[tuple[str, str], Supervisor] = {}
        self.pools = SharedPools(cap=max_connections, metrics=metrics)
        # What each policy last saw beating, for the others' restart decisions.
        self.beats = BeatBoard()
        self._watched = tuple(watched_namespaces) if watched_namespaces is not None else None
        # Per policy: its facts for the ownership rule (without the database, which the pools
        # know) and its schema; absent while its spec is invalid.
        self._facts: dict[tuple[str, str], tuple[PolicyFacts, str | None]] = {}
        # The last view, with the versions of the facts and pools it was built from: every
        # policy asks for it every cycle, and building it is a pass over every policy (200
        # policies asking 40 times a second made it a tenth of the operator's CPU).
        self._facts_version = 0
        self._view: tuple[tuple[int, int], FleetView] | None = None
        # False until the caches hold their initial listings: kopf's indexes (JobPolicies,
        # nodes; kopf runs no other handler before them, see handlers.py) and each informer's
        # first listing (pods, batch/v1 Jobs). No supervisor starts before, so none scans with
        # a partial picture; meanwhile each policy's Ready condition says why.
        self.caches_synced = False
        self._unlisted: set[str] = {KOPF_INDEXES}
        self._syncing_noted: set[str] = set()

    async def apply(
        self,
        ref: PolicyRef,
        spec: Mapping[str, Any],
        generation: int | None,
        status: Mapping[str, Any] | None,
        created: datetime | None = None,
    ) -> Supervisor | None:
        """Starts the policy's supervisor, or hands the running one its new spec; a standby
        only remembers the spec."""
        key = (ref.namespace, ref.name)
        self._policies[key] = PolicyConfig(ref, spec, generation, status, created)
        self._remember(ref, spec, created)
        if not self.leading:
            return None
        if not self.caches_synced:
            await self.note_syncing(ref, status or {}, generation)
            return None  # started once the caches are complete (`listed`)
        supervisor = self._supervisors.get(key)
        if supervisor is not None and supervisor.ref.uid != ref.uid:
            # Deleted and created again while the deletion went unseen: a new object.
            await supervisor.stop()
            supervisor = None
        if supervisor is None:
            supervisor = Supervisor(
                ref,
                kube=self.kube,
                inventory=self.inventory,
                metrics=self.metrics,
                may_act=self.may_act,
                pools=self.pools,
                fleet_source=self.view,
                beats=self.beats,
            )
            self._supervisors[key] = supervisor
            log.info("policy %s: supervising", ref)
        supervisor.configure(spec, generation, status)
        supervisor.start()
        return supervisor

    async def remove(self, namespace: str, name: str, *, uid: str | None = None) -> None:
        """Forgets the policy and stops its supervisor; with `uid`, only if that is the very
        object it knows (a policy created again under the same name is another object)."""
        key = (namespace, name)
        config = self._policies.get(key)
        if uid is not None and config is not None and config.ref.uid != uid:
            return
        self._policies.pop(key, None)
        self._facts.pop(key, None)
        self._facts_version += 1
        await self._stop(namespace, name)

    async def _stop(self, namespace: str, name: str) -> None:
        supervisor = self._supervisors.pop((namespace, name), None)
        if supervisor is not None:
            await supervisor.stop()
            self.beats.forget(str(supervisor.ref))
            log.info("policy %s: stopped", supervisor.ref)

    async def stop_all(self) -> None:
        for namespace, name in list(self._supervisors):
            await self._stop(namespace, name)
        await self.pools.close_all()

    def view(self) -> FleetView:
        """Every known policy with a valid spec, with the database it scans (known once its
        Secret was read): what the ownership rule needs, frozen for one cycle (and shared by
        the cycles that ask before anything in it changes)."""
        versions = (self._facts_version, self.pools.holders_version)
        if self._view is not None and self._view[0] == versions:
            return self._view[1]
        policies = tuple(
            PolicyFacts(
                namespace=facts.namespace,
                name=facts.name,
                created=facts.created,
                selector=facts.selector,
                unattributed=facts.unattributed,
                database=self.pools.identity(facts.key, schema),
            )
            for facts, schema in self._facts.values()
        )
        view = FleetView(policies, watched_namespaces=self._watched)
        self._view = (versions, view)
        return view

    def _remember(self, ref: PolicyRef, raw: Mapping[str, Any], created: datetime | None) -> None:
        key = (ref.namespace, ref.name)
        try:
            spec = parse_spec(raw)
        except SpecError:
            self._facts.pop(key, None)
            self._facts_version += 1
            return
        facts = PolicyFacts(
            namespace=ref.namespace,
            name=ref.name,
            created=created,
            selector=spec.selector,
            unattributed=spec.workers.unattributed,
        )
        self._facts[key] = (facts, spec.database.schema_)
        self._facts_version += 1

    async def lead(self) -> None:
        """This replica became leader: supervise every known policy, from its current status.

        The status is read again because the previous leader kept writing it (totals, recent
        actions) while this replica stood by.
        """
        self.leading = True
        for config in list(self._policies.values()):
            status = config.status
            try:
                current = await self.kube.get_policy(config.ref.namespace, config.ref.name)
            except ClusterError as exc:
                log.warning("policy %s: status not read again: %s", config.ref, exc)
            else:
                status = current.get("status") or {}
            await self.apply(config.ref, config.spec, config.generation, status, config.created)

    async def step_down(self) -> None:
        """Leadership is over: stop every supervisor, abandoning a batch under way."""
        self.leading = False
        await self.stop_all()

    def expect_listing(self, what: str) -> None:
        """Scans wait for `what`'s first listing too (an informer, before it starts)."""
        if not self.caches_synced:
            self._unlisted.add(what)

    async def listed(self, what: str) -> None:
        """`what` holds its initial listing; once every cache does, supervise every policy."""
        if what not in self._unlisted:
            return
        self._unlisted.discard(what)
        if self._unlisted:
            return
        self.caches_synced = True
        self._syncing_noted.clear()
        log.info("pod, Job and node caches hold their initial listings: scans start")
        if self.leading:
            for config in list(self._policies.values()):
                await self.apply(
                    config.ref, config.spec, config.generation, config.status, config.created
                )

    async def note_syncing(
        self, ref: PolicyRef, status: Mapping[str, Any], generation: int | None
    ) -> None:
        """Ready=Unknown/CachesSyncing on a policy seen before the caches are complete, once.

        Only the Ready condition changes; the others (and the totals) stay as the last
        operator left them until the first scan rewrites them.
        """
        if self.caches_synced or ref.uid in self._syncing_noted:
            return
        if not self.leading or not self.may_act():
            return  # a standby writes nothing
        self._syncing_noted.add(ref.uid)
        try:
            conditions = [Condition.model_validate(c) for c in status.get("conditions") or []]
        except ValueError:
            conditions = []
        updated = set_condition(
            conditions,
            type=READY,
            status=ConditionStatus.UNKNOWN,
            reason="CachesSyncing",
            message=(
                "The operator is reading the pods, Jobs and nodes it watches; the first scan"
                " starts once those listings are complete, so no job is judged with a partial"
                " picture. If this lasts, the operator's log says which listing fails and why."
            ),
            now=datetime.now(UTC),
            observed_generation=generation,
        )
        rendered = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in updated]
        try:
            await self.kube.patch_policy_status(ref.namespace, ref.name, {"conditions": rendered})
        except ClusterError as exc:
            log.warning("policy %s: %s", ref, exc)

    def pod_ended(self, pod: PodFacts) -> None:
        """The fast path: tell the policies of the pod's namespace at once."""
        for (namespace, _), supervisor in self._supervisors.items():
            if namespace == pod.namespace:
                supervisor.poke(pod)

    def __len__(self) -> int:
        return len(self._supervisors)
