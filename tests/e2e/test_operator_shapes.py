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
from devenv.nodeagent.kube import KubeClient
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
from devenv.shapes import (
    flapping_sidecar,
    job_pods,
    pod_with_sidecar,
    restarts,
    suspend_job,
    worker_job,
)

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


# -- workers without heartbeats ---------------------------------------------------------------
NO_BEATS = {"HEARTBEAT_STORE": "none"}


def test_a_worker_without_heartbeats_is_never_touched_and_the_policy_says_why(
    world: Scenario, operator: OperatorProcess
) -> None:
    labels = policy_for(world, "nobeats")
    world.worker_pod("nobeats-w", "nobeats", env=NO_BEATS, labels=labels)
    job = world.enqueue("sleep", {"seconds": 20}, queue="nobeats")

    # Past the startup grace (8 s) without a beat: beats missing, not a frozen worker.
    missing = world.wait_condition("nobeats", "HeartbeatsMissing", "True", timeout=60)
    assert missing["reason"] == "NoBeats"
    assert "github.com/river-lifeguard/lifeguard/heartbeat" in missing["message"]
    assert "heartbeat.store: None" in missing["message"]
    world.wait_event("HeartbeatsMissing")

    done = world.wait_job(job, "completed", timeout=60)
    assert done["attempt"] == 1
    assert untouched(done), lifeguard_errors(done)
    assert world.pod("nobeats-w") is not None, "the healthy pod was not restarted"
    assert not world.events("PodRestarted", kind="Pod")


def test_a_kind_without_heartbeats_next_to_a_kind_that_beats_is_named_and_never_touched(
    world: Scenario, operator: OperatorProcess, control_plane: ControlPlane
) -> None:
    labels = {"shape": "mixed"}
    spec = fast_policy_spec(
        selector={"queues": ["mixed-beats", "mixed-silent"]},
        workers={"podSelector": {"matchLabels": labels}},
    )
    world.apply_policy("mixed", spec)
    world.wait_condition("mixed", "Ready", "True", timeout=60)
    # Kind hang runs on a worker with the middleware, kind sleep on one without.
    world.worker_pod("mixed-beats-w", "mixed-beats", labels=labels)
    world.worker_pod("mixed-silent-w", "mixed-silent", env=NO_BEATS, labels=labels)
    beating = world.enqueue("hang", queue="mixed-beats")
    silent = world.enqueue("sleep", {"seconds": 25}, queue="mixed-silent")
    try:
        missing = world.wait_condition("mixed", "HeartbeatsMissing", "True", timeout=60)
        assert missing["reason"] == "NoBeats"
        assert "sleep (1 running)" in missing["message"], missing["message"]
        assert "hang" not in missing["message"], missing["message"]
        event = world.wait_event(
            "HeartbeatsMissing",
            containing="Running jobs of this kind never beat: sleep (1 running)",
        )
        assert "hang" not in event["message"]

        done = world.wait_job(silent, "completed", timeout=60)
        assert done["attempt"] == 1
        assert untouched(done), lifeguard_errors(done)
        assert world.pod("mixed-silent-w") is not None, "the healthy pod was not restarted"
        assert world.job(beating)["state"] == "running"
        assert not [e for e in world.events("PodRestarted", kind="Pod") if "mixed" in e["message"]]
    finally:
        control_plane.kubectl("delete", "jp", "mixed", "-n", NAMESPACE, check=False)


def test_a_policy_without_beats_cancels_a_job_at_its_max_runtime(
    world: Scenario, operator: OperatorProcess
) -> None:
    labels = policy_for(world, "overdue", heartbeat={"store": "None"}, tiers=[], maxRuntime="6s")
    world.worker_pod("overdue-w", "overdue", env=NO_BEATS, labels=labels)
    job = world.enqueue("sleep", {"seconds": 120}, queue="overdue")
    started = world.wait_job(job, "running", timeout=30)

    cancelled = world.wait_job(job, "cancelled", timeout=60)
    errors = lifeguard_errors(cancelled)
    assert errors and errors[0].startswith("lifeguard: Overdue/MaxRuntimeExceeded"), errors
    assert "Lifeguard cancelled the job" in errors[0]
    ran = (cancelled["finalized_at"] - started["attempted_at"]).total_seconds()
    assert 6 <= ran < 40, f"cancelled after {ran:.1f}s"
    assert world.condition("overdue", "HeartbeatsMissing")["reason"] == "NotExpected"  # type: ignore[index]


