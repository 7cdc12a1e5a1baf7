"""All supervisors of one operator process, keyed by policy, sharing the pod and node caches."""

import logging
from collections.abc import Mapping
from typing import Any

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import KubeClient
from lifeguard.metrics import Metrics
from lifeguard.model.observation import PodFacts
from lifeguard.supervisor.loop import Supervisor
from lifeguard.supervisor.policy import PolicyRef

log = logging.getLogger(__name__)


class Fleet:
    def __init__(self, *, kube: KubeClient, inventory: Inventory, metrics: Metrics) -> None:
        self.kube = kube
        self.inventory = inventory
        self.metrics = metrics
        self._supervisors: dict[tuple[str, str], Supervisor] = {}

    async def apply(
        self,
        ref: PolicyRef,
        spec: Mapping[str, Any],
        generation: int | None,
        status: Mapping[str, Any] | None,
    ) -> Supervisor:
        """Starts the policy's supervisor, or hands the running one its new spec."""
        key = (ref.namespace, ref.name)
        supervisor = self._supervisors.get(key)
        if supervisor is not None and supervisor.ref.uid != ref.uid:
            # Deleted and created again while the deletion went unseen: a new object.
            await supervisor.stop()
            supervisor = None
        if supervisor is None:
            supervisor = Supervisor(
                ref, kube=self.kube, inventory=self.inventory, metrics=self.metrics
            )
            self._supervisors[key] = supervisor
            log.info("policy %s: supervising", ref)
        supervisor.configure(spec, generation, status)
        supervisor.start()
        return supervisor

    async def remove(self, namespace: str, name: str) -> None:
        supervisor = self._supervisors.pop((namespace, name), None)
        if supervisor is not None:
            await supervisor.stop()
            log.info("policy %s: stopped", supervisor.ref)

    async def stop_all(self) -> None:
        for namespace, name in list(self._supervisors):
            await self.remove(namespace, name)

    def pod_ended(self, pod: PodFacts) -> None:
        """The fast path: tell the policies of the pod's namespace at once."""
        for (namespace, _), supervisor in self._supervisors.items():
            if namespace == pod.namespace:
                supervisor.poke(pod)

    def __len__(self) -> int:
        return len(self._supervisors)
