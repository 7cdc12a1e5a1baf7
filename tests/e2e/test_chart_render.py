"""The Helm chart, rendered by the real helm: lint, schema, Deployment, security and RBAC.

Each test renders the chart over the values matrix in chart_cases and reads the objects; the
apiserver's view of the same renderings is in test_chart_apiserver.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml

from chart_cases import (
    CASES,
    LEADER_ROLE_SUFFIX,
    NODE_LEASE_NAMESPACE,
    RELEASE_NAMESPACE,
    SERVICE_MONITOR_API,
    WATCHED,
    ChartCase,
    by_kind,
    cluster_rules,
    container,
    grants,
    leader_role,
    lease_rules,
    one,
    roles,
)
from devenv import helm

# What the operator may ever write: its own resource, Events, and pod evictions. Everything
# else is read-only.
WRITABLE = {
    ("lifeguard.dev", "jobpolicies"),
    ("lifeguard.dev", "jobpolicies/status"),
    ("", "events"),
    ("events.k8s.io", "events"),
    ("", "pods/eviction"),
}
READ_VERBS = {"get", "list", "watch"}


def rendered(case: ChartCase) -> list[dict[str, Any]]:
    return helm.render(case.values, namespace=RELEASE_NAMESPACE, api_versions=case.api_versions)


def case_named(name: str) -> ChartCase:
    return next(case for case in CASES if case.name == name)


def args_of(case: ChartCase) -> list[str]:
    return list(container(rendered(case))["args"])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_lint_strict_passes(case: ChartCase) -> None:
    if case.api_versions:
        # helm lint cannot be told about extra APIs; the ServiceMonitor case is linted without
        # the monitor and rendered with it below.
        values = {**case.values, "metrics": {"serviceMonitor": {"enabled": False}}}
    else:
        values = case.values
    done = helm.lint(values)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_deployment_is_two_rolling_replicas_with_liveness_and_metrics(case: ChartCase) -> None:
    objects = rendered(case)
    deployment = one(objects, "Deployment")
    operator = container(objects)
    ports = {p["name"]: p["containerPort"] for p in operator["ports"]}

    assert deployment["spec"]["replicas"] == 2
    # A new pod starts before an old one stops: an upgrade always leaves a replica watching.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert ports == {"metrics": 9090, "health": 8080}
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["args"][0] == "run"
    assert operator["args"][-8:] == [
        "--metrics-port", "9090", "--health-port", "8080",
        "--log-format", "json", "--log-level", "info",
    ]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_pod_meets_the_restricted_pod_security_standard(case: ChartCase) -> None:
    objects = rendered(case)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    security = container(objects)["securityContext"]
    mounts = {m["mountPath"]: m["name"] for m in container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert container(objects)["resources"]["limits"]["memory"] == "256Mi"


def test_default_watches_the_release_namespace_only() -> None:
    objects = rendered(case_named("defaults"))

    assert args_of(case_named("defaults"))[1:3] == ["--namespace", RELEASE_NAMESPACE]
    assert set(roles(objects)) == {RELEASE_NAMESPACE}


def test_namespaced_mode_passes_each_namespace_and_binds_a_role_in_each() -> None:
    case = case_named("namespaced")
    objects = rendered(case)
    bindings = {
        b["metadata"]["namespace"]: b
        for b in by_kind(objects, "RoleBinding")
        if b["metadata"]["namespace"] != NODE_LEASE_NAMESPACE
        and not b["metadata"]["name"].endswith(LEADER_ROLE_SUFFIX)
    }

    assert args_of(case)[1:5] == ["--namespace", WATCHED[0], "--namespace", WATCHED[1]]
    assert set(roles(objects)) == set(WATCHED)
    assert set(bindings) == set(WATCHED)
    for binding in bindings.values():
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "lifeguard-river-lifeguard",
             "namespace": RELEASE_NAMESPACE},
        ]  # fmt: skip


@pytest.mark.parametrize("case", [c for c in CASES if c.namespaces], ids=lambda case: case.name)
def test_namespaced_mode_grants_nothing_cluster_wide_but_reading_nodes(case: ChartCase) -> None:
    objects = rendered(case)

    for rule in cluster_rules(objects):
        assert rule == {
            "apiGroups": [""],
            "resources": ["nodes"],
            "verbs": ["get", "list", "watch"],
        }
    assert not grants(cluster_rules(objects), "", "secrets", "get")
    assert all(grants(rules, "", "secrets", "get") for rules in roles(objects).values())


def test_cluster_wide_mode_uses_one_cluster_role_and_no_namespace_arguments() -> None:
    case = case_named("cluster-wide")
    objects = rendered(case)
    rules = cluster_rules(objects)

    assert "--all-namespaces" in args_of(case)
    assert "--namespace" not in args_of(case)
    assert not roles(objects)
    for verb in ("get", "list", "watch"):
        assert grants(rules, "", "pods", verb)
        assert grants(rules, "batch", "jobs", verb)
        assert grants(rules, "lifeguard.dev", "jobpolicies", verb)
    assert grants(rules, "", "secrets", "get")
    assert grants(rules, "lifeguard.dev", "jobpolicies/status", "patch")
    assert grants(rules, "", "pods/eviction", "create")
    assert len(by_kind(objects, "ClusterRoleBinding")) == 2  # the operator's, and nodes


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_node_leases_are_read_only_and_only_with_node_loss_detection(case: ChartCase) -> None:
    objects = rendered(case)
    read_leases = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                    "verbs": ["get", "list", "watch"]}]  # fmt: skip
    nodes_read = bool(grants(cluster_rules(objects), "", "nodes", "list"))
    assert lease_rules(objects) == (read_leases if nodes_read else [])


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_rules_write_only_the_operators_own_objects_and_never_delete(case: ChartCase) -> None:
    objects = rendered(case)
    every_rule = cluster_rules(objects) + [r for rs in roles(objects).values() for r in rs]

    for rule in every_rule:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        writes = set(rule["verbs"]) - READ_VERBS
        assert writes <= {"create", "patch"}, rule
        if writes:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert (group, resource) in WRITABLE, rule
    assert not any(grants(every_rule, "", "secrets", verb) for verb in ("list", "watch"))


@pytest.mark.parametrize(
    ("case_name", "evicts"),
    [("defaults", True), ("cluster-wide", True), ("restarts-disabled", False)],
)
def test_pod_evictions_are_granted_only_when_restarts_are_enabled(
    case_name: str, evicts: bool
) -> None:
    objects = rendered(case_named(case_name))
    every_rule = cluster_rules(objects) + [r for rs in roles(objects).values() for r in rs]

    assert grants(every_rule, "", "pods/eviction", "create") is evicts


def test_node_loss_off_reads_no_nodes_and_tells_the_operator() -> None:
    case = case_named("node-loss-off")
    objects = rendered(case)

    assert "--no-nodes" in args_of(case)
    assert not by_kind(objects, "ClusterRole")
    assert not by_kind(objects, "ClusterRoleBinding")
    assert args_of(case)[3:5] == ["--pod-selector", "app=river-worker"]


def test_node_loss_on_reads_nodes_cluster_wide_and_only_nodes() -> None:
    objects = rendered(case_named("defaults"))

    assert "--no-nodes" not in args_of(case_named("defaults"))
    assert grants(cluster_rules(objects), "", "nodes", "watch")
    assert not grants(cluster_rules(objects), "", "nodes", "patch")


def test_bring_your_own_rbac_creates_no_account_or_roles_and_uses_the_named_account() -> None:
    objects = rendered(case_named("bring-your-own-rbac"))
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]

    # The Lease and the budget are no permissions: they come with the release either way.
    assert {o["kind"] for o in objects} == {"Deployment", "Lease", "PodDisruptionBudget"}
    assert pod["serviceAccountName"] == "lifeguard"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_replicas_campaign_for_the_releases_own_lease_with_the_default_timings(
    case: ChartCase,
) -> None:
    objects = rendered(case)
    args = container(objects)["args"]
    lease = one(objects, "Lease")
    name = one(objects, "Deployment")["metadata"]["name"]

    assert lease["metadata"] == {**lease["metadata"], "name": name, "namespace": RELEASE_NAMESPACE}
    # The chart leaves the spec to the replicas: an upgrade never rewrites the leader's record.
    assert lease["spec"] == {}
    flags = dict(itertools.pairwise(args))
    assert flags["--leader-election-name"] == name
    assert (flags["--lease-duration"], flags["--renew-deadline"], flags["--retry-period"]) == (
        "15s", "10s", "2s",
    )  # fmt: skip
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in
           container(objects)["env"]}  # fmt: skip
    assert env["POD_NAMESPACE"] == "metadata.namespace"  # the Lease's namespace
    assert env["POD_NAME"] == "metadata.name"  # the replica's identity


def test_leader_role_writes_only_the_releases_lease_and_cannot_create_one() -> None:
    objects = rendered(case_named("defaults"))
    role = leader_role(objects)
    name = one(objects, "Deployment")["metadata"]["name"]

    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "resourceNames": [name], "verbs": ["get", "update", "list", "watch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]  # fmt: skip
    binding = [
        b
        for b in by_kind(objects, "RoleBinding")
        if b["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding[0]["subjects"][0]["name"] == one(objects, "ServiceAccount")["metadata"]["name"]


@pytest.mark.parametrize(
    ("values", "budget"),
    [
        ({}, {"minAvailable": 1}),
        ({"podDisruptionBudget": {"maxUnavailable": 1}}, {"maxUnavailable": 1}),
        ({"replicaCount": 3, "podDisruptionBudget": {"minAvailable": 2}}, {"minAvailable": 2}),
        ({"replicaCount": 1}, None),
        ({"podDisruptionBudget": {"enabled": False}}, None),
    ],
    ids=["default", "max-unavailable", "three-replicas", "one-replica", "disabled"],
)
def test_disruption_budget_keeps_one_replica_and_only_with_more_than_one(
    values: dict[str, Any], budget: dict[str, int] | None
) -> None:
    found = by_kind(helm.render(values, namespace=RELEASE_NAMESPACE), "PodDisruptionBudget")

    if budget is None:
        assert found == []
    else:
        spec = dict(found[0]["spec"])
        spec.pop("selector")
        assert spec == budget


def test_replicas_prefer_different_nodes_and_leave_a_lost_node_soon() -> None:
    pod = one(rendered(case_named("defaults")), "Deployment")["spec"]["template"]["spec"]
    preferred = pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    tolerations = {t["key"]: t for t in pod["tolerations"]}

    assert preferred[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        preferred[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]
        == (one(rendered(case_named("defaults")), "Deployment")["spec"]["selector"]["matchLabels"])
    )
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        assert tolerations[key] == {
            "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30,
        }  # fmt: skip


def test_affinity_and_tolerations_values_replace_and_extend_the_defaults() -> None:
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["system"]}]}]}}}  # fmt: skip
    extra = {"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}
    objects = helm.render(
        {"affinity": own, "tolerations": [extra], "nodeFailureTolerationSeconds": 10}
    )
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]

    assert pod["affinity"] == own
    assert extra in pod["tolerations"]
    assert {t.get("tolerationSeconds") for t in pod["tolerations"]} == {10, None}


def test_metrics_case_renders_service_monitor_dashboard_and_budget() -> None:
    objects = rendered(case_named("metrics"))
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    dashboard = one(objects, "ConfigMap")

    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"] == monitor["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert '"legendFormat": "{{cause}}"' in dashboard["data"]["river-lifeguard.json"]
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_defaults_render_no_optional_objects() -> None:
    kinds = {o["kind"] for o in rendered(case_named("defaults"))}

    assert kinds == {
        "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Deployment",
        "Lease", "PodDisruptionBudget",
    }  # fmt: skip


def test_crds_are_rendered_only_on_request() -> None:
    with_crds = helm.render({}, include_crds=True)

    assert [o["metadata"]["name"] for o in by_kind(with_crds, "CustomResourceDefinition")] == [
        "jobpolicies.lifeguard.dev"
    ]
    assert not by_kind(helm.render({}), "CustomResourceDefinition")


def _rejection(values: dict[str, Any], api_versions: tuple[str, ...] = ()) -> str:
    done = helm.template(values, api_versions=api_versions, check=False)
    assert done.returncode != 0, f"{values} was accepted"
    return done.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"restarts": {"enabled": "yes"}}, "at '/restarts/enabled': got string, want boolean"),
        ({"watch": {"namespaces": "team-a"}}, "at '/watch/namespaces': got string, want array"),
        ({"metrics": {"port": 70000}}, "at '/metrics/port'"),
        ({"logging": {"format": "xml"}}, "at '/logging/format': value must be one of"),
        ({"watch": {"namespaces": ["Team_A"]}}, "at '/watch/namespaces/0'"),
        ({"restart": {"enabled": False}}, "additional properties 'restart' not allowed"),
        ({"watch": {"podSelectr": "a=b"}}, "at '/watch': additional properties 'podSelectr'"),
        ({"replicaCount": 0}, "at '/replicaCount'"),
        ({"leaderElection": {"leaseDuration": "15"}}, "at '/leaderElection/leaseDuration'"),
    ],
    ids=["wrong-bool", "wrong-list", "port-range", "enum", "namespace-name", "unknown-key",
         "misspelt-nested-key", "no-replicas", "duration-without-unit"],
)  # fmt: skip
def test_schema_rejects_wrong_values_naming_the_field(values: dict[str, Any], message: str) -> None:
    stderr = _rejection(values)

    assert "values don't meet the specifications of the schema" in stderr
    assert message in stderr


def test_all_namespaces_with_a_namespace_list_is_refused_readably() -> None:
    stderr = _rejection({"watch": {"allNamespaces": True, "namespaces": ["team-a"]}})

    assert "watch.allNamespaces is true and watch.namespaces is set: choose one" in stderr


def test_service_monitor_without_the_api_is_refused_readably() -> None:
    stderr = _rejection({"metrics": {"serviceMonitor": {"enabled": True}}})

    assert "does not serve monitoring.coreos.com/v1 ServiceMonitor" in stderr


def test_service_monitor_renders_when_the_api_is_served() -> None:
    objects = helm.render(
        {"metrics": {"serviceMonitor": {"enabled": True}}}, api_versions=(SERVICE_MONITOR_API,)
    )

    assert one(objects, "ServiceMonitor")
    assert one(objects, "Service")  # the monitor needs the Service, even if not asked for


def test_image_defaults_to_the_app_version_and_a_digest_wins() -> None:
    digest = "sha256:" + "a" * 64
    app_version = yaml.safe_load((helm.CHART / "Chart.yaml").read_text())["appVersion"]

    assert container(helm.render({}))["image"] == f"river-lifeguard:{app_version}"
    assert (
        container(helm.render({"image": {"repository": "r.example/lg", "digest": digest}}))["image"]
        == f"r.example/lg@{digest}"
    )
