"""Pod and node facts from API objects, and the inventory that maps River client IDs to pods."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lifeguard.cluster.facts import is_terminal_change, job_facts, node_facts, pod_facts
from lifeguard.cluster.inventory import Inventory
from lifeguard.model.client_id import client_prefix

Json = dict[str, Any]


def pod_body(
    name: str,
    *,
    namespace: str = "jobs",
    labels: dict[str, str] | None = None,
    state: Json | None = None,
    last_state: Json | None = None,
    restarts: int = 0,
    conditions: list[Json] | None = None,
    phase: str = "Running",
    deletion: str | None = None,
) -> Json:
    metadata: Json = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "labels": labels or {"app": "w"},
    }
    if deletion:
        metadata["deletionTimestamp"] = deletion
    return {
        "metadata": metadata,
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": phase,
            "conditions": conditions or [],
            "containerStatuses": [
                {
                    "name": "worker",
                    "restartCount": restarts,
                    "state": state or {"running": {"startedAt": "2026-11-27T08:00:00Z"}},
                    "lastState": last_state or {},
                }
            ],
        },
    }


def test_running_container_facts_keep_its_start_time() -> None:
    facts = pod_facts(pod_body("w-1"))
    [container] = facts.containers
    assert container.running_since is not None
    assert container.running_since.isoformat() == "2026-11-27T08:00:00+00:00"
    assert container.terminated is None
    assert facts.node_name == "n1"


def test_pods_share_the_strings_they_repeat() -> None:
    # Decoded separately, as the watch stream delivers them: equal values, distinct objects.
    first, second = (
        pod_facts(json.loads(json.dumps(pod_body(name, labels={"app": "scale-worker"}))))
        for name in ("w-1", "w-2")
    )
    assert first.namespace is second.namespace
    assert first.node_name is second.node_name
    assert first.phase is second.phase
    assert first.labels[0][1] is second.labels[0][1]
    assert first.containers[0].name is second.containers[0].name


def test_oom_killed_container_facts_carry_reason_and_exit_code() -> None:
    state = {
        "terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-11-27T08:01:00Z"}
    }
    [container] = pod_facts(pod_body("w-1", state=state)).containers
    assert container.terminated is not None
    assert (container.terminated.exit_code, container.terminated.reason) == (137, "OOMKilled")


def test_disruption_target_condition_names_who_disrupts_the_pod() -> None:
    conditions = [
        {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}
    ]
    assert pod_facts(pod_body("w", conditions=conditions)).disruption_target == (
        "DeletionByTaintManager"
    )
    false = [{"type": "DisruptionTarget", "status": "False", "reason": "X"}]
    assert pod_facts(pod_body("w", conditions=false)).disruption_target is None


@pytest.mark.parametrize(
    ("status", "ready"), [("True", True), ("False", False), ("Unknown", False)]
)
def test_node_ready_condition(status: str, ready: bool) -> None:
    body = {
        "metadata": {"name": "n1"},
        "status": {"conditions": [{"type": "Ready", "status": status}]},
    }
    assert node_facts(body).ready is ready


def test_node_without_ready_condition_is_unknown() -> None:
    assert node_facts({"metadata": {"name": "n1"}, "status": {}}).ready is None


@pytest.mark.parametrize(
    ("body", "terminal"),
    [
        (pod_body("w"), False),
        (pod_body("w", state={"terminated": {"exitCode": 1}}), True),
        (pod_body("w", restarts=1), True),
        (pod_body("w", phase="Failed"), True),
        (pod_body("w", conditions=[{"type": "DisruptionTarget", "status": "True"}]), True),
    ],
    ids=["running", "terminated", "restarted", "failed", "disrupted"],
)
def test_terminal_changes_wake_the_fast_path(body: Json, terminal: bool) -> None:
    assert is_terminal_change(pod_facts(body)) is terminal


def test_deleted_pod_is_remembered_as_gone_and_found_by_prefix() -> None:
    inventory = Inventory()
    inventory.upsert_pod(pod_body("w-1"))
    gone = inventory.delete_pod(pod_body("w-1", state={"terminated": {"exitCode": 137}}))
    assert gone.gone
    found = inventory.pod("jobs", "w-1")
    assert found is not None and found.gone
    assert [p.name for p in inventory.pods_with_prefix("jobs", "w-1")] == ["w-1"]
    assert len(inventory) == 0


def test_recreated_pod_replaces_its_tombstone() -> None:
    inventory = Inventory()
    inventory.delete_pod(pod_body("w-1"))
    inventory.upsert_pod(pod_body("w-1"))
    found = inventory.pod("jobs", "w-1")
    assert found is not None and not found.gone
    assert len(inventory.pods_with_prefix("jobs", "w-1")) == 1


def test_tombstones_expire() -> None:
    inventory = Inventory(tombstone_ttl=0.0)
    inventory.delete_pod(pod_body("w-1"))
    assert inventory.pods_with_prefix("jobs", "w-1") == []
    assert inventory.pod("jobs", "w-1") is None


def test_long_pod_names_sharing_rivers_prefix_are_all_candidates() -> None:
    inventory = Inventory()
    base = "report-" + "x" * 60
    for suffix in ("-aaaaa", "-bbbbb"):
        inventory.upsert_pod(pod_body(base + suffix))
    assert len(inventory.pods_with_prefix("jobs", client_prefix(base + "-aaaaa"))) == 2


def test_pods_are_kept_per_namespace() -> None:
    inventory = Inventory()
    inventory.upsert_pod(pod_body("w-1", namespace="a"))
    assert inventory.pods_with_prefix("b", "w-1") == []
    assert inventory.node("n1") is None
    inventory.load([], None)
    assert inventory.nodes_observed is False


def test_pods_of_a_prefix_in_other_namespaces_are_found_live_and_deleted() -> None:
    inventory = Inventory()
    inventory.upsert_pod(pod_body("w-1", namespace="a"))
    inventory.upsert_pod(pod_body("w-1", namespace="b"))
    inventory.delete_pod(pod_body("w-1", namespace="c"))
    inventory.upsert_pod(pod_body("w-2", namespace="d"))

    found = inventory.pods_with_prefix_elsewhere("a", "w-1")

    assert [(p.namespace, p.gone) for p in found] == [("b", False), ("c", True)]
    assert inventory.pods_with_prefix_elsewhere("x", "w-3") == []


def test_a_namespace_leaves_a_prefix_when_its_last_pod_and_tombstone_are_gone() -> None:
    inventory = Inventory(tombstone_ttl=0.0)
    inventory.upsert_pod(pod_body("w-1", namespace="a"))
    inventory.upsert_pod(pod_body("w-1", namespace="b"))
    inventory.delete_pod(pod_body("w-1", namespace="b"))

    # The tombstone expired at once: only namespace a holds a w-1 pod.
    assert inventory.pods_with_prefix_elsewhere("c", "w-1")[0].namespace == "a"
    assert len(inventory.pods_with_prefix_elsewhere("c", "w-1")) == 1
    inventory.delete_pod(pod_body("w-1", namespace="a"))
    assert inventory.pods_with_prefix_elsewhere("c", "w-1") == []


def lease(node: str, renewed: str, duration: int = 40) -> Json:
    return {
        "metadata": {"name": node},
        "spec": {"renewTime": renewed, "leaseDurationSeconds": duration},
    }


def ready_node(name: str = "n1") -> Json:
    return {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_lease_age_counts_from_when_a_new_renewal_was_first_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("lifeguard.cluster.inventory.time.monotonic", lambda: clock[0])
    inventory = Inventory()
    inventory.upsert_node(ready_node())
    inventory.observe_leases([lease("n1", "2026-11-27T09:00:00.000000Z")])
    for _ in range(6):  # listed every 5 s, not renewed
        clock[0] += 5.0
        inventory.observe_leases([lease("n1", "2026-11-27T09:00:00.000000Z")])
    node = inventory.node("n1")
    assert node is not None and node.lease_age == 30.0 and node.lease_duration == 40.0
    inventory.observe_leases([lease("n1", "2026-11-27T09:00:31.000000Z")])  # renewed
    renewed = inventory.node("n1")
    assert renewed is not None and renewed.lease_age == 0.0


def test_nodes_without_a_lease_have_no_lease_age() -> None:
    inventory = Inventory()
    inventory.upsert_node(ready_node())
    node = inventory.node("n1")
    assert node is not None and node.lease_age is None


@pytest.mark.parametrize(
    ("listed_at", "asked_at", "lease_age", "blind"),
    [
        # Listed every 5 s from 100 to 130, never renewed: 30 s of observed silence.
        ((100, 105, 110, 115, 120, 125, 130), 130, 30.0, False),
        # Asked a little after the last listing: still evidence (within three periods).
        ((100, 105, 110, 115, 120, 125, 130), 140, 40.0, False),
        # No listing for 20 s (the apiserver is down): no age at all, the view is blind.
        ((100, 105, 110, 115, 120, 125, 130), 150, None, True),
        # Listing again after a 60 s gap: the silence during the gap is no evidence.
        ((100, 105, 110, 170), 170, 0.0, False),
        ((100, 105, 110, 170, 175, 180), 180, 10.0, False),
    ],
)
def test_lease_ages_are_evidence_only_while_the_operator_could_see_them(
    monkeypatch: pytest.MonkeyPatch,
    listed_at: tuple[float, ...],
    asked_at: float,
    lease_age: float | None,
    blind: bool,
) -> None:
    clock = [0.0]
    monkeypatch.setattr("lifeguard.cluster.inventory.time.monotonic", lambda: clock[0])
    inventory = Inventory()
    inventory.upsert_node(ready_node())
    for at in listed_at:
        clock[0] = at
        inventory.observe_leases([lease("n1", "2026-11-27T09:00:00.000000Z")])
    clock[0] = asked_at
    node = inventory.node("n1")
    assert node is not None and node.lease_age == lease_age
    assert inventory.leases_blind() is blind


def test_a_view_never_listed_is_not_blind_and_has_no_lease_age() -> None:
    inventory = Inventory()
    inventory.upsert_node(ready_node())
    assert not inventory.leases_blind() and inventory.lease_view_age() is None


# -- the worker's container, native sidecars and owner Jobs --------------------------------
def with_containers(body: Json, names: list[str], annotation: str | None = None) -> Json:
    body["spec"]["containers"] = [{"name": name} for name in names]
    if annotation is not None:
        body["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": annotation}
    return body


@pytest.mark.parametrize(
    ("names", "annotation", "default"),
    [
        (["worker"], None, "worker"),
        (["worker"], "proxy", "worker"),
        (["proxy", "worker"], "worker", "worker"),
        (["proxy", "worker"], None, "proxy"),
        (["proxy", "worker"], "missing", "proxy"),
        ([], None, None),
    ],
    ids=[
        "the_only_container",
        "the_only_container_whatever_the_annotation",
        "the_annotated_container",
        "else_the_first",
        "the_first_when_the_annotation_names_no_container",
        "none_without_containers",
    ],
)
def test_default_container_is_the_only_else_the_annotated_else_the_first(
    names: list[str], annotation: str | None, default: str | None
) -> None:
    facts = pod_facts(with_containers(pod_body("w"), names, annotation))
    assert facts.default_container == default


def test_native_sidecars_are_read_from_init_container_statuses() -> None:
    body = pod_body("w")
    body["spec"]["initContainers"] = [
        {"name": "migrate"},
        {"name": "proxy", "restartPolicy": "Always"},
    ]
    body["status"]["initContainerStatuses"] = [
        {"name": "migrate", "state": {"terminated": {"exitCode": 0}}},
        {
            "name": "proxy",
            "restartCount": 2,
            "state": {"running": {"startedAt": "2026-11-27T08:00:05Z"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-27T08:00:04Z"}},
        },
    ]
    facts = pod_facts(body)
    assert [(c.name, c.sidecar) for c in facts.containers] == [
        ("worker", False),
        ("proxy", True),
    ]
    assert facts.containers[1].restart_count == 2


def test_a_pods_controller_job_is_its_owner_job() -> None:
    body = pod_body("mailer-x7k2p")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "controller": False},
        {"apiVersion": "batch/v1", "kind": "Job", "name": "mailer", "controller": True},
    ]
    assert pod_facts(body).owner_job == "mailer"
    assert pod_facts(pod_body("w")).owner_job is None


def job_body(name: str = "mailer", **spec: Any) -> Json:
    return {
        "metadata": {"name": name, "namespace": "jobs", "uid": f"uid-{name}"},
        "spec": spec,
        "status": {},
    }


def test_job_facts_read_suspension_deadline_failure_and_disruption_policy() -> None:
    body = job_body(
        suspend=True,
        activeDeadlineSeconds=30,
        backoffLimit=2,
        podFailurePolicy={
            "rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
    )
    body["status"]["conditions"] = [
        {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded"},
    ]
    facts = job_facts(body)
    assert facts.suspended and facts.ignores_disruptions
    assert (facts.active_deadline_seconds, facts.backoff_limit) == (30, 2)
    assert facts.failed_reason == "DeadlineExceeded"
    plain = job_facts(job_body())
    assert not plain.suspended and not plain.ignores_disruptions
    assert plain.failed_reason is None


def test_deleted_jobs_are_remembered_as_gone() -> None:
    inventory = Inventory()
    inventory.upsert_job(job_body())
    assert inventory.job("jobs", "mailer") is not None
    inventory.delete_job(job_body())
    gone = inventory.job("jobs", "mailer")
    assert gone is not None and gone.gone
    assert inventory.job("jobs", None) is None
    assert inventory.job("other", "mailer") is None


@pytest.mark.parametrize(
    ("scope", "vanished"),
    [
        # A listing of every namespace: a pod of any namespace it lacks was deleted unseen.
        (None, [("jobs", "w-2"), ("other", "w-3")]),
        # A listing of one namespace says nothing about the pods of another.
        ("jobs", [("jobs", "w-2")]),
        ("other", [("other", "w-3")]),
    ],
)
def test_pods_a_new_listing_lacks_have_vanished_as_gone(
    scope: str | None, vanished: list[tuple[str, str]]
) -> None:
    inventory = Inventory()
    for namespace, name in [("jobs", "w-1"), ("jobs", "w-2"), ("other", "w-3")]:
        inventory.upsert_pod(pod_body(name, namespace=namespace))
    gone = inventory.vanished_pods(scope, listed={("jobs", "w-1")})
    assert sorted((p.namespace, p.name) for p in gone) == vanished
    assert all(p.gone for p in gone)
    for pod in gone:
        inventory.drop_pod(pod)
    # Dropped as deletions are (tombstones); the others stay live.
    for key in [("jobs", "w-1"), ("jobs", "w-2"), ("other", "w-3")]:
        found = inventory.pod(*key)
        assert found is not None and found.gone == (key in vanished)
    assert len(inventory) == 3 - len(vanished)


def test_jobs_a_new_listing_lacks_have_vanished_as_gone() -> None:
    inventory = Inventory()
    inventory.upsert_job(job_body("mailer"))
    inventory.upsert_job(job_body("report"))
    [gone] = inventory.vanished_jobs("jobs", listed={("jobs", "mailer")})
    assert (gone.name, gone.gone) == ("report", True)
    inventory.drop_job(gone)
    dropped = inventory.job("jobs", "report")
    assert dropped is not None and dropped.gone
    assert inventory.vanished_jobs("other", listed=set()) == []
