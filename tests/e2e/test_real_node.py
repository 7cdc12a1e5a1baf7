"""The user's path, on a real node: `helm install` → the operator's image → a real kubelet.

One environment for the module: a PostgreSQL cluster that also serves its unix socket, the
session's control plane, a real node (kubelet, containerd, runc, CNI, all built from their Go
modules; images built with buildah), and the operator installed by Helm from its own image into
a namespace that enforces the restricted Pod Security Standard. Every container status the
operator reads here (OOMKilled, exit codes, restarts, graceful termination, eviction) comes
from the real kubelet; every signal is sent to a real container process from the host.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv import realnode
from devenv.controlplane import ControlPlane
from devenv.realnode_relay import container_pids
from devenv.realnode_world import SIDECAR, RealScenario, real_world
from devenv.scenario import WORKER_LABELS, fast_policy_spec, lifeguard_errors, untouched, wait_for
from devenv.shapes import restarts

pytestmark = pytest.mark.e2e

RELEASE, RELEASE_NS, WATCHED, POLICY = "lg-real", "lg-real-system", "lg-real-jobs", "workers"


@pytest.fixture(scope="module")
def real(
    state_dir: Path, control_plane: ControlPlane, worker_binary: Path
) -> Iterator[RealScenario]:
    with real_world(
        state_dir / "realnode-env",
        control_plane,
        worker_binary,
        release=RELEASE,
        release_namespace=RELEASE_NS,
        watched=WATCHED,
        policy=POLICY,
        # The policy names the worker's container: a sidecar listed first is not the worker.
        spec=fast_policy_spec(
            workers={"podSelector": {"matchLabels": dict(WORKER_LABELS)}, "container": "worker"}
        ),
    ) as world:
        yield world


def _signal_worker(world: RealScenario, pod: str, sig: signal.Signals) -> None:
    """Sends `sig` from the host to the worker container's processes."""
    container = world.container_id(pod)
    pids = container_pids(container)
    assert pids, f"no process of container {container} (pod {pod})"
    for pid in pids:
        os.kill(pid, sig)


def test_operator_runs_from_its_image_under_the_restricted_standard(
    real: RealScenario,
) -> None:
    pods = real.plane.kubectl_json(
        "get", "pods", "-n", RELEASE_NS, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )["items"]
    assert pods  # the chart's replicas, all admitted by the restricted standard
    assert real.node is not None
    for pod in pods:  # type: ignore[attr-defined]
        assert pod["spec"]["nodeName"] == realnode.NODE_NAME
        assert pod["spec"]["containers"][0]["image"] == real.node.images["operator"].reference
        assert not pod["spec"].get("hostNetwork")
        assert pod["status"]["containerStatuses"][0]["state"].get("running")


def test_kubectl_logs_reaches_the_kubelet_on_the_nodes_bridge_address(
    real: RealScenario,
) -> None:
    node = real.plane.kubectl_json("get", "node", realnode.NODE_NAME)
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}  # type: ignore[index]
    # The InternalIP is the environment's own bridge (set, so the kubelet never asks DNS).
    assert real.node is not None
    assert ipaddress.ip_address(addresses["InternalIP"]) in real.node.subnet
    pod = real.plane.kubectl_json(
        "get", "pods", "-n", RELEASE_NS, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )["items"][0]  # type: ignore[index]
    logs = real.plane.kubectl("logs", "-n", RELEASE_NS, pod["metadata"]["name"]).stdout
    assert "lifeguard" in logs.lower()


def test_worker_pod_hostname_is_its_name(real: RealScenario) -> None:
    real.worker_pod("hostname-w", "hostname")
    job = real.enqueue("sleep", {"seconds": 0.2}, queue="hostname")
    done = real.wait_job(job, "completed", timeout=60)
    # River's default client ID starts with the hostname: the pod's own UTS namespace.
    assert done["attempted_by"][-1].startswith("hostname-w_")
    real.delete_pod("hostname-w", grace=0)


def test_oom_kill_is_resource_exhausted_retried_counting_the_attempt(real: RealScenario) -> None:
    real.worker_pod("oom-w", "oom", memory="96Mi")
    job = real.enqueue("eat", {"mb_per_step": 16, "step_ms": 100}, queue="oom")

    retried = wait_for(lambda: lifeguard_errors(row := real.job(job)) and row, 90, "a retry")
    errors = lifeguard_errors(retried)
    assert errors[0].startswith("lifeguard: ResourceExhausted/OOMKilled"), errors
    assert retried["attempt"] == 1
    assert "lifeguard:infra_retries" not in (retried["metadata"] or {})
    terminated = real.pod("oom-w")["status"]["containerStatuses"][0]["state"]["terminated"]  # type: ignore[index]
    assert terminated["reason"] == "OOMKilled"

    real.worker_pod("oom-tame", "oom", env={"WORKER_TAME": "true"})
    done = real.wait_job(job, "completed", timeout=60)
    assert done["attempt"] == 2


def test_worker_killed_in_an_always_restarting_pod_is_recognised_and_retried(
    real: RealScenario,
) -> None:
    real.worker_pod("kill-w", "killed", restart_policy="Always")
    job = real.enqueue("sleep", {"seconds": 300}, queue="killed")
    real.wait_running_on(job, "kill-w", timeout=60)

    _signal_worker(real, "kill-w", signal.SIGKILL)
    wait_for(lambda: real.restart_count("kill-w") >= 1, 60, "the kubelet to restart the worker")
    retried = wait_for(lambda: lifeguard_errors(row := real.job(job)) and row, 60, "a retry")
    errors = lifeguard_errors(retried)
    assert errors[0].startswith("lifeguard: InfrastructureDeath/"), errors
    assert "SIGKILL" in errors[0] or "restarted" in errors[0], errors
    real.delete_pod("kill-w", grace=0)


