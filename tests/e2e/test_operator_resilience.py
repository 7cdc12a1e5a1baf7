"""The operator when things around it fail: a node, the heartbeat writer, the database, the
operator itself, and workers that beat through River's metadata instead of the beat table."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from devenv import river
from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.postgres import PostgresCluster
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
StartAgent = Callable[[str], NodeAgentHandle]
NODE, BREAKER, OUTAGE, META, PAIR = "rs-node", "rs-breaker", "rs-outage", "rs-meta", "rs-pair"
SHARED = "rs-shared"
POLICY = "workers"


@pytest.fixture(scope="module")
def operator(
    state_dir: Path, control_plane: ControlPlane, node_agents: list[NodeAgentHandle]
) -> Iterator[OperatorProcess]:
    install_crd(control_plane)
    process = start_operator(
        state_dir,
        control_plane.kubeconfig,
        name="operator-resilience",
        namespaces=[NODE, BREAKER, OUTAGE, META, PAIR, SHARED],
    )
    yield process
    process.stop()


def world_with_policy(
    plane: ControlPlane,
    kube: KubeClient,
    namespace: str,
    dsn: str,
    worker: Path,
    **spec: object,
) -> Scenario:
    migrate_heartbeats(dsn)
    world = new_world(plane, kube, namespace, dsn, worker)
    world.apply_policy(POLICY, fast_policy_spec(**spec))
    return world


# -- 4. node failure ------------------------------------------------------------------------
def test_node_failure_is_infrastructure_death_node_lost_before_taint_eviction(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    start_agent: StartAgent,
    operator: OperatorProcess,
) -> None:
    # The restart's escalation waits longer than the node controller's grace period (15 s
    # here, 50 s by default), as the default 2m does: a lost node is then judged NodeLost.
    actions = {"unresponsive": {"action": "RestartPod", "then": "Retry", "after": "40s"}}
    world = world_with_policy(
        control_plane, kube, NODE, river_database(), worker_binary, actions=actions
    )
    doomed = start_agent("node-doomed")
    world.worker_pod("on-doomed", "node", node="node-doomed")
    job = world.enqueue("sleep", {"seconds": 600}, queue="node")
    world.wait_job(job, "running", timeout=30)
    time.sleep(1.5)

    failed_at = time.monotonic()
    doomed.fail_node("kill")
    retried = world.wait_job(job, ("retryable", "available"), timeout=120)
    took = time.monotonic() - failed_at

    errors = lifeguard_errors(retried)
    assert errors and errors[-1].startswith("lifeguard: InfrastructureDeath/NodeLost"), errors
    # Taint eviction had not deleted the pod yet: Lifeguard acted on the node's readiness.
    pod = world.pod("on-doomed")
    assert pod is not None, "the pod was already evicted: Lifeguard was not first"
    print(f"node failure to retryable: {took:.2f}s")
    world.cleanup()
    doomed.stop()
    kube.delete("/api/v1/nodes/node-doomed")


# -- 9. circuit breaker ---------------------------------------------------------------------
def test_heartbeat_writer_outage_opens_the_circuit_and_nothing_is_touched_until_it_closes(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    operator: OperatorProcess,
) -> None:
    dsn = river_database()
    world = world_with_policy(
        control_plane,
        kube,
        BREAKER,
        dsn,
        worker_binary,
        safety={"circuitBreaker": {"staleFraction": 0.5, "minJobs": 5}},
    )
    world.wait_condition(POLICY, "Ready", "True")
    world.worker_pod("breaker-w", "breaker", env={"MAX_WORKERS": "10"})
    jobs = [world.enqueue("sleep", {"seconds": 120}, queue="breaker") for _ in range(6)]
    for job in jobs:
        world.wait_job(job, "running", timeout=30)
    world.wait_condition(POLICY, "CircuitOpen", "False", timeout=30)

    # The heartbeat writer stalls: beats block behind a table lock (reads still work).
    release = threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(dsn) as conn, conn.transaction():
            conn.execute("LOCK TABLE river_job_heartbeat IN EXCLUSIVE MODE")
            release.wait(60)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        opened = world.wait_condition(POLICY, "CircuitOpen", "True", timeout=30)
        assert "stale" in opened["message"]
        world.wait_event("CircuitOpened")
        time.sleep(8)  # well past the unresponsive rule's restart and escalation delay
        for job in jobs:
            row = world.job(job)
            assert row["state"] == "running" and untouched(row)
        assert world.pod("breaker-w") is not None
        assert not world.events("PodRestarted")
    finally:
        release.set()
        holder.join()

    world.wait_condition(POLICY, "CircuitOpen", "False", timeout=30)
    world.wait_event("CircuitClosed")
    for job in jobs:
        assert untouched(world.job(job))
    world.cleanup()


# -- one worker, two policies' queues ------------------------------------------------------
def test_a_pod_that_beats_for_another_policys_job_is_not_restarted(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    operator: OperatorProcess,
) -> None:
    # One worker runs two queues, each judged by its own policy. One job's beats stall (its
    # heartbeat row locked by a long transaction) while the other's go on: the process is
    # alive, and the first policy must not restart the pod and end the other policy's job.
    dsn = river_database()
    world = world_with_policy(
        control_plane, kube, SHARED, dsn, worker_binary, selector={"queues": ["tier"]}
    )
    world.apply_policy("rest", fast_policy_spec(selector={"queues": ["rest"]}))
    world.worker_pod("shared-w", "tier,rest")
    uid = world.pod("shared-w")["metadata"]["uid"]
    stalled = world.enqueue("sleep", {"seconds": 120}, queue="tier")
    beating = world.enqueue("sleep", {"seconds": 120}, queue="rest")
    world.wait_job(stalled, "running", timeout=30)
    world.wait_job(beating, "running", timeout=30)
    world.wait_condition(POLICY, "Ready", "True", timeout=30)
    time.sleep(2)  # both policies have judged their job beating at least once

    release = threading.Event()
    locked = threading.Event()

    def hold_row() -> None:
        with psycopg.connect(dsn) as conn, conn.transaction():
            conn.execute(
                "SELECT 1 FROM river_job_heartbeat WHERE job_id = %s FOR UPDATE", (stalled,)
            )
            locked.set()
            release.wait(60)

    holder = threading.Thread(target=hold_row)
    holder.start()
    try:
        assert locked.wait(10), "the heartbeat row was not locked"
        # The stalled job goes Unresponsive after 3 missed beats; its restart would follow
        # at once (and its escalation 6 s later) were it not held.
        time.sleep(12)
        explained = subprocess.run(
            [sys.executable, "-m", "lifeguard.cli", "explain", POLICY, "-n", SHARED, "-o", "json"],
            env={"KUBECONFIG": str(control_plane.kubeconfig), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert explained.returncode == 0, explained.stderr
        held = {h["jobId"]: h["why"] for h in json.loads(explained.stdout)["held"]}
        assert f"still beats for job {beating} (policy rest)" in held.get(stalled, ""), held
        pod = world.pod("shared-w")
        assert pod is not None and pod["metadata"]["uid"] == uid, "the pod was restarted"
        assert not pod["metadata"].get("deletionTimestamp"), "the pod is being evicted"
        assert not world.events("PodRestarted")
        for job in (stalled, beating):
            row = world.job(job)
            assert row["state"] == "running" and untouched(row), row
    finally:
        release.set()
        holder.join()
    world.cleanup()


# -- 10. database outage --------------------------------------------------------------------
def test_database_outage_is_reported_and_the_policy_recovers_when_it_returns(
    state_dir: Path,
    control_plane: ControlPlane,
    kube: KubeClient,
    worker_binary: Path,
    operator: OperatorProcess,
) -> None:
    cluster = PostgresCluster.start(state_dir / "outage")
    try:
        dsn = river.create_database(cluster, "river")
        world = world_with_policy(control_plane, kube, OUTAGE, dsn, worker_binary)
        world.wait_condition(POLICY, "DatabaseConnected", "True", timeout=60)

        port = cluster.port
        cluster.stop()
        down = world.wait_condition(POLICY, "DatabaseConnected", "False", timeout=60)
        assert "127.0.0.1" in down["message"]
        world.wait_condition(POLICY, "Ready", "False", reason="DatabaseUnavailable")
        world.wait_event("DatabaseUnreachable")
        assert operator.daemon.alive()

        cluster = PostgresCluster.start(state_dir / "outage", port=port)
        world.wait_condition(POLICY, "DatabaseConnected", "True", timeout=90)
        world.wait_condition(POLICY, "Ready", "True", timeout=30)
        world.wait_event("DatabaseReconnected")

        # Fully back: it acts again.
        world.worker_pod("outage-w", "outage")
        job = world.enqueue("sleep", {"seconds": 300}, queue="outage")
        world.wait_job(job, "running", timeout=30)
        world.delete_pod("outage-w", grace=0)
        world.wait_job(job, ("retryable", "available"), timeout=30)
        world.cleanup()
    finally:
        cluster.stop()


# -- 11. two operators, and a restart -------------------------------------------------------
def test_two_operators_at_once_and_a_restart_never_double_act(
    state_dir: Path,
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    operator: OperatorProcess,
) -> None:
    world = world_with_policy(control_plane, kube, PAIR, river_database(), worker_binary)
    second = start_operator(
        state_dir, control_plane.kubeconfig, name="operator-second", namespaces=[PAIR]
    )
    try:
        world.wait_condition(POLICY, "Ready", "True")
        pods = [world.worker_pod(f"pair-w{i}", f"pair{i}") for i in range(3)]
        jobs = [world.enqueue("sleep", {"seconds": 300}, queue=f"pair{i}") for i in range(3)]
        for job in jobs:
            world.wait_job(job, "running", timeout=30)

        # One pod dies while both operators watch; then the second operator is killed mid-way
        # and restarted while another pod dies.
        world.delete_pod(pods[0], grace=0)
        second.daemon.stop(signal.SIGKILL)
        world.delete_pod(pods[1], grace=0)
        second = start_operator(
            state_dir, control_plane.kubeconfig, name="operator-second", namespaces=[PAIR]
        )
        world.delete_pod(pods[2], grace=0)

        for job in jobs:
            row = world.wait_job(job, ("retryable", "available"), timeout=60)
            assert len(lifeguard_errors(row)) == 1, row["errors"]
            assert row["metadata"]["lifeguard:retries"] == 1
            assert row["attempt"] == 0
        time.sleep(3)  # nothing more happens to them
        for job in jobs:
            assert len(lifeguard_errors(world.job(job))) == 1
        retried = world.events("JobRetried")
        for job in jobs:
            assert sum(f"job {job} " in e["message"] for e in retried) == 1
    finally:
        second.stop()
        world.cleanup()


# -- 13. metadata store ---------------------------------------------------------------------
def test_metadata_store_with_health_check_at_beats_works_end_to_end(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    operator: OperatorProcess,
) -> None:
    world = world_with_policy(
        control_plane,
        kube,
        META,
        river_database(),
        worker_binary,
        heartbeat={
            "store": "Metadata",
            "metadataKey": "health_check_at",
            "interval": "1s",
            "missedBeats": 3,
            "startupGrace": "8s",
        },
    )
    env = {"HEARTBEAT_STORE": "metadata", "HEARTBEAT_METADATA_KEY": "health_check_at"}
    world.worker_pod("meta-w", "meta", env=env)
    healthy = world.enqueue("sleep", {"seconds": 14}, queue="meta")
    doomed = world.enqueue("sleep", {"seconds": 300}, queue="meta-doomed")
    world.worker_pod("meta-doomed-w", "meta-doomed", env=env)
    world.wait_job(healthy, "running", timeout=30)
    world.wait_job(doomed, "running", timeout=30)
    wait_for(
        lambda: "health_check_at" in (world.job(healthy)["metadata"] or {}),
        10,
        "a health_check_at beat",
    )

    time.sleep(2)
    world.delete_pod("meta-doomed-w", grace=0)
    retried = world.wait_job(doomed, ("retryable", "available"), timeout=30)
    assert lifeguard_errors(retried)[0].startswith("lifeguard: InfrastructureDeath/")

    done = world.wait_job(healthy, "completed", timeout=40)
    assert untouched(done)
    world.cleanup()
