"""Follows the kubelets' node Leases, so a silent kubelet is noticed before the node controller's
grace period (50 s by default) marks its node NotReady."""

import asyncio
import logging

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ApiserverUnreachable, ClusterError, KubeClient

log = logging.getLogger(__name__)

# A renewal is seen up to one poll late, which ages a healthy Lease by as much: 2 s keeps a
# kubelet renewing every 10 s well below the 20 s at which its Lease counts as late
# (verdict.nodes), for one list from the apiserver's cache every 2 s.
LEASE_POLL_SECONDS = 2.0


async def follow_node_leases(
    kube: KubeClient, inventory: Inventory, interval: float = LEASE_POLL_SECONDS
) -> None:
    """Lists the Leases every `interval` (from the apiserver's cache); stops when forbidden.

    A failed listing is retried at the next period; while none succeeds the inventory's Lease
    view goes stale and ages stop being evidence (see `Inventory.observe_leases`). An outage is
    logged once by the client, other failures once per streak.
    """
    failing = False
    while True:
        try:
            leases = await kube.list_node_leases()
        except ApiserverUnreachable:
            failing = True
        except ClusterError as exc:
            if not failing:
                log.warning("%s; retrying every %.0fs", exc, interval)
            failing = True
        else:
            if leases is None:
                log.warning(
                    "may not list Leases in kube-node-lease: node loss waits for the node"
                    " controller to mark a node NotReady"
                )
                return
            if failing:
                log.info("listing node Leases again")
            failing = False
            inventory.observe_leases(leases)
        await asyncio.sleep(interval)
