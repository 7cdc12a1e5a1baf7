"""The Helm chart on the real kube-apiserver: every rendering is accepted, and once installed its
ServiceAccount can do exactly what the operator needs, proven by the apiserver's authorizer.

Two releases are installed: a namespaced one (two watched namespaces, restarts disabled, node
loss detection on) and a cluster-wide one (restarts enabled, node loss detection off). Their
permissions are asked with `kubectl auth can-i --as system:serviceaccount:NS:SA` and, for the
Secret and eviction cases, tried with real requests under the same identity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chart_cases import CASES, RELEASE_NAMESPACE, ChartCase
from devenv import helm
from devenv.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

# prometheus-operator's ServiceMonitor, reduced to what makes the API served: the chart's
# ServiceMonitor case needs monitoring.coreos.com/v1 to exist for the server dry run.
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ServiceMonitor",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}

NAMESPACED_RELEASE = "lg-ns"
NAMESPACED_HOME = "chart-operator-a"
CLUSTER_RELEASE = "lg-cw"
CLUSTER_HOME = "chart-operator-b"
WATCHED_1, WATCHED_2 = "chart-watched-1", "chart-watched-2"
UNWATCHED = "chart-unwatched"


def _ensure_namespace(cluster: ControlPlane, name: str) -> None:
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """The control plane serving ServiceMonitors, with the dry-run matrix's namespaces."""
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(SERVICE_MONITOR_CRD))
    control_plane.kubectl(
        "wait", "--for=condition=Established",
        "crd/servicemonitors.monitoring.coreos.com", "--timeout=60s",
    )  # fmt: skip
    namespaces = {RELEASE_NAMESPACE, *(ns for case in CASES for ns in case.namespaces)}
    for name in sorted(namespaces):
        _ensure_namespace(control_plane, name)
    yield control_plane
    for name in sorted(namespaces):
        control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
    control_plane.kubectl(
        "delete", "crd", "servicemonitors.monitoring.coreos.com", "--wait=false", check=False
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_rendering_is_accepted_by_the_apiserver(
    cluster: ControlPlane, case: ChartCase
) -> None:
    manifests = helm.template(
        case.values,
        namespace=RELEASE_NAMESPACE,
        api_versions=case.api_versions,
        include_crds=True,
    ).stdout

    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=manifests, check=False)

    assert done.returncode == 0, done.stderr
    applied = [line for line in done.stdout.splitlines() if line.endswith("(server dry run)")]
    assert "deployment.apps/lifeguard-river-lifeguard" in done.stdout
    assert "customresourcedefinition.apiextensions.k8s.io/jobpolicies.lifeguard.dev" in done.stdout
    assert len(applied) == manifests.count("\nkind: ")


@dataclass(frozen=True)
class Installed:
    cluster: ControlPlane
    notes: str


def _account(namespace: str, release: str) -> str:
    return f"system:serviceaccount:{namespace}:{release}-river-lifeguard"


NAMESPACED_SA = _account(NAMESPACED_HOME, NAMESPACED_RELEASE)
CLUSTER_SA = _account(CLUSTER_HOME, CLUSTER_RELEASE)


def _pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{"name": "sleep", "image": "sleep", "command": ["sleep", "600"]}],
        },
    }


