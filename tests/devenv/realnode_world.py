"""Scenarios on the real node: worker pods from the worker image, the operator from its image.

The real node is tainted (REAL_NODE_TAINT), so only pods that ask for it land there: the node
agents' pods elsewhere in a shared control plane never meet a kubelet that cannot run them.
Worker pods reach PostgreSQL through its unix socket folder (hostPath, read-only) and keep
their own network and UTS namespaces: the hostname River's client ID starts with is the pod's
name. The operator is installed by `helm install` into a namespace that enforces the
restricted Pod Security Standard, with two test-environment settings (see install_operator).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from devenv import helm, realnode, river
from devenv.controlplane import ControlPlane
from devenv.nodeagent.kube import KubeClient
from devenv.postgres import PostgresCluster
from devenv.realnode import NODE_NAME, TAINT_KEY, RealNode
from devenv.realnode_relay import Relay, open_in_pod, pod_pid
from devenv.scenario import Json, Scenario, migrate_heartbeats, wait_for

REAL_NODE_TAINT = {"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
# Where worker pods see PostgreSQL's socket folder.
SOCKET_MOUNT = "/run/postgresql"
DATABASE = "lifeguard"
# The sidecar of `RealScenario.sidecar_pod`.
SIDECAR = "cloud-sql-proxy"


def socket_dsn(database: str, port: int, user: str = "postgres") -> str:
    """A libpq URL over the unix socket in SOCKET_MOUNT (the port names the socket file)."""
    return f"postgresql://{user}@/{database}?host={SOCKET_MOUNT}&port={port}"


@dataclass(frozen=True)
class RealSite:
    """The real node joined to a control plane, and how its pods reach PostgreSQL: through
    the socket folder of the cluster listening on `database_port` of the host's loopback."""

    node: RealNode
    socket_dir: Path
    database_port: int

    def worker_dsn(self, database: str) -> str:
        return socket_dsn(database, self.database_port)


@contextmanager
def real_site(home: Path, plane: ControlPlane) -> Iterator[tuple[PostgresCluster, RealSite]]:
    """A PostgreSQL cluster that also serves its unix socket, and the real node joined to
    `plane`, both in `home`; stopped (and the Node deleted) afterwards."""
    socket_dir = home / "pg-socket"
    cluster = PostgresCluster.start(home, socket_dir=socket_dir)
    try:
        node = realnode.start(home, plane)
        try:
            yield cluster, RealSite(node, socket_dir, cluster.port)
        finally:
            realnode.stop(home)
            plane.kubectl("delete", "node", NODE_NAME, "--wait=false", check=False)
    finally:
        cluster.stop()


@dataclass
class RealScenario(Scenario):
    """A Scenario whose worker pods run the worker image on the real node."""

    node: RealNode | None = None
    socket_dir: Path | None = None
    worker_dsn: str = ""
    relays: list[Relay] = field(default_factory=list)

    @classmethod
    def on(
        cls, site: RealSite, plane: ControlPlane, namespace: str, dsn: str, worker: Path
    ) -> RealScenario:
        """Worker pods in `namespace` on the site's real node, on the database `dsn` names."""
        database = str(conninfo_to_dict(dsn)["dbname"])
        return cls(
            plane=plane,
            kube=KubeClient(plane.kubeconfig),
            namespace=namespace,
            dsn=dsn,
            worker=worker,
            node=site.node,
            socket_dir=site.socket_dir,
            worker_dsn=site.worker_dsn(database),
        )

    def worker_pod_body(
        self,
        name: str,
        queue: str,
        *,
        env: dict[str, str] | None = None,
        memory: str | None = None,
        node: str | None = None,
        restart_policy: str = "Never",
        labels: dict[str, str] | None = None,
        grace_seconds: int = 5,
    ) -> Json:
        """The worker image on the real node, PostgreSQL through its socket folder."""
        assert self.node is not None and self.socket_dir is not None
        body = super().worker_pod_body(
            name,
            queue,
            env={"DATABASE_URL": self.worker_dsn, **(env or {})},
            memory=memory,
            node=node or self.node.name,
            restart_policy=restart_policy,
            labels=labels,
            grace_seconds=grace_seconds,
        )
        spec = body["spec"]
        [container] = spec["containers"]
        del container["command"]
        container.update(
            image=self.node.images["worker"].reference,
            imagePullPolicy="Never",
            args=["run"],
            volumeMounts=[{"name": "pg-socket", "mountPath": SOCKET_MOUNT, "readOnly": True}],
        )
        spec["tolerations"] = [REAL_NODE_TAINT]
        spec["volumes"] = [
            {"name": "pg-socket", "hostPath": {"path": str(self.socket_dir), "type": "Directory"}}
        ]
        return body

    def sidecar_pod(self, name: str, queue: str, *, native: bool, every: float = 2) -> str:
        """A worker pod with a sidecar that exits 1 every `every` seconds and is restarted by
        the kubelet (a proxy that keeps losing its upstream): a second container listed
        before the worker, or a native sidecar (an init container with restartPolicy Always)
        when `native`. Waits until the worker container runs; returns the pod's name.

        The sidecar runs the operator's image only because it has a shell (its Debian base).
        """
        assert self.node is not None
        body = self.worker_pod_body(name, queue, restart_policy="Always")
        sidecar: Json = {
            "name": SIDECAR,
            "image": self.node.images["operator"].reference,
            "imagePullPolicy": "Never",
            "command": ["/bin/sh", "-c", f"sleep {every}; exit 1"],
        }
        spec = body["spec"]
        if native:
            spec["restartPolicy"] = "Never"
            spec["initContainers"] = [{**sidecar, "restartPolicy": "Always"}]
        else:
            # First: without the policy's workers.container the sidecar would be the default.
            spec["containers"].insert(0, sidecar)
        self.kube.create(f"/api/v1/namespaces/{self.namespace}/pods", body)
        self.pods.append(name)
        wait_for(
            lambda: (self._status(name, "worker").get("state") or {}).get("running"),
            60,
            f"pod {name}'s worker to run",
        )
        return name

    def _status(self, pod: str, container: str) -> Json:
        """The status of one container or native sidecar of `pod` ({} when not reported)."""
        status = (self.pod(pod) or {}).get("status") or {}
        every = [
            *(status.get("containerStatuses") or []),
            *(status.get("initContainerStatuses") or []),
        ]
        return next((s for s in every if s.get("name") == container), {})

    def container_id(self, pod: str, container: str = "worker") -> str:
        raw = str(self._status(pod, container).get("containerID") or "")
        return raw.split("://", 1)[-1]

    def restart_count(self, pod: str, container: str = "worker") -> int:
        return int(self._status(pod, container).get("restartCount") or 0)