def test_crash_is_application_crash(real: RealScenario) -> None:
    real.worker_pod("crash-w", "crash")
    job = real.enqueue("crash", {"exit_code": 3}, queue="crash")

    retried = wait_for(lambda: lifeguard_errors(row := real.job(job)) and row, 60, "a retry")
    errors = lifeguard_errors(retried)
    assert errors[0].startswith("lifeguard: ApplicationCrash/"), errors
    assert retried["attempt"] == 1


def test_delete_with_a_grace_longer_than_the_job_completes_it_once(real: RealScenario) -> None:
    real.worker_pod("grace-w", "grace", env={"SHUTDOWN_TIMEOUT": "30s"}, grace_seconds=40)
    job = real.enqueue("sleep", {"seconds": 8}, queue="grace")
    real.wait_running_on(job, "grace-w", timeout=60)

    real.plane.kubectl("delete", "pod", "grace-w", "-n", real.namespace, "--wait=false")
    done = real.wait_job(job, "completed", timeout=60)
    assert done["attempt"] == 1
    assert not lifeguard_errors(done)
    assert done["attempted_by"][-1].startswith("grace-w_")
    wait_for(lambda: real.pod("grace-w") is None, 60, "the pod to be gone")
    time.sleep(3)  # a few scans after the pod is gone: still no retry
    assert real.job(job)["state"] == "completed"


def test_drain_evicts_and_retries_without_using_an_attempt(real: RealScenario) -> None:
    # A job longer than the pod's grace period: the worker is still waiting for it when the
    # kubelet kills the container (River's own graceful stop would otherwise hand it back).
    real.worker_pod(
        "drain-w", "drain", labels={"drain": "me"}, env={"SHUTDOWN_TIMEOUT": "60s"},
        grace_seconds=3,
    )  # fmt: skip
    job = real.enqueue("sleep", {"seconds": 300}, queue="drain")
    real.wait_running_on(job, "drain-w", timeout=60)
    try:
        real.plane.kubectl(
            # --force: the scenario's worker pods are bare pods (no controller).
            "drain", realnode.NODE_NAME, "--pod-selector=drain=me", "--force",
            "--ignore-daemonsets", "--timeout=60s", timeout=90,
        )  # fmt: skip
        retried = wait_for(lambda: lifeguard_errors(row := real.job(job)) and row, 60, "a retry")
    finally:
        real.plane.kubectl("uncordon", realnode.NODE_NAME)
    errors = lifeguard_errors(retried)
    assert errors[-1].startswith("lifeguard: InfrastructureDeath/Evicted"), errors
    assert retried["attempt"] == 0, "an eviction does not use an attempt"


def test_frozen_worker_is_unresponsive_and_its_pod_restarted_by_eviction(
    real: RealScenario,
) -> None:
    real.worker_pod("frozen-w", "frozen", grace_seconds=2)
    job = real.enqueue("sleep", {"seconds": 300}, queue="frozen")
    real.wait_running_on(job, "frozen-w", timeout=60)

    _signal_worker(real, "frozen-w", signal.SIGSTOP)
    restarted = real.wait_event("PodRestarted", timeout=60, containing=f"job {job} ")
    assert "Unresponsive" in restarted["message"], restarted["message"]
    wait_for(lambda: real.pod("frozen-w") is None, 60, "the frozen pod to be gone")
    retried = real.wait_job(job, ("retryable", "available"), timeout=60)
    # The eviction was Lifeguard's own: the real kubelet's report of the killed container and
    # the deleted pod do not turn the cause it acted on into Evicted or InfrastructureDeath.
    errors = lifeguard_errors(retried)
    assert len(errors) == 1, errors
    assert errors[0].startswith("lifeguard: Unresponsive/"), errors
    assert "Lifeguard restarted pod frozen-w" in errors[0], errors
    assert retried["attempt"] == 1, "the unresponsive rule counts the attempt"


def test_a_sidecar_and_a_native_sidecar_restarting_never_touch_the_running_job(
    real: RealScenario,
) -> None:
    # Both shapes at once (one queue each): a second container, and an init container with
    # restartPolicy Always. The real kubelet restarts each with its crash-loop back-off.
    shapes = {"sidecar-w": "sidecar", "native-w": "native"}
    for pod, queue in shapes.items():
        real.sidecar_pod(pod, queue, native=queue == "native")
    jobs = {pod: real.enqueue("sleep", {"seconds": 30}, queue=q) for pod, q in shapes.items()}

    for pod, job in jobs.items():
        done = real.wait_job(job, "completed", timeout=120)
        assert done["attempt"] == 1
        assert len(done["attempted_by"]) == 1 and done["attempted_by"][0].startswith(f"{pod}_")
        assert untouched(done), lifeguard_errors(done)
        # The story happened: the sidecar exited and the kubelet restarted it under the job ...
        assert restarts(real.pod(pod), SIDECAR) >= 2, real.pod(pod)
        assert real.restart_count(pod) == 0, "the worker container never restarted"
        # ... and Lifeguard said nothing about the job or its pod.
        blamed = [
            e["message"]
            for e in real.kube.get(f"/api/v1/namespaces/{real.namespace}/events")["items"]
            if e.get("reportingComponent") == "river-lifeguard"
            and (f"job {job} " in e["message"] or e["involvedObject"].get("name") == pod)
        ]
        assert not blamed, blamed
    native = (real.pod("native-w") or {})["status"]
    assert [s["name"] for s in native["initContainerStatuses"]] == [SIDECAR]
    for pod in shapes:
        real.delete_pod(pod, grace=0)
