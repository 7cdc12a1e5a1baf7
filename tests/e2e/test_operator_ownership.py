"""Many policies, one database: every job is judged by exactly one policy.

Three namespaces' catch-all policies share one River database, so each scans every running
job; a worker frozen in one namespace is judged and acted on by that namespace's policy only.
Two overlapping policies of one namespace: the older one judges the job, the younger reports
that it overlaps; one verdict, one action.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.river import RiverDatabase
from devenv.scenario import (
    Scenario,
    fast_policy_spec,
    install_crd,
    lifeguard_errors,
    migrate_heartbeats,
    new_world,
    wait_for,
)

pytestmark = pytest.mark.e2e

TEAMS = ("lg-own-a", "lg-own-b", "lg-own-c")
OVERLAP = "lg-own-overlap"
POLICY = "workers"


@pytest.fixture(scope="module")
def dsn(river_database: RiverDatabase) -> str:
    url = river_database()
    migrate_heartbeats(url)
    return url


@pytest.fixture(scope="module")
def teams(
    control_plane: ControlPlane,
    kube: KubeClient,
    dsn: str,
    worker_binary: Path,
) -> Iterator[list[Scenario]]:
    install_crd(control_plane)
    worlds = [new_world(control_plane, kube, ns, dsn, worker_binary) for ns in TEAMS]
    for world in worlds:
        # No selector: each policy's scan returns every running job of the database.
        world.apply_policy(POLICY, fast_policy_spec())
    yield worlds
    for world in worlds:
        world.cleanup()


@pytest.fixture(scope="module")
def overlap(
    control_plane: ControlPlane, kube: KubeClient, dsn: str, worker_binary: Path
) -> Iterator[Scenario]:
    install_crd(control_plane)
    world = new_world(control_plane, kube, OVERLAP, dsn, worker_binary)
    world.apply_policy("catch-all", fast_policy_spec())
    time.sleep(1.1)  # creation timestamps have whole seconds: make the order plain
    world.apply_policy("tiered", fast_policy_spec(selector={"queues": ["overlap"]}))
    yield world
    world.cleanup()


@pytest.fixture(scope="module")
def operator(
    state_dir: Path,
    control_plane: ControlPlane,
    teams: list[Scenario],
    overlap: Scenario,
    node_agents: list[NodeAgentHandle],
) -> Iterator[OperatorProcess]:
    process = start_operator(
        state_dir, control_plane.kubeconfig, namespaces=[*TEAMS, OVERLAP], name="op-ownership"
    )
    yield process
    process.stop()


def running_count(world: Scenario, policy: str) -> int | None:
    jobs = (world.policy(policy).get("status") or {}).get("jobs") or {}
    running = jobs.get("running")
    return int(running) if running is not None else None


def mentions(world: Scenario, job: int) -> list[str]:
    return [e["reason"] for e in world.events() if f"job {job} " in e["message"]]


def test_a_frozen_worker_is_judged_by_its_own_namespaces_policy_only(
    teams: list[Scenario], operator: OperatorProcess
) -> None:
    home, *others = teams
    for world in teams:
        world.wait_condition(POLICY, "Ready", "True", timeout=60)
    home.worker_pod("frozen-own", "own-frozen", grace_seconds=2)
    job = home.enqueue("freeze", queue="own-frozen")
    home.wait_job(job, "running", timeout=30)

    # While the job runs (and its beats go stale), only its namespace's policy counts it.
    wait_for(lambda: running_count(home, POLICY) == 1, 30, "the home policy to count the job")
    for world in others:
        assert running_count(world, POLICY) == 0

    home.wait_event("PodRestarted", timeout=60, containing=f"job {job} ")
    retried = home.wait_job(job, ("retryable", "available"), timeout=60)
    errors = lifeguard_errors(retried)
    assert len(errors) == 1, errors
    assert errors[0].startswith("lifeguard: Unresponsive/BeatStale: pod frozen-own "), errors
    for world in others:
        assert mentions(world, job) == []
        assert running_count(world, POLICY) == 0
        status = world.policy(POLICY).get("status") or {}
        assert not [a for a in status.get("recentActions") or [] if a["jobId"] == job]


def test_two_overlapping_policies_give_one_verdict_and_one_action(
    overlap: Scenario, operator: OperatorProcess
) -> None:
    overlap.wait_condition("catch-all", "Ready", "True", timeout=60)
    overlap.worker_pod("overlap-w", "overlap")
    job = overlap.enqueue("sleep", {"seconds": 300}, queue="overlap")
    overlap.wait_job(job, "running", timeout=30)

    found = overlap.wait_condition("tiered", "Overlapping", "True", timeout=30)
    assert f"{OVERLAP}/catch-all" in found["message"]
    assert "1 running job" in found["message"]
    assert running_count(overlap, "tiered") == 0
    wait_for(lambda: running_count(overlap, "catch-all") == 1, 30, "the older policy to count it")

    overlap.delete_pod("overlap-w")
    retried = overlap.wait_job(job, ("retryable", "available"), timeout=60)
    assert len(lifeguard_errors(retried)) == 1
    overlap.wait_event("JobRetried", containing=f"job {job} ")
    time.sleep(3)  # a few more scans of both policies
    retries = [e for e in overlap.events("JobRetried") if f"job {job} " in e["message"]]
    assert [e["involvedObject"]["name"] for e in retries] == ["catch-all"]
    announced = overlap.events("PoliciesOverlap")
    assert len(announced) == 1 and announced[0].get("count", 1) == 1, announced
    assert announced[0]["involvedObject"]["name"] == "tiered"
    tiered = overlap.policy("tiered").get("status") or {}
    assert not tiered.get("recentActions")
