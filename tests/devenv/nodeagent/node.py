"""The Node object of the agent: registration, Lease renewals and Ready heartbeats.

The node-lifecycle controller judges a node by its Lease in kube-node-lease and its Ready
condition's heartbeat; when the agent "fails" the node it simply stops both, and the real
controller marks it NotReady and taints it, as for a dead kubelet.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
import uuid
from typing import Any

from devenv.nodeagent.kube import MERGE, ApiError, KubeClient
from devenv.nodeagent.spec import POD_IP, now_micro, now_rfc3339

Json = dict[str, Any]
log = logging.getLogger("nodeagent.node")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
LEASE_RENEW_SECONDS = 2.0
STATUS_EVERY_SECONDS = 10.0
# Generous, so the scheduler never refuses a test pod on the 2-core test machine.
CAPACITY = {"cpu": "16", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
AGENT_LABEL = "lifeguard.dev/node-agent"

_CONDITIONS = [
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID"),
]


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class NodeHeartbeat(threading.Thread):
    """Registers the node, then renews its Lease and Ready status until told to stop."""

    def __init__(
        self,
        kube: KubeClient,
        node_name: str,
        stop: threading.Event,
        renew_seconds: float = LEASE_RENEW_SECONDS,
    ) -> None:
        super().__init__(name="node-heartbeat", daemon=True)
        self.kube = kube
        self.node_name = node_name
        self.stop = stop
        self.renew_seconds = renew_seconds
        self.registered = threading.Event()
        self._since = now_rfc3339()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """A kubelet that stalls: no Lease renewal or status for `seconds`, then as before."""
        self._paused_until = time.monotonic() + seconds
        log.warning("node %s: heartbeats paused for %gs", self.node_name, seconds)

    def _status(self) -> Json:
        now = now_rfc3339()
        return {
            "capacity": CAPACITY,
            "allocatable": CAPACITY,
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": self._since,
                }
                for kind, status, reason, message in _CONDITIONS
            ],
            "addresses": [
                {"type": "InternalIP", "address": POD_IP},
                {"type": "Hostname", "address": self.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": self._node_info,
        }

    def register(self) -> None:
        version = self.kube.get("/version").get("gitVersion", "v0.0.0")
        self._node_info = {
            "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.node_name).hex,
            "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, self.node_name)),
            "bootID": str(uuid.uuid4()),
            "kernelVersion": platform.release(),
            "osImage": "lifeguard process node agent",
            "containerRuntimeVersion": "nodeagent://0.1.0",
            "kubeletVersion": version,
            "operatingSystem": "linux",
            "architecture": _arch(),
        }
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": _arch(),
            AGENT_LABEL: "true",
        }
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": labels},
            "status": self._status(),
        }
        try:
            created = self.kube.create("/api/v1/nodes", node)
            log.info("registered node %s (kubelet version %s)", self.node_name, version)
        except ApiError as exc:
            if exc.status != 409:
                raise
            created = self.kube.patch(
                f"/api/v1/nodes/{self.node_name}", {"metadata": {"labels": labels}}
            )
            log.info("node %s already registered: taking it over", self.node_name)
        self.node_uid = created["metadata"]["uid"]
        self._post_status()
        self._renew_lease()
        self.registered.set()

    def _post_status(self) -> None:
        self.kube.patch(f"/api/v1/nodes/{self.node_name}/status", {"status": self._status()})

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{self.node_name}"
        try:
            self.kube.patch(path, {"spec": {"renewTime": now_micro()}}, MERGE)
            return
        except ApiError as exc:
            if exc.status != 404:
                raise
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node_name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.node_name,
                        "uid": self.node_uid,
                    }
                ],
            },
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": now_micro(),
            },
        }
        self.kube.create(f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases", lease)

    def run(self) -> None:
        """Lease every renew_seconds, status every STATUS_EVERY_SECONDS; errors retried."""
        ticks_per_status = max(1, round(STATUS_EVERY_SECONDS / self.renew_seconds))
        tick = 0
        while not self.stop.wait(self.renew_seconds):
            if time.monotonic() < self._paused_until:
                # A stalled kubelet renews as soon as it comes back, not a period later.
                self.stop.wait(max(0.0, self._paused_until - time.monotonic()))
                if self.stop.is_set():
                    break
            tick += 1
            try:
                self._renew_lease()
                if tick % ticks_per_status == 0:
                    self._post_status()
            except ApiError as exc:
                log.warning("node %s heartbeat failed (retrying): %s", self.node_name, exc)
        log.info("node %s: heartbeats stopped (pid %d)", self.node_name, os.getpid())
