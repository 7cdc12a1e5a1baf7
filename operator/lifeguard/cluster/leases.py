"""Follows the kubelets' node Leases, so a silent kubelet is noticed before the node controller's
grace period (50 s by default) marks its node NotReady."""

import asyncio
import logging

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ClusterError, KubeClient

log = logging.getLogger(__name__)

LEASE_POLL_SECONDS = 5.0


async def follow_node_leases(
    kube: KubeClient, inventory: Inventory, interval: float = LEASE_POLL_SECONDS
) -> None:
    """Lists the Leases every `interval` (from the apiserver's cache); stops when forbidden."""
    while True:
        try:
            leases = await kube.list_node_leases()
        except ClusterError as exc:
            log.warning("%s", exc)
        else:
            if leases is None:
                log.warning(
                    "may not list Leases in kube-node-lease: node loss waits for the node"
                    " controller to mark a node NotReady"
                )
                return
            inventory.observe_leases(leases)
        await asyncio.sleep(interval)