def _create_pod(cluster: ControlPlane, namespace: str, name: str) -> None:
    # A new namespace's default ServiceAccount appears a moment after it; pods wait for it.
    deadline = time.monotonic() + 60
    while True:
        done = cluster.kubectl(
            "create", "-n", namespace, "-f", "-", input=json.dumps(_pod(name)), check=False
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"could not create pod {namespace}/{name}: {done.stderr}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def installed(cluster: ControlPlane) -> Iterator[Installed]:
    """Both releases installed with helm, plus a database Secret and a pod in each namespace."""
    for name in (WATCHED_1, WATCHED_2, UNWATCHED):
        _ensure_namespace(cluster, name)
        cluster.kubectl(
            "create", "secret", "generic", "river-db", "-n", name,
            "--from-literal=url=postgres://river@db/river",
        )  # fmt: skip
        _create_pod(cluster, name, "worker")
    namespaced = helm.install(
        NAMESPACED_RELEASE,
        NAMESPACED_HOME,
        {"watch": {"namespaces": [WATCHED_1, WATCHED_2]}, "restarts": {"enabled": False}},
        cluster.kubeconfig,
    )
    helm.install(
        CLUSTER_RELEASE,
        CLUSTER_HOME,
        {"watch": {"allNamespaces": True}, "nodeLossDetection": {"enabled": False}},
        cluster.kubeconfig,
    )
    yield Installed(cluster, namespaced.stdout)
    for release, home in ((NAMESPACED_RELEASE, NAMESPACED_HOME), (CLUSTER_RELEASE, CLUSTER_HOME)):
        helm.uninstall(release, home, cluster.kubeconfig)
        cluster.kubectl("delete", "namespace", home, "--wait=false", check=False)
    for name in (WATCHED_1, WATCHED_2, UNWATCHED):
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def can(
    cluster: ControlPlane, account: str, verb: str, resource: str, namespace: str | None
) -> bool:
    """The apiserver's answer to `kubectl auth can-i` for `account` (None: all namespaces)."""
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={account}"]
    args += ["--all-namespaces"] if namespace is None else ["-n", namespace]
    if subresource:
        args.append(f"--subresource={subresource}")
    answer = cluster.kubectl(*args, check=False).stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {answer!r}"
    return answer == "yes"


# (verb, resource[/subresource], namespace or None for all/cluster-scoped)
Ask = tuple[str, str, str | None]

NAMESPACED_ALLOWED: list[Ask] = [
    ("get", "secrets", WATCHED_1),
    ("get", "secrets", WATCHED_2),
    ("list", "pods", WATCHED_1),
    ("watch", "pods", WATCHED_2),
    ("get", "pods", WATCHED_1),
    ("list", "jobs.batch", WATCHED_1),
    ("watch", "jobs.batch", WATCHED_2),
    ("list", "jobpolicies.lifeguard.dev", WATCHED_1),
    ("watch", "jobpolicies.lifeguard.dev", WATCHED_2),
    ("patch", "jobpolicies.lifeguard.dev", WATCHED_1),
    ("patch", "jobpolicies.lifeguard.dev/status", WATCHED_2),
    ("create", "events", WATCHED_1),
    ("create", "events.events.k8s.io", WATCHED_2),
    ("list", "nodes", None),
    ("watch", "nodes", None),
]
NAMESPACED_FORBIDDEN: list[Ask] = [
    ("get", "secrets", UNWATCHED),
    ("get", "secrets", NAMESPACED_HOME),  # its own namespace is not a watched one
    ("list", "secrets", WATCHED_1),
    ("watch", "secrets", WATCHED_1),
    ("list", "pods", None),
    ("list", "jobpolicies.lifeguard.dev", None),
    ("list", "pods", UNWATCHED),
    ("delete", "deployments.apps", WATCHED_1),
    ("delete", "pods", WATCHED_1),
    ("create", "pods", WATCHED_1),
    ("create", "pods/eviction", WATCHED_1),  # restarts.enabled is false
    ("update", "jobpolicies.lifeguard.dev", WATCHED_1),
    ("delete", "jobpolicies.lifeguard.dev", WATCHED_1),
    ("get", "configmaps", WATCHED_1),
    ("list", "namespaces", None),
    ("patch", "nodes", None),
    ("get", "customresourcedefinitions.apiextensions.k8s.io", None),
]
CLUSTER_ALLOWED: list[Ask] = [
    ("get", "secrets", UNWATCHED),
    ("list", "pods", None),
    ("watch", "jobs.batch", None),
    ("list", "jobpolicies.lifeguard.dev", None),
    ("patch", "jobpolicies.lifeguard.dev/status", WATCHED_1),
    ("create", "pods/eviction", UNWATCHED),
    ("create", "events", UNWATCHED),
]
CLUSTER_FORBIDDEN: list[Ask] = [
    ("list", "nodes", None),  # nodeLossDetection.enabled is false
    ("get", "nodes", None),
    ("list", "secrets", None),
    ("delete", "deployments.apps", UNWATCHED),
    ("delete", "pods", UNWATCHED),
    ("update", "pods", UNWATCHED),
    ("list", "namespaces", None),
]


def _ask_id(ask: Ask) -> str:
    verb, resource, namespace = ask
    return f"{verb}-{resource}-{namespace or 'cluster'}"


@pytest.mark.parametrize("ask", NAMESPACED_ALLOWED, ids=_ask_id)
def test_namespaced_release_may_do_what_the_operator_needs(installed: Installed, ask: Ask) -> None:
    assert can(installed.cluster, NAMESPACED_SA, *ask)


@pytest.mark.parametrize("ask", NAMESPACED_FORBIDDEN, ids=_ask_id)
def test_namespaced_release_may_do_nothing_else(installed: Installed, ask: Ask) -> None:
    assert not can(installed.cluster, NAMESPACED_SA, *ask)


@pytest.mark.parametrize("ask", CLUSTER_ALLOWED, ids=_ask_id)
def test_cluster_wide_release_may_do_what_the_operator_needs(
    installed: Installed, ask: Ask
) -> None:
    assert can(installed.cluster, CLUSTER_SA, *ask)


@pytest.mark.parametrize("ask", CLUSTER_FORBIDDEN, ids=_ask_id)
def test_cluster_wide_release_may_do_nothing_else(installed: Installed, ask: Ask) -> None:
    assert not can(installed.cluster, CLUSTER_SA, *ask)


NAMESPACED_LEASE = f"leases.coordination.k8s.io/{NAMESPACED_RELEASE}-river-lifeguard"
CLUSTER_LEASE = f"leases.coordination.k8s.io/{CLUSTER_RELEASE}-river-lifeguard"
LEADER_ELECTION: list[tuple[str, str, str, bool]] = [
    # (verb, lease or leases/NAME, namespace, allowed): its own Lease only, and no creating.
    ("get", NAMESPACED_LEASE, NAMESPACED_HOME, True),
    ("update", NAMESPACED_LEASE, NAMESPACED_HOME, True),
    ("watch", NAMESPACED_LEASE, NAMESPACED_HOME, True),
    ("create", "events", NAMESPACED_HOME, True),
    ("patch", NAMESPACED_LEASE, NAMESPACED_HOME, False),
    ("delete", NAMESPACED_LEASE, NAMESPACED_HOME, False),
    ("create", "leases.coordination.k8s.io", NAMESPACED_HOME, False),
    ("update", "leases.coordination.k8s.io/other", NAMESPACED_HOME, False),
    ("get", "leases.coordination.k8s.io/other", NAMESPACED_HOME, False),
    ("list", "leases.coordination.k8s.io", NAMESPACED_HOME, False),
    ("watch", "leases.coordination.k8s.io", NAMESPACED_HOME, False),
    ("watch", "leases.coordination.k8s.io/other", NAMESPACED_HOME, False),
    ("update", CLUSTER_LEASE, CLUSTER_HOME, False),  # the other release's
    ("update", "leases.coordination.k8s.io/kube-controller-manager", "kube-system", False),
    ("update", NAMESPACED_LEASE, WATCHED_1, False),  # the same name elsewhere
]


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "allowed"),
    LEADER_ELECTION,
    ids=[f"{v}-{r.rsplit('/', 1)[-1]}-{ns}" for v, r, ns, _ in LEADER_ELECTION],
)
def test_the_release_may_write_its_own_lease_and_no_other(
    installed: Installed, verb: str, resource: str, namespace: str, allowed: bool
) -> None:
    args = ["auth", "can-i", verb, resource, f"--as={NAMESPACED_SA}", "-n", namespace]
    answer = installed.cluster.kubectl(*args, check=False).stdout.strip()

    assert answer == ("yes" if allowed else "no"), f"kubectl {' '.join(args)}: {answer!r}"


