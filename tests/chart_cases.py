"""The Helm chart's values matrix and small readers of rendered objects, for the chart tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
RELEASE_NAMESPACE = "chart-system"
WATCHED = ["chart-team-a", "chart-team-b"]


@dataclass(frozen=True)
class ChartCase:
    name: str
    values: dict[str, Any]
    # APIs the target cluster serves beyond the built-in ones (helm template --api-versions).
    api_versions: tuple[str, ...] = ()
    namespaces: list[str] = field(default_factory=lambda: [RELEASE_NAMESPACE])


CASES = [
    ChartCase("defaults", {}),
    ChartCase("namespaced", {"watch": {"namespaces": WATCHED}}, namespaces=WATCHED),
    ChartCase("cluster-wide", {"watch": {"allNamespaces": True}}, namespaces=[]),
    ChartCase(
        "metrics",
        {
            "metrics": {"service": {"enabled": True}, "serviceMonitor": {"enabled": True}},
            "grafanaDashboard": {"enabled": True},
            "podDisruptionBudget": {"enabled": True},
        },
        api_versions=(SERVICE_MONITOR_API,),
    ),
    ChartCase("restarts-disabled", {"restarts": {"enabled": False}}),
    ChartCase(
        "node-loss-off",
        {"nodeLossDetection": {"enabled": False}, "watch": {"podSelector": "app=river-worker"}},
    ),
    ChartCase(
        "bring-your-own-rbac",
        {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "lifeguard"}},
    ),
]


def by_kind(objects: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Iterable[Obj], kind: str) -> Obj:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(objects: Iterable[Obj]) -> Obj:
    deployment = one(objects, "Deployment")
    containers: list[Obj] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def grants(rules: Iterable[Obj], group: str, resource: str, verb: str) -> bool:
    """Whether RBAC `rules` allow `verb` on `group`/`resource` (wildcards included)."""
    return any(
        (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
        and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
        and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        for rule in rules
    )


NODE_LEASE_NAMESPACE = "kube-node-lease"
LEADER_ROLE_SUFFIX = "-leader-election"


def roles(objects: Iterable[Obj]) -> dict[str, list[Obj]]:
    """The rules of every Role in a watched namespace, by namespace (not node Leases', not
    leader election's)."""
    return {
        r["metadata"]["namespace"]: r["rules"]
        for r in by_kind(objects, "Role")
        if r["metadata"]["namespace"] != NODE_LEASE_NAMESPACE
        and not r["metadata"]["name"].endswith(LEADER_ROLE_SUFFIX)
    }


def leader_role(objects: Iterable[Obj]) -> Obj:
    """The Role that lets the replicas elect a leader on the release's Lease."""
    found = [
        r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith(LEADER_ROLE_SUFFIX)
    ]
    assert len(found) == 1, f"expected one leader election Role, found {len(found)}"
    return found[0]


def lease_rules(objects: Iterable[Obj]) -> list[Obj]:
    """The rules granted in kube-node-lease (node-loss detection reads the kubelets' Leases)."""
    return [
        rule
        for role in by_kind(objects, "Role")
        if role["metadata"]["namespace"] == NODE_LEASE_NAMESPACE
        for rule in role["rules"]
    ]


def cluster_rules(objects: Iterable[Obj]) -> list[Obj]:
    """Every rule granted cluster-wide, over all ClusterRoles."""
    return [rule for role in by_kind(objects, "ClusterRole") for rule in role["rules"]]
