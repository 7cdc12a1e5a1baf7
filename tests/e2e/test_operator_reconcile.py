"""The operator's one reconcile, end to end: `lifeguard explain` predicts what the operator
does, and an eviction never touches a pod that took the name of the one decided on.

Real control plane, node agents, PostgreSQL and River workers, as in the scenario tests.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from devenv import river_jobs as rj
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
    wait_for,
)
from lifeguard.cluster.kube import KubeClient as LifeguardKube
from lifeguard.model.enums import Action, Backoff, Cause
from lifeguard.model.own_action import OWN_ACTION_KEY
from lifeguard.plan import PlannedAction, PodRef
from lifeguard.reconcile import Result
from lifeguard.river.database import RiverDatabase
from lifeguard.supervisor.execute import Target, execute

pytestmark = pytest.mark.e2e

RiverDsn = Callable[..., str]
Json = dict[str, Any]
EXPLAIN, FENCE = "lg-explain", "lg-fence"
POLICY = "workers"


@pytest.fixture(scope="module")
def operator(
    state_dir: Path,
    control_plane: ControlPlane,
    node_agents: list[NodeAgentHandle],
) -> Iterator[OperatorProcess]:
    install_crd(control_plane)
    process = start_operator(
        state_dir, control_plane.kubeconfig, name="operator-reconcile", namespaces=[EXPLAIN, FENCE]
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def world(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDsn,
    worker_binary: Path,
    operator: OperatorProcess,
) -> Iterator[Scenario]:
    dsn = river_database()
    migrate_heartbeats(dsn)
    scenario = new_world(control_plane, kube, EXPLAIN, dsn, worker_binary)
    yield scenario
    scenario.cleanup()


def explain(plane: ControlPlane, namespace: str, *output: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifeguard.cli", "explain", POLICY, "-n", namespace, *output],
        env={"KUBECONFIG": str(plane.kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def first_decisions(status: Json, jobs: set[int], applied: bool) -> dict[int, tuple[str, str]]:
    """(cause, action) of the first recorded decision per job, applied or dry-run."""
    found: dict[int, tuple[str, str]] = {}
    for entry in reversed(status.get("recentActions") or []):  # newest first on the object
        if entry["jobId"] in jobs and entry["applied"] == applied:
            found.setdefault(entry["jobId"], (entry["cause"], entry["action"]))
    return found


def test_explain_predicts_the_operators_actions_on_a_mixed_set_of_jobs(
    world: Scenario, control_plane: ControlPlane
) -> None:
    # DryRun first: the operator decides and records, nothing changes, explain can look.
    spec = fast_policy_spec(safety={"mode": "DryRun"})
    spec["heartbeat"]["startupGrace"] = "300s"  # the job without beats stays Starting
    # The worker outside the cluster below has no pod: only a policy that says so judges it.
    spec["workers"]["unattributed"] = "Judge"
    world.apply_policy(POLICY, spec)
    world.wait_condition(POLICY, "Ready", "True", timeout=60)

    world.worker_pod("mx-healthy", "mxhealthy")
    world.worker_pod("mx-stuck", "stuck")
    world.worker_pod("mx-crash", "mxcrash")
    world.worker_pod("mx-frozen", "mxfrozen", grace_seconds=2)
    world.worker_pod("mx-start", "mxstart", env={"HEARTBEAT_STORE": "none"})
    # A worker outside the cluster: its client ID names no pod.
    outside = subprocess.Popen(
        [str(world.worker), "run"],
        env={
            "DATABASE_URL": world.dsn,
            "WORKER_QUEUES": "mxoutside",
            "HEARTBEAT_INTERVAL": "1s",
            "PATH": "/usr/bin:/bin",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        jobs = {
            "healthy": world.enqueue("sleep", {"seconds": 600}, queue="mxhealthy"),
            "stuck": world.enqueue("stall", {"progress_for_seconds": 1}, queue="stuck"),
            "dead pod": world.enqueue("crash", {"exit_code": 3}, queue="mxcrash"),
            "frozen": world.enqueue("freeze", {"after_seconds": 2}, queue="mxfrozen"),
            "starting": world.enqueue("sleep", {"seconds": 600}, queue="mxstart"),
            "no pod": world.enqueue("freeze", {"after_seconds": 2}, queue="mxoutside"),
        }
        acting = {jobs[name] for name in ("stuck", "dead pod", "frozen", "no pod")}

        def decided() -> Json | None:
            status = world.policy(POLICY).get("status") or {}
            return status if set(first_decisions(status, acting, applied=False)) == acting else None

        status = wait_for(decided, 90, "the operator's dry-run decision on every acting job")
        dry_run = first_decisions(status, acting, applied=False)

        done = explain(control_plane, EXPLAIN, "-o", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        verdicts = {row["jobId"]: row["cause"] for row in report["jobs"]}
        predicted = {a["jobId"]: (verdicts[a["jobId"]], a["action"]) for a in report["actions"]}

        assert predicted == dry_run, (predicted, dry_run)
        assert verdicts[jobs["healthy"]] == "Healthy"
        assert verdicts[jobs["starting"]] == "Starting"
        assert dry_run[jobs["stuck"]] == ("Stuck", "Cancel")
        assert dry_run[jobs["dead pod"]] == ("ApplicationCrash", "Retry")
        assert dry_run[jobs["frozen"]] == ("Unresponsive", "RestartPod")
        assert dry_run[jobs["no pod"]] == ("Stale", "Retry")
        assert all(a["dryRun"] for a in report["actions"])
        restart = next(a for a in report["actions"] if a["action"] == "RestartPod")
        frozen_pod = world.pod("mx-frozen")
        assert frozen_pod is not None and restart["podUid"] == frozen_pod["metadata"]["uid"]

        # Enforce: the operator now writes, and what it writes first is what explain said.
        spec["safety"] = {"mode": "Enforce"}
        world.apply_policy(POLICY, spec)

        def applied() -> Json | None:
            status = world.policy(POLICY).get("status") or {}
            return status if set(first_decisions(status, acting, applied=True)) == acting else None

        status = wait_for(applied, 90, "the operator's applied action on every acting job")
        enforced = first_decisions(status, acting, applied=True)
        assert enforced == predicted, (enforced, predicted)
        row = world.job(jobs["healthy"])
        assert row["state"] == "running" and not row["errors"]
    finally:
        outside.send_signal(signal.SIGKILL)
        outside.wait(timeout=10)


def test_explain_says_why_it_cannot_scan_and_prints_a_table_and_yaml(
    world: Scenario, control_plane: ControlPlane
) -> None:
    table = explain(control_plane, EXPLAIN)
    assert table.returncode == 0, table.stderr
    assert "VERDICT" in table.stdout and "NEXT" in table.stdout
    as_yaml = explain(control_plane, EXPLAIN, "-o", "yaml")
    assert as_yaml.returncode == 0 and as_yaml.stdout.startswith("jobs:"), as_yaml.stderr

    world.apply_policy("no-secret", fast_policy_spec(secret="missing"))
    broken = subprocess.run(
        [sys.executable, "-m", "lifeguard.cli", "explain", "no-secret", "-n", EXPLAIN],
        env={"KUBECONFIG": str(control_plane.kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 1
    assert "SecretNotFound" in broken.stderr and "missing" in broken.stderr, broken.stderr
    control_plane.kubectl("delete", "jp", "no-secret", "-n", EXPLAIN)


# -- evictions fenced by the pod's uid ------------------------------------------------------
@pytest.fixture(scope="module")
def fence(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDsn,
    worker_binary: Path,
    operator: OperatorProcess,
) -> Iterator[Scenario]:
    dsn = river_database()
    scenario = new_world(control_plane, kube, FENCE, dsn, worker_binary)
    yield scenario
    scenario.cleanup()


def restart_of(
    namespace: str, pod: str, uid: str, job: tuple[int, datetime] | None = None
) -> PlannedAction:
    """The action the planner makes for a frozen worker in `pod` (the instance `uid`), for the
    running attempt `job` (id, attempted_at)."""
    job_id, attempted_at = job or (1, datetime.now(UTC))
    return PlannedAction(
        job_id=job_id,
        attempted_at=attempted_at,
        kind="freeze",
        queue="fence",
        attempt=1,
        max_attempts=25,
        pod=PodRef(namespace, pod, uid),
        node=None,
        cause=Cause.UNRESPONSIVE,
        reason="BeatStale",
        message="beats stopped",
        action=Action.RESTART_POD,
        count_attempt=True,
        backoff=Backoff.IMMEDIATE,
        escalated=False,
        dry_run=False,
    )


def test_a_pod_recreated_under_the_same_name_before_the_eviction_is_not_evicted(
    fence: Scenario, control_plane: ControlPlane
) -> None:
    fence.worker_pod("fence-w", "fence")
    old = fence.pod("fence-w")
    assert old is not None
    old_uid = old["metadata"]["uid"]
    fence.delete_pod("fence-w", grace=0)
    wait_for(lambda: fence.pod("fence-w") is None, 60, "the first pod to be gone")
    fence.worker_pod("fence-w", "fence")  # a successor under the same name, as a StatefulSet does
    new = fence.pod("fence-w")
    assert new is not None and new["metadata"]["uid"] != old_uid

    # The frozen job the restart is for: running, on a queue no worker fetches. Lifeguard
    # records the restart on it (fenced on the attempt) before it evicts.
    with rj.connect(fence.dsn) as conn:
        frozen = rj.start_job(conn, None, queue="fence-frozen")

    async def evict(uid: str) -> Result:
        api = kubernetes.config.new_client_from_config(config_file=str(control_plane.kubeconfig))
        async with RiverDatabase(fence.dsn) as db:
            target = Target(db, None, LifeguardKube(api), FENCE)
            (outcome,) = await execute([restart_of(FENCE, "fence-w", uid, frozen)], target)
        return outcome.result

    # Decided on the first pod: fenced, and the successor keeps running untouched; the restart
    # record is withdrawn (no restart happened), so the successor's death is its own.
    assert asyncio.run(evict(old_uid)) is Result.FENCED
    after = fence.pod("fence-w")
    assert after is not None and after["metadata"]["uid"] == new["metadata"]["uid"]
    assert not after["metadata"].get("deletionTimestamp")
    assert OWN_ACTION_KEY not in job_metadata(fence.dsn, frozen[0])
    # Decided on the successor itself: evicted (the fence, not the call, spared it above).
    assert asyncio.run(evict(new["metadata"]["uid"])) is Result.APPLIED
    wait_for(lambda: fence.pod("fence-w") is None, 60, "the successor to be evicted")


def job_metadata(dsn: str, job_id: int) -> Json:
    with rj.connect(dsn) as conn:
        metadata: Json = rj.job(conn, None, job_id)["metadata"] or {}
    return metadata


def test_a_restart_a_disruption_budget_refused_leaves_no_record_to_explain_a_later_death(
    fence: Scenario, control_plane: ControlPlane
) -> None:
    fence.worker_pod("budget-w", "budget", labels={"budget": "one"})
    pod = fence.pod("budget-w")
    assert pod is not None
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "keep-one"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"budget": "one"}}},
    }
    fence.kube.create(f"/apis/policy/v1/namespaces/{FENCE}/poddisruptionbudgets", budget)
    wait_for(
        lambda: (
            fence.kube.get(f"/apis/policy/v1/namespaces/{FENCE}/poddisruptionbudgets/keep-one")
            .get("status", {})
            .get("currentHealthy")
            == 1
        ),
        60,
        "the disruption controller to count the pod",
    )
    with rj.connect(fence.dsn) as conn:
        frozen = rj.start_job(conn, None, queue="budget-frozen")

    async def restart() -> Result:
        api = kubernetes.config.new_client_from_config(config_file=str(control_plane.kubeconfig))
        async with RiverDatabase(fence.dsn) as db:
            target = Target(db, None, LifeguardKube(api), FENCE)
            action = restart_of(FENCE, "budget-w", pod["metadata"]["uid"], frozen)
            (outcome,) = await execute([action], target)
        return outcome.result

    # The eviction is refused (429): the pod runs on, and the record written before the
    # eviction is gone, so a later death of this pod (its node lost, a user's deletion) is
    # not read as Lifeguard's restart.
    assert asyncio.run(restart()) is Result.BLOCKED
    kept = fence.pod("budget-w")
    assert kept is not None and not kept["metadata"].get("deletionTimestamp")
    assert OWN_ACTION_KEY not in job_metadata(fence.dsn, frozen[0])
