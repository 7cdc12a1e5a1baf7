"""A deleted JobPolicy stops at once: deleting a policy is how a user stops Lifeguard during an
incident, so after the deletion nothing is scanned, restarted, retried or announced for it —
whether the operator saw the deletion or was down when it happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.scenario import (
    Scenario,
    fast_policy_spec,
    install_crd,
    migrate_heartbeats,
    new_world,
)
from devenv.waiting import wait_for

pytestmark = pytest.mark.e2e

RiverDatabase = Callable[..., str]
LIVE, OFFLINE, CONTROL, DOOMED = "del-live", "del-offline", "del-control", "del-doomed"
POLICY = "workers"
# Longer than the stuck rule's escalation (6 s) and a few scans (1 s).
QUIET_SECONDS = 12.0


@pytest.fixture(scope="module")
def namespaces(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    node_agents: list[NodeAgentHandle],
) -> Iterator[dict[str, Scenario]]:
    install_crd(control_plane)
    worlds = {}
    for namespace in (LIVE, OFFLINE, CONTROL, DOOMED):
        dsn = river_database()
        migrate_heartbeats(dsn)
        worlds[namespace] = new_world(control_plane, kube, namespace, dsn, worker_binary)
    yield worlds
    for world in worlds.values():
        world.cleanup()


def start(state_dir: Path, plane: ControlPlane, name: str) -> OperatorProcess:
    return start_operator(
        state_dir, plane.kubeconfig, name=name, namespaces=[LIVE, OFFLINE, CONTROL, DOOMED]
    )


def deaf_stuck_job(world: Scenario, pod: str) -> int:
    """A job whose logic stalls and ignores cancellation: the policy cancels it at once and
    restarts its pod 6 s later (the escalation)."""
    world.worker_pod(pod, "stuck", grace_seconds=2)
    return world.enqueue("stall", {"progress_for_seconds": 1, "ignore_cancel": True}, queue="stuck")


def assert_left_alone(world: Scenario, pod: str, pod_uid: str, job: int) -> None:
    row = world.job(job)
    assert row["state"] == "running", row
    current = world.pod(pod)
    assert current is not None and current["metadata"]["uid"] == pod_uid, "the pod was restarted"
    assert not world.events("PodRestarted") and not world.events("PodRestarted", kind="Pod")


def test_a_policy_deleted_mid_escalation_acts_no_more(
    state_dir: Path, control_plane: ControlPlane, namespaces: dict[str, Scenario]
) -> None:
    world = namespaces[LIVE]
    operator = start(state_dir, control_plane, "operator-del-live")
    try:
        world.apply_policy(POLICY, fast_policy_spec())
        world.wait_condition(POLICY, "Ready", "True", timeout=60)
        job = deaf_stuck_job(world, "deaf-live")
        world.wait_event("JobCancelled", timeout=60, containing=f"job {job} ")
        pod = world.pod("deaf-live")
        assert pod is not None
        # The escalation (RestartPod) is due 6 s after the cancel: delete the policy first.
        control_plane.kubectl("delete", "jobpolicy", POLICY, "-n", LIVE, "--wait=true")
        deleted_at = time.monotonic()
        wait_for(
            lambda: "stopped" in operator.log_text() or None, 10, "the operator to stop the policy"
        )
        time.sleep(max(0.0, QUIET_SECONDS - (time.monotonic() - deleted_at)))
        assert_left_alone(world, "deaf-live", pod["metadata"]["uid"], job)
        assert world.job(job)["metadata"].get("lifeguard:cancels") == 1
    finally:
        operator.stop()


def test_a_policy_deleted_while_the_operator_is_down_never_acts(
    state_dir: Path, control_plane: ControlPlane, namespaces: dict[str, Scenario]
) -> None:
    world, control = namespaces[OFFLINE], namespaces[CONTROL]
    operator = start(state_dir, control_plane, "operator-del-offline-1")
    try:
        world.apply_policy(POLICY, fast_policy_spec())
        control.apply_policy(POLICY, fast_policy_spec())
        world.wait_condition(POLICY, "Ready", "True", timeout=60)
        control.wait_condition(POLICY, "Ready", "True", timeout=60)
    finally:
        operator.stop()

    # While the operator is down: the policy goes, and a job it would act on appears.
    control_plane.kubectl("delete", "jobpolicy", POLICY, "-n", OFFLINE, "--wait=true")
    job = deaf_stuck_job(world, "deaf-offline")
    world.wait_job(job, "running", timeout=60)
    pod = world.pod("deaf-offline")
    assert pod is not None

    operator = start(state_dir, control_plane, "operator-del-offline-2")
    try:
        # The same case under a live policy is acted on: the operator is up and judging.
        control_job = deaf_stuck_job(control, "deaf-control")
        control.wait_event("JobCancelled", timeout=60, containing=f"job {control_job} ")
        time.sleep(QUIET_SECONDS)
        assert_left_alone(world, "deaf-offline", pod["metadata"]["uid"], job)
        assert "lifeguard:cancels" not in world.job(job)["metadata"]
        assert not world.events("JobCancelled")
    finally:
        operator.stop()


def test_a_policy_whose_namespace_is_deleted_stops_with_it(
    state_dir: Path, control_plane: ControlPlane, namespaces: dict[str, Scenario]
) -> None:
    world = namespaces[DOOMED]
    operator = start(state_dir, control_plane, "operator-del-namespace")
    try:
        world.apply_policy(POLICY, fast_policy_spec())
        world.wait_condition(POLICY, "Ready", "True", timeout=60)
        job = deaf_stuck_job(world, "deaf-doomed")
        world.wait_event("JobCancelled", timeout=60, containing=f"job {job} ")
        control_plane.kubectl("delete", "namespace", DOOMED, "--wait=false")
        stopped = f"policy {DOOMED}/{POLICY}: stopped"
        wait_for(
            lambda: stopped in operator.log_text() or None,
            60,
            "the operator to stop the policy of the deleted namespace",
        )
        log = operator.log_text()
        stopped_at = log.index(stopped) + len(stopped)
        time.sleep(QUIET_SECONDS)
        later = operator.log_text()[stopped_at:]
        assert f"policy {DOOMED}/{POLICY}:" not in later, later
        assert world.job(job)["metadata"].get("lifeguard:cancels") == 1
    finally:
        operator.stop()