def test_adaptive_limits_learned_from_history_judge_jobs_without_beats(
    world: Scenario,
    operator: OperatorProcess,
    river_database: Any,
) -> None:
    # A database of its own: the learned limit comes from this story's jobs only.
    history = Scenario(world.plane, world.kube, NAMESPACE, river_database(), world.worker)
    world.create_secret("river-db-adaptive", history.dsn)
    labels = {"shape": "adaptive"}
    history.worker_pod("adaptive-w", "adaptive", env=NO_BEATS, labels=labels)
    for _ in range(5):
        done = history.enqueue("sleep", {"seconds": 1}, queue="adaptive")
        history.wait_job(done, "completed", timeout=60)

    # Learned at the policy's first scan: 5 runs of ~1 s, quantile 0.9 x factor 3.
    world.apply_policy(
        "adaptive",
        fast_policy_spec(
            secret="river-db-adaptive",
            selector={"queues": ["adaptive"]},
            workers={"podSelector": {"matchLabels": labels}},
            heartbeat={"store": "None"},
            tiers=[],
            adaptive={"enabled": True, "minSamples": 5, "quantile": 0.9, "factor": 3},
        ),
    )
    world.wait_condition("adaptive", "Ready", "True", timeout=60)
    job = history.enqueue("sleep", {"seconds": 120}, queue="adaptive")

    cancelled = history.wait_job(job, "cancelled", timeout=60)
    errors = lifeguard_errors(cancelled)
    assert errors and errors[0].startswith("lifeguard: Overdue/AdaptiveLimitExceeded"), errors


# -- workers run by batch/v1 Jobs -------------------------------------------------------------
def running_job_pod(world: Scenario, job_name: str) -> str:
    def running() -> str | None:
        for found in job_pods(world, job_name):
            statuses = (found.get("status") or {}).get("containerStatuses") or []
            if statuses and (statuses[0].get("state") or {}).get("running"):
                return str(found["metadata"]["name"])
        return None

    return wait_for(running, 60, f"a running pod of Job {job_name}")


def test_a_jobs_active_deadline_is_named_deadline_exceeded(
    world: Scenario, operator: OperatorProcess
) -> None:
    labels = policy_for(world, "deadline")
    worker_job(world, "deadline-mailer", "deadline", labels, active_deadline=20)
    pod = running_job_pod(world, "deadline-mailer")
    job = world.enqueue("sleep", {"seconds": 300}, queue="deadline")
    world.wait_running_on(job, pod, timeout=30)

    retried = world.wait_job(job, ("retryable", "available"), timeout=90)
    errors = lifeguard_errors(retried)
    assert len(errors) == 1, errors
    assert errors[0].startswith("lifeguard: InfrastructureDeath/DeadlineExceeded"), errors
    assert "Job deadline-mailer ran past activeDeadlineSeconds (20s)" in errors[0]


def test_a_suspended_job_is_preempted_and_retried_without_using_an_attempt(
    world: Scenario, operator: OperatorProcess
) -> None:
    labels = policy_for(world, "kueue")
    worker_job(world, "kueue-mailer", "kueue", labels)
    pod = running_job_pod(world, "kueue-mailer")
    job = world.enqueue("sleep", {"seconds": 300}, queue="kueue")
    world.wait_running_on(job, pod, timeout=30)
    time.sleep(1.5)

    suspend_job(world, "kueue-mailer")
    retried = world.wait_job(job, ("retryable", "available"), timeout=90)
    errors = lifeguard_errors(retried)
    assert len(errors) == 1, errors
    assert errors[0].startswith("lifeguard: InfrastructureDeath/Preempted"), errors
    assert "Job kueue-mailer was suspended" in errors[0]
    assert retried["attempt"] == 0, "a preemption does not use an attempt"
    assert retried["metadata"]["lifeguard:infra_retries"] == 1
