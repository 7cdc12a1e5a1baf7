"""The operator installed by the Helm chart and run as a process with the chart's identity.

The chart creates the CRD, the ServiceAccount and its RBAC, and a Deployment. Node agents have
no container runtime, so the Deployment is scaled to zero and the operator runs as a local
process that authenticates with a token of the chart's ServiceAccount: every request it makes
is authorized by exactly the chart's Roles, as in a real cluster. (On the real node the chart's
Deployment itself runs the operator's image: devenv.realnode_world.install_operator.)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from devenv import helm
from devenv.controlplane import ControlPlane
from devenv.operator import OperatorProcess, start_operator


def install_chart(plane: ControlPlane, release: str, namespace: str, watched: list[str]) -> str:
    """`helm install` of charts/river-lifeguard watching `watched`; returns its account name.

    The watched namespaces must exist: the chart creates a Role in each.
    """
    helm.install(release, namespace, {"watch": {"namespaces": watched}}, plane.kubeconfig)
    plane.kubectl(
        "wait", "--for=condition=Established", "crd/jobpolicies.lifeguard.dev", "--timeout=60s"
    )
    deployment = _only_name(plane, "deployment", release, namespace)
    plane.kubectl("scale", deployment, "--replicas=0", "-n", namespace)
    return _only_name(plane, "serviceaccount", release, namespace).split("/", 1)[1]


def uninstall_chart(plane: ControlPlane, release: str, namespace: str) -> None:
    helm.uninstall(release, namespace, plane.kubeconfig)


def chart_lease(plane: ControlPlane, release: str, namespace: str) -> tuple[str, str]:
    """The release's leader Lease (namespace, name), which the chart creates."""
    return namespace, _only_name(plane, "lease", release, namespace).split("/", 1)[1]


def _only_name(plane: ControlPlane, resource: str, release: str, namespace: str) -> str:
    done = plane.kubectl(
        "get", resource, "-n", namespace, "-o", "name",
        "-l", f"app.kubernetes.io/instance={release}",
    )  # fmt: skip
    names = done.stdout.split()
    if len(names) != 1:
        raise RuntimeError(f"release {release} made {len(names)} {resource}s: {names}")
    return names[0]


def service_account_kubeconfig(
    plane: ControlPlane, account: str, namespace: str, path: Path
) -> Path:
    """A kubeconfig holding a bound token of ServiceAccount `namespace/account`."""
    token = plane.kubectl(
        "create", "token", account, "-n", namespace, "--duration=24h"
    ).stdout.strip()
    ca_data = _cluster_ca_data(plane)
    user = f"system:serviceaccount:{namespace}:{account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "devenv",
                "cluster": {"server": plane.server, "certificate-authority-data": ca_data},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "devenv", "user": user}}],
        "current-context": "operator",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _cluster_ca_data(plane: ControlPlane) -> str:
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    data: str = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    return data


def start_chart_operator(
    plane: ControlPlane,
    state_dir: Path,
    account: str,
    namespace: str,
    watched: list[str],
    *,
    release: str,
    name: str = "operator",
) -> OperatorProcess:
    """`lifeguard run --namespace ...` as the chart's ServiceAccount, as the chart would run it:
    campaigning for the release's Lease (the only one its Role may write)."""
    kubeconfig = service_account_kubeconfig(
        plane, account, namespace, state_dir / f"{name}.kubeconfig"
    )
    lease = chart_lease(plane, release, namespace)
    return start_operator(state_dir, kubeconfig, name=name, namespaces=watched, lease=lease)