# (pod uid, a process of the pod, ports) -> a relay of those ports into the pod's loopback.
OpenRelay = Callable[[str, int, list[int]], Relay]


def in_process_relay(uid: str, _pid: int, ports: list[int]) -> Relay:
    """A relay that lives as long as this process (tests); see realnode_relay."""
    return open_in_pod(uid, ports, timeout=30)


def install_operator(
    plane: ControlPlane,
    node: RealNode,
    release: str,
    namespace: str,
    watched: list[str],
    host_ports: list[int],
    *,
    open_relay: OpenRelay = in_process_relay,
) -> list[Relay]:
    """`helm install` of the chart from the operator image; returns its pods' loopback relays.

    Test-environment settings, passed as ordinary values (the chart's defaults are untouched):
    `extraEnv` points the in-cluster configuration at 127.0.0.1:<apiserver port> (this cluster
    has no kube-proxy, so the `kubernetes` Service address leads nowhere), and the relay makes
    that address, and PostgreSQL's, reachable on the pod's own loopback.
    """
    api_port = int(plane.server.rsplit(":", 1)[1])
    plane.kubectl(
        "apply", "-f", "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": namespace,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                    },
                },
            }
        ),
    )  # fmt: skip
    image = node.images["operator"]
    values: dict[str, Any] = {
        "image": {"repository": image.repository, "tag": image.tag, "pullPolicy": "Never"},
        "watch": {"namespaces": watched},
        "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
        "tolerations": [REAL_NODE_TAINT],
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(api_port)},
        ],
    }
    done = helm.install(release, namespace, values, plane.kubeconfig)
    assert done.returncode == 0, done.stderr
    plane.kubectl(
        "wait", "--for=condition=Established", "crd/jobpolicies.lifeguard.dev", "--timeout=60s"
    )

    deployment = plane.kubectl_json(
        "get", "deployment", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}"
    )
    items: list[Json] = deployment["items"]  # type: ignore[assignment]
    replicas = int(items[0]["spec"]["replicas"])
    relays: dict[str, Relay] = {}

    def attach() -> bool:
        """A relay into each replica's network namespace, as soon as its sandbox runs."""
        pods = plane.kubectl_json(
            "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}"
        )
        for pod in pods["items"]:  # type: ignore[attr-defined]
            uid = pod["metadata"]["uid"]
            pid = None if uid in relays else pod_pid(uid)
            if pid:
                relays[uid] = open_relay(uid, pid, [api_port, *host_ports])
        return len(relays) >= replicas

    wait_for(attach, 120, f"the operator's {replicas} pods' sandboxes on the real node", step=0.05)
    return list(relays.values())


@contextmanager
def real_world(
    home: Path,
    plane: ControlPlane,
    worker: Path,
    *,
    release: str,
    release_namespace: str,
    watched: str,
    policy: str,
    spec: Json,
) -> Iterator[RealScenario]:
    """PostgreSQL (serving its socket too), the real node joined to `plane`, the operator
    installed by Helm watching `watched`, and policy `policy` Ready; all gone afterwards."""
    relays: list[Relay] = []
    with real_site(home, plane) as (cluster, site):
        try:
            dsn = river.create_database(cluster, DATABASE)
            migrate_heartbeats(dsn)
            world = RealScenario.on(site, plane, watched, dsn, worker)
            world.create_namespace()
            # The operator reads the database at the address the host uses: the relay makes
            # it (and the apiserver's) reachable on the operator pod's own loopback.
            world.create_secret("river-db", dsn)
            relays = install_operator(
                plane, site.node, release, release_namespace, [watched], [cluster.port]
            )
            world.apply_policy(policy, spec)
            world.wait_condition(policy, "Ready", "True", timeout=180)
            yield world
        finally:
            for relay in relays:
                relay.close()
            helm.uninstall(release, release_namespace, plane.kubeconfig)
            plane.kubectl(
                "delete", "namespace", watched, release_namespace, "--wait=false", check=False
            )
