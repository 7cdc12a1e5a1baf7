"""What a replica does when it gains or loses the leader Lease: start or stop supervising,
set `lifeguard_leader`, and say so in its log and in an Event on the Lease."""

import logging
import os
import socket
import uuid

import kubernetes

from lifeguard.cluster.election import ElectionTiming
from lifeguard.cluster.kube import ClusterError, ObjectRef
from lifeguard.cluster.leader import LeaderElector
from lifeguard.cluster.lease_lock import LeaseLock
from lifeguard.supervisor.fleet import Fleet

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_identity() -> str:
    """The pod's name (or the host's) and a random suffix, as client-go's users do: a restarted
    process is a new candidate, never mistaken for the leader it replaced."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def default_namespace(fallback: str) -> str:
    """The operator's own namespace: POD_NAMESPACE (the chart sets it), the ServiceAccount's
    mounted namespace, else `fallback` (the kubeconfig's)."""
    namespace = os.environ.get("POD_NAMESPACE", "")
    if not namespace:
        try:
            with open(SERVICE_ACCOUNT_NAMESPACE) as mounted:
                namespace = mounted.read().strip()
        except OSError:
            namespace = ""
    return namespace or fallback


def elector_for(
    fleet: Fleet,
    api_client: kubernetes.client.ApiClient,
    *,
    namespace: str,
    name: str,
    identity: str,
    timing: ElectionTiming,
) -> LeaderElector:
    """An elector whose transitions start and stop the fleet; the fleet asks it before acting."""
    # A Lease call that hangs must not outlast the time the leader has to retry it.
    lock = LeaseLock(api_client, namespace, name, timeout=timing.renew_deadline / 2)
    elector: LeaderElector

    async def started() -> None:
        fleet.metrics.leader.set(1)
        await fleet.lead()
        about = ObjectRef("coordination.k8s.io/v1", "Lease", namespace, name, lock.uid)
        try:
            await fleet.kube.post_event(
                about, "Normal", "LeaderElected", f"{identity} became leader and acts."
            )
        except ClusterError as exc:
            log.warning("leader election: %s", exc)

    async def stopped() -> None:
        fleet.metrics.leader.set(0)
        await fleet.step_down()

    elector = LeaderElector(lock, identity, timing, on_started=started, on_stopped=stopped)
    fleet.may_act = elector.may_act
    fleet.leading = False
    fleet.metrics.leader.set(0)
    return elector
