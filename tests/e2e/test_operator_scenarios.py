"""The operator end to end: real pods dying in real ways, real River jobs, real decisions.

Each test tells one story from the verdict table and checks the River row, the verdict in the
policy's status, the Event, and that nothing else was touched. Timings are seconds, not the
production defaults: heartbeats every second, stale after three missed beats.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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

pytestmark = pytest.mark.e2e

RiverDatabase = Callable[..., str]
Json = dict[str, Any]
MAIN, DRY, BREAKER, META, OUTAGE = "lg-main", "lg-dry", "lg-breaker", "lg-meta", "lg-outage"
POLICY = "workers"


@pytest.fixture(scope="module")
def crd(control_plane: ControlPlane) -> None:
    install_crd(control_plane)


@pytest.fixture(scope="module")
def main(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    crd: None,
) -> Iterator[Scenario]:
    dsn = river_database()
    migrate_heartbeats(dsn)
    world = new_world(control_plane, kube, MAIN, dsn, worker_binary)
    world.apply_policy(POLICY, fast_policy_spec())
    yield world
    world.cleanup()


@pytest.fixture(scope="module")
def operator(
    state_dir: Path,
    control_plane: ControlPlane,
    crd: None,
    node_agents: list[NodeAgentHandle],
) -> Iterator[OperatorProcess]:
    process = start_operator(
        state_dir,
        control_plane.kubeconfig,
        namespaces=[MAIN, DRY, BREAKER, META, OUTAGE],
    )
    yield process
    process.stop()


@pytest.fixture
def lg(main: Scenario, operator: OperatorProcess) -> Scenario:
    """The main namespace with the operator watching it, Ready."""
    main.wait_condition(POLICY, "Ready", "True", timeout=60)
    return main


# -- 1. healthy -----------------------------------------------------------------------------
def test_healthy_long_job_with_fresh_beats_is_never_touched(lg: Scenario) -> None:
    lg.worker_pod("healthy-w", "healthy")
    job = lg.enqueue("sleep", {"seconds": 16}, queue="healthy")
    lg.wait_job(job, "running", timeout=30)

    # Well past staleAfter (3 s) and startupGrace (8 s): still running, still untouched.
    time.sleep(12)
    row = lg.job(job)
    assert row["state"] == "running"
    assert untouched(row)

    done = lg.wait_job(job, "completed", timeout=30)
    assert done["attempt"] == 1
    assert untouched(done)
    assert not [e for e in lg.events() if f"job {job} " in e["message"]]


# -- 2. OOM ---------------------------------------------------------------------------------
def test_oom_killed_worker_is_resource_exhausted_retried_counting_the_attempt(
    lg: Scenario,
) -> None:
    lg.worker_pod("oom-w", "oom", memory="96Mi")
    job = lg.enqueue("eat", {"mb_per_step": 16, "step_ms": 100}, queue="oom")

    retried = wait_for(lambda: lifeguard_errors(row := lg.job(job)) and row, 60, "a retry")
    errors = lifeguard_errors(retried)
    assert errors[0].startswith("lifeguard: ResourceExhausted/OOMKilled"), errors
    assert "oom-w" in errors[0]
    # Counted: River's attempt stays where the OOM left it.
    assert retried["attempt"] == 1
    assert "lifeguard:infra_retries" not in (retried["metadata"] or {})

    lg.worker_pod("oom-tame", "oom", env={"WORKER_TAME": "true"})
    done = lg.wait_job(job, "completed", timeout=60)
    assert done["attempt"] == 2
    assert done["attempted_by"][-1].startswith("oom-tame_")
    lg.wait_event("JobRetried", containing=f"job {job} ")
    status = lg.policy(POLICY)["status"]
    assert any(
        a["jobId"] == job and a["cause"] == "ResourceExhausted" and a["applied"]
        for a in status["recentActions"]
    )


# -- 3. pod deleted -------------------------------------------------------------------------
def test_deleted_pod_is_infrastructure_death_retried_at_once_with_the_attempt_refunded(
    lg: Scenario,
) -> None:
    lg.worker_pod("gone-w", "gone")
    job = lg.enqueue("sleep", {"seconds": 300}, queue="gone")
    lg.wait_job(job, "running", timeout=30)
    time.sleep(1.5)

    deleted_at = time.monotonic()
    lg.delete_pod("gone-w", grace=0)
    retried = lg.wait_job(job, ("retryable", "available"), timeout=30)
    took = time.monotonic() - deleted_at

    errors = lifeguard_errors(retried)
    assert len(errors) == 1 and errors[0].startswith("lifeguard: InfrastructureDeath/"), errors
    assert retried["attempt"] == 0, "the attempt is refunded"
    assert retried["metadata"]["lifeguard:infra_retries"] == 1
    print(f"pod deletion to retryable: {took:.2f}s")

    lg.enqueue("sleep", {"seconds": 0.1}, queue="gone")  # a second job: the new pod is busy-ish
    lg.worker_pod("gone-w2", "gone")
    done = lg.wait_job(job, ("running", "completed"), timeout=60)
    assert done["attempt"] == 1
    assert done["attempted_by"][-1].startswith("gone-w2_")
    lg.wait_event("JobRetried", containing=f"job {job} ")


# -- 5. frozen ------------------------------------------------------------------------------
def test_frozen_process_is_unresponsive_its_pod_restarted_and_the_job_retried(
    lg: Scenario,
) -> None:
    lg.worker_pod("frozen-w", "frozen", grace_seconds=2)
    job = lg.enqueue("freeze", queue="frozen")
    lg.wait_job(job, "running", timeout=30)

    lg.wait_event("PodRestarted", timeout=60, containing=f"job {job} ")
    lg.wait_event("PodRestarted", kind="Pod", timeout=10)
    wait_for(lambda: lg.pod("frozen-w") is None, 60, "the frozen pod to be gone")
    retried = lg.wait_job(job, ("retryable", "available"), timeout=60)
    # The eviction was Lifeguard's own: the story keeps the cause it acted on, not "Evicted".
    errors = lifeguard_errors(retried)
    assert len(errors) == 1, errors
    assert errors[0].startswith("lifeguard: Unresponsive/"), errors
    assert "Lifeguard restarted pod frozen-w" in errors[0], errors
    # The unresponsive rule counts the attempt (no refund, unlike an eviction by others).
    assert retried["attempt"] == 1
    assert "lifeguard:infra_retries" not in (retried["metadata"] or {})
    retried_event = lg.wait_event("JobRetried", containing=f"job {job} ")
    assert "Unresponsive" in retried_event["message"], retried_event["message"]
    assert "Lifeguard restarted pod frozen-w" in retried_event["message"]

    lg.worker_pod("frozen-tame", "frozen", env={"WORKER_TAME": "true"})
    lg.wait_job(job, "completed", timeout=60)


# -- 6. stuck -------------------------------------------------------------------------------
def test_stuck_logic_with_fresh_beats_is_cancelled_through_river(lg: Scenario) -> None:
    lg.worker_pod("stuck-w", "stuck")
    job = lg.enqueue("stall", {"progress_for_seconds": 1}, queue="stuck")

    cancelled = lg.wait_job(job, "cancelled", timeout=60)
    assert "cancel_attempted_at" in cancelled["metadata"]
    lg.wait_event("JobCancelled", containing=f"job {job} ")
    pod = lg.pod("stuck-w")
    assert pod is not None and pod["status"]["phase"] == "Running", "no restart was needed"


def test_stuck_job_deaf_to_cancellation_escalates_to_a_pod_restart(lg: Scenario) -> None:
    lg.worker_pod("deaf-w", "stuck", grace_seconds=2)
    job = lg.enqueue("stall", {"progress_for_seconds": 1, "ignore_cancel": True}, queue="stuck")

    lg.wait_event("JobCancelled", timeout=60, containing=f"job {job} ")
    lg.wait_event("PodRestarted", timeout=60, containing=f"job {job} ")
    final = lg.wait_job(job, ("cancelled", "retryable", "discarded"), timeout=60)
    assert final["state"] == "cancelled", "a job whose cancel was requested is never retried"


# -- 7. crash -------------------------------------------------------------------------------
def test_application_crash_is_retried_with_rivers_backoff_counting_the_attempt(
    lg: Scenario,
) -> None:
    lg.worker_pod("crash-w", "crash")
    job = lg.enqueue("crash", {"exit_code": 3}, queue="crash")

    retried = wait_for(lambda: lifeguard_errors(row := lg.job(job)) and row, 60, "a retry")
    errors = lifeguard_errors(retried)
    assert errors[0].startswith("lifeguard: ApplicationCrash/"), errors
    assert retried["state"] in ("retryable", "available")
    assert retried["attempt"] == 1
    # River's backoff: (0 errors + 1)^4 = 1 s, ±10 %, after the retry was written.
    assert retried["scheduled_at"] is not None

    lg.worker_pod("crash-tame", "crash", env={"WORKER_TAME": "true"})
    done = lg.wait_job(job, "completed", timeout=60)
    assert done["attempt"] == 2


# -- 12. a broken policy beside a working one ----------------------------------------------
def test_missing_secret_and_bad_dsn_show_in_conditions_and_leave_other_policies_alone(
    lg: Scenario,
) -> None:
    lg.apply_policy("no-secret", fast_policy_spec(secret="does-not-exist"))
    lg.create_secret("nowhere", "postgresql://postgres@127.0.0.1:1/river?connect_timeout=1")
    lg.apply_policy("bad-dsn", fast_policy_spec(secret="nowhere"))

    bad_pattern = fast_policy_spec()
    bad_pattern["workers"]["clientIdPattern"] = "(?P<pod>[a-z"  # CEL cannot compile regexes
    lg.apply_policy("bad-pattern", bad_pattern)

    invalid = lg.wait_condition("bad-pattern", "Ready", "False", reason="InvalidSpec")
    assert "spec.workers.clientIdPattern" in invalid["message"]
    missing = lg.wait_condition("no-secret", "Ready", "False", reason="SecretNotFound")
    assert "does-not-exist" in missing["message"]
    assert "spec.database.secretRef" in missing["message"]
    unreachable = lg.wait_condition("bad-dsn", "DatabaseConnected", "False", timeout=60)
    assert "127.0.0.1" in unreachable["message"]
    lg.wait_event("DatabaseUnreachable")

    # The main policy keeps working.
    assert lg.condition(POLICY, "Ready")["status"] == "True"
    lg.worker_pod("side-w", "side")
    job = lg.enqueue("sleep", {"seconds": 60}, queue="side")
    lg.wait_job(job, "running", timeout=30)
    lg.delete_pod("side-w", grace=0)
    lg.wait_job(job, ("retryable", "available"), timeout=30)
    for name in ("no-secret", "bad-dsn", "bad-pattern"):
        lg.plane.kubectl("delete", "jp", name, "-n", lg.namespace)


# -- 14. explain ----------------------------------------------------------------------------
def test_explain_shows_the_verdicts_of_a_mixed_set_of_jobs(
    lg: Scenario, control_plane: ControlPlane
) -> None:
    lg.worker_pod("explain-w", "explain")
    healthy = lg.enqueue("sleep", {"seconds": 60}, queue="explain")
    lg.wait_job(healthy, "running", timeout=30)
    time.sleep(2)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lifeguard.cli",
            "explain",
            POLICY,
            "-n",
            lg.namespace,
            "-o",
            "json",
        ],
        env={"KUBECONFIG": str(control_plane.kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["jobId"]: row for row in json.loads(done.stdout)["jobs"]}
    assert rows[healthy]["cause"] == "Healthy"
    assert rows[healthy]["pod"] == "explain-w"
    assert rows[healthy]["node"] in ("node-1", "node-2")
    assert rows[healthy]["nextAction"] == "-"

    table = subprocess.run(
        [sys.executable, "-m", "lifeguard.cli", "explain", POLICY, "-n", lg.namespace],
        env={"KUBECONFIG": str(control_plane.kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert table.returncode == 0, table.stderr
    assert "VERDICT" in table.stdout and "Healthy/" in table.stdout
    lg.delete_pod("explain-w", grace=0)


# -- 8. DryRun ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dry(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    operator: OperatorProcess,
) -> Iterator[Scenario]:
    dsn = river_database()
    migrate_heartbeats(dsn)
    world = new_world(control_plane, kube, DRY, dsn, worker_binary)
    world.apply_policy(POLICY, fast_policy_spec(safety={"mode": "DryRun"}))
    world.wait_condition(POLICY, "Ready", "True")
    yield world
    world.cleanup()


def test_dry_run_reports_the_verdict_and_leaves_the_database_untouched(dry: Scenario) -> None:
    dry.worker_pod("dry-w", "dry")
    job = dry.enqueue("sleep", {"seconds": 300}, queue="dry")
    dry.wait_job(job, "running", timeout=30)
    dry.delete_pod("dry-w", grace=0)

    event = dry.wait_event("DryRunJobRetried", containing=f"job {job} ")
    assert "InfrastructureDeath" in event["message"]
    wait_for(
        lambda: (dry.policy(POLICY).get("status") or {}).get("jobs", {}).get("infrastructureDeath"),
        30,
        "the verdict in status",
    )
    status = dry.policy(POLICY)["status"]
    decided = [a for a in status["recentActions"] if a["jobId"] == job]
    assert decided and not any(a["applied"] for a in decided)
    row = dry.job(job)
    assert row["state"] == "running"
    assert untouched(row)
    assert "cancel_attempted_at" not in (row["metadata"] or {})


# -- report ---------------------------------------------------------------------------------
def test_metrics_count_verdicts_and_actions_without_job_or_pod_labels(
    lg: Scenario, operator: OperatorProcess
) -> None:
    lg.worker_pod("metrics-w", "metrics")
    job = lg.enqueue("sleep", {"seconds": 300}, queue="metrics")
    lg.wait_job(job, "running", timeout=30)
    lg.delete_pod("metrics-w", grace=0)
    lg.wait_job(job, ("retryable", "available"), timeout=30)

    text = operator.metrics()
    samples = [line for line in text.splitlines() if line.startswith("lifeguard_")]
    applied = [
        s for s in samples if s.startswith("lifeguard_actions_total{") and 'result="applied"' in s
    ]
    assert any('cause="InfrastructureDeath"' in s and 'action="Retry"' in s for s in applied)
    assert any(s.startswith("lifeguard_verdicts_total{") for s in samples)
    assert any(s.startswith("lifeguard_rescue_seconds_count{") for s in samples)
    assert any(s.startswith("lifeguard_scan_duration_seconds_count{") for s in samples)
    assert any(
        s.startswith('lifeguard_running_jobs{cause="Healthy"')
        or ("lifeguard_running_jobs{" in s and 'cause="Healthy"' in s)
        for s in samples
    )
    assert not [s for s in samples if "job_id" in s or "pod=" in s]


def test_users_pods_get_no_annotations_or_finalizers_from_the_operator(lg: Scenario) -> None:
    lg.worker_pod("plain-w", "plain")
    time.sleep(3)  # a few scans and watch events
    pod = lg.pod("plain-w")
    assert pod is not None
    metadata = pod["metadata"]
    assert not metadata.get("finalizers")
    annotations = metadata.get("annotations") or {}
    assert not [k for k in annotations if "kopf" in k or "lifeguard" in k]
    lg.delete_pod("plain-w", grace=0)
