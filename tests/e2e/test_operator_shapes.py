"""Production shapes end to end: sidecars next to the worker, native sidecars, and the fast
path on its own (no polling to hide behind).

Each test has a policy of its own in Enforce mode (its queue, its pods), so the stories do not
see each other's jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent_kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.scenario import (
    Scenario,
    fast_policy_spec,
    install_crd,
    lifeguard_errors,
    migrate_heartbeats,
    new_world,
    untouched,
    wait_for,
)
from devenv.shapes import flapping_sidecar, pod_with_sidecar, restarts

pytestmark = pytest.mark.e2e

Json = dict[str, Any]
NAMESPACE = "lg-shapes"


@pytest.fixture(scope="module")
def world(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: Any,
    worker_binary: Path,
) -> Iterator[Scenario]:
    install_crd(control_plane)
    dsn = river_database()
    migrate_heartbeats(dsn)
    scenario = new_world(control_plane, kube, NAMESPACE, dsn, worker_binary)
    yield scenario
    scenario.cleanup()


@pytest.fixture(scope="module")
def operator(
    state_dir: Path,
    control_plane: ControlPlane,
    world: Scenario,
    node_agents: list[NodeAgentHandle],
) -> Iterator[OperatorProcess]:
    process = start_operator(state_dir, control_plane.kubeconfig, namespaces=[NAMESPACE])
    yield process
    process.stop()


def policy_for(world: Scenario, name: str, **overrides: Any) -> dict[str, str]:
    """A policy of its own for one story: its queue (named after it) and its pods' label."""
    labels = {"shape": name}
    spec = fast_policy_spec(
        selector={"queues": [name]},
        workers={"podSelector": {"matchLabels": labels}},
        **overrides,
    )
    world.apply_policy(name, spec)
    world.wait_condition(name, "Ready", "True", timeout=60)
    return labels


def job_events(world: Scenario, job: int) -> list[Json]:
    return [e for e in world.events() if f"job {job} " in e["message"]]


# -- sidecars ---------------------------------------------------------------------------------
def test_a_sidecar_exiting_every_few_seconds_never_touches_a_healthy_job(
    world: Scenario, operator: OperatorProcess
) -> None:
    labels = policy_for(world, "sidecar")
    pod = pod_with_sidecar(world, "sidecar-w", "sidecar", labels, sidecar=flapping_sidecar())
    job = world.enqueue("sleep", {"seconds": 60}, queue="sidecar")

    done = world.wait_job(job, "completed", timeout=120)

    assert done["attempt"] == 1
    assert untouched(done), lifeguard_errors(done)
    assert not job_events(world, job)
    # The story happened: the proxy died and restarted several times under the job.
    assert restarts(world.pod(pod), "cloud-sql-proxy") >= 3


def test_a_native_sidecar_restarting_never_touches_a_healthy_job(
    world: Scenario, operator: OperatorProcess
) -> None:
    labels = policy_for(world, "native")
    pod = pod_with_sidecar(
        world,
        "native-w",
        "native",
        labels,
        sidecar=flapping_sidecar(),
        native=True,
        restart_policy="Never",
    )
    job = world.enqueue("sleep", {"seconds": 60}, queue="native")

    done = world.wait_job(job, "completed", timeout=120)

    assert done["attempt"] == 1
    assert untouched(done), lifeguard_errors(done)
    assert not job_events(world, job)
    status = (world.pod(pod) or {}).get("status") or {}
    assert [s["name"] for s in status.get("initContainerStatuses") or []] == ["cloud-sql-proxy"]
    assert restarts(world.pod(pod), "cloud-sql-proxy") >= 3


# -- the fast path ----------------------------------------------------------------------------
def test_a_deleted_pod_is_retried_within_seconds_though_the_policy_scans_every_five_minutes(
    world: Scenario, operator: OperatorProcess
) -> None:
    labels = policy_for(world, "fastpath", scanInterval="5m")
    pod_with_sidecar(world, "fastpath-w", "fastpath", labels, sidecar=flapping_sidecar(every=600))
    job = world.enqueue("sleep", {"seconds": 300}, queue="fastpath")
    world.wait_job(job, "running", timeout=30)
    time.sleep(1.5)

    deleted_at = time.monotonic()
    world.delete_pod("fastpath-w", grace=0)
    retried = world.wait_job(job, ("retryable", "available"), timeout=60)
    took = time.monotonic() - deleted_at

    # Far below the 5 minute scan interval: the pod's deletion woke the policy.
    assert took < 30, f"retried {took:.1f}s after the deletion"
    errors = lifeguard_errors(retried)
    assert len(errors) == 1 and errors[0].startswith("lifeguard: InfrastructureDeath/"), errors
    assert retried["attempt"] == 0, "the attempt is refunded"
    print(f"pod deletion to retryable with scanInterval 5m: {took:.2f}s")
    wait_for(lambda: job_events(world, job), 30, "the JobRetried Event")