def test_the_chart_creates_the_lease_with_an_empty_record(installed: Installed) -> None:
    lease = installed.cluster.kubectl_json("get", NAMESPACED_LEASE, "-n", NAMESPACED_HOME)

    assert lease.get("spec", {}) == {}  # type: ignore[union-attr]


def test_reading_a_secret_outside_the_watched_namespaces_is_forbidden(
    installed: Installed,
) -> None:
    cluster = installed.cluster
    outside = cluster.kubectl(
        "get", "secret", "river-db", "-n", UNWATCHED, f"--as={NAMESPACED_SA}", check=False
    )
    inside = cluster.kubectl(
        "get", "secret", "river-db", "-n", WATCHED_1, f"--as={NAMESPACED_SA}", "-o", "name"
    )

    assert outside.returncode != 0
    assert 'secrets "river-db" is forbidden' in outside.stderr
    assert f'User "{NAMESPACED_SA}" cannot get resource "secrets"' in outside.stderr
    assert inside.stdout.strip() == "secret/river-db"


def _evict(cluster: ControlPlane, account: str, namespace: str, pod: str) -> Any:
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": namespace},
    }
    return cluster.kubectl(
        "create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction",
        "-f", "-", f"--as={account}", input=json.dumps(eviction), check=False,
    )  # fmt: skip


def test_evicting_a_pod_is_forbidden_when_restarts_are_disabled(installed: Installed) -> None:
    done = _evict(installed.cluster, NAMESPACED_SA, WATCHED_2, "worker")

    assert done.returncode != 0
    assert "forbidden" in done.stderr.lower()
    assert (
        installed.cluster.kubectl("get", "pod", "worker", "-n", WATCHED_2, check=False).returncode
        == 0
    )


def test_evicting_a_pod_is_allowed_when_restarts_are_enabled(installed: Installed) -> None:
    done = _evict(installed.cluster, CLUSTER_SA, UNWATCHED, "worker")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "Success"


def test_install_creates_the_operator_under_its_own_account_and_prints_next_steps(
    installed: Installed,
) -> None:
    deployment = installed.cluster.kubectl_json(
        "get", "deployment", f"{NAMESPACED_RELEASE}-river-lifeguard", "-n", NAMESPACED_HOME
    )
    pod = deployment["spec"]["template"]["spec"]  # type: ignore[index]

    assert pod["serviceAccountName"] == f"{NAMESPACED_RELEASE}-river-lifeguard"
    assert pod["containers"][0]["args"][:5] == [
        "run", "--namespace", WATCHED_1, "--namespace", WATCHED_2,
    ]  # fmt: skip
    assert f"kubectl -n {NAMESPACED_HOME} rollout status" in installed.notes
    assert "restarts.enabled is false" in installed.notes
