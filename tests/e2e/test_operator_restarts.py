"""The operator across restarts of its own and of the control plane, on a control plane of this
module's own (its apiserver and etcd are restarted here, which other modules must not see).

- Restarted while a process is frozen on a healthy node and a node is frozen (NotReady, its
  processes alive but silent): its first scans judge with complete pod and node caches, so they
  say what later scans say (Unresponsive → RestartPod, NodeLost → a refunded retry), never
  Stale for want of a pod.
- kube-apiserver, then etcd, restarted while jobs run: the database is scanned throughout (its
  query timestamps in pg_stat_activity keep moving), and afterwards a pod deletion is retried
  by the fast path and a frozen process on a healthy node is still Unresponsive → RestartPod,
  not a NodeLost from Lease ages the operator could not read.
- Started while kube-apiserver is down: it names the URL it cannot reach and retries, answers
  /healthz, prints no traceback, and acts once the apiserver is back; a policy whose database
  is not there says so in its conditions. Refused by the apiserver (401): one line, exit 1.
- kube-apiserver down for 75 s, longer than kopf's retries of one request (54 s): the operator
  lives on, with no traceback, and a pod deletion afterwards takes the fast path.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.handle import start_node_agent
from devenv.nodeagent.kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.ports import free_port
from devenv.scenario import (
    Scenario,
    fast_policy_spec,
    install_crd,
    lifeguard_errors,
    migrate_heartbeats,
    new_world,
)
from devenv.waiting import wait_for

pytestmark = pytest.mark.e2e

RiverDatabase = Callable[..., str]
SYNC, OUTAGE, STARTUP, NO_DATABASE = "rs-sync", "rs-outage", "rs-startup", "rs-nodb"
LONG = "rs-long"
POLICY = "workers"
HEALTHY_NODE, FROZEN_NODE = "rs-healthy", "rs-frozen"


@pytest.fixture(scope="module")
def plane(state_dir: Path) -> Iterator[ControlPlane]:
    own = ControlPlane.start(state_dir / "restarts")
    install_crd(own)
    yield own
    own.stop()


@pytest.fixture(scope="module")
def agents(
    state_dir: Path, plane: ControlPlane, worker_binary: Path
) -> Iterator[dict[str, NodeAgentHandle]]:
    started = {}
    for name in (HEALTHY_NODE, FROZEN_NODE):
        kubeconfig = plane.user_kubeconfig(f"system:node:{name}", ["system:nodes"])
        started[name] = start_node_agent(
            state_dir / "restarts", kubeconfig, name, [worker_binary.parent]
        )
    yield started
    for handle in started.values():
        handle.stop()


@pytest.fixture(scope="module")
def admin(plane: ControlPlane) -> KubeClient:
    return KubeClient(plane.kubeconfig)


def operator(
    state_dir: Path,
    plane: ControlPlane,
    name: str,
    *,
    elect: bool = True,
    namespaces: tuple[str, ...] = (SYNC, OUTAGE),
) -> OperatorProcess:
    return start_operator(
        state_dir / "restarts",
        plane.kubeconfig,
        name=name,
        namespaces=namespaces,
        extra_args=() if elect else ("--no-leader-elect",),
    )


def world(
    plane: ControlPlane, admin: KubeClient, namespace: str, dsn: str, worker: Path
) -> Scenario:
    migrate_heartbeats(dsn)
    scenario = new_world(plane, admin, namespace, dsn, worker)
    scenario.apply_policy(POLICY, fast_policy_spec())
    return scenario


def node_ready(admin: KubeClient, name: str) -> bool:
    conditions = (admin.get(f"/api/v1/nodes/{name}").get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_first_scans_after_an_operator_restart_judge_with_complete_caches(
    state_dir: Path,
    plane: ControlPlane,
    admin: KubeClient,
    agents: dict[str, NodeAgentHandle],
    river_database: RiverDatabase,
    worker_binary: Path,
) -> None:
    lg = world(plane, admin, SYNC, river_database(), worker_binary)
    first = operator(state_dir, plane, "operator-restarts-1")
    try:
        lg.wait_condition(POLICY, "Ready", "True", timeout=60)
        lg.worker_pod("frozen-w", "frozen", node=HEALTHY_NODE)
        lg.worker_pod("lost-w", "lost", node=FROZEN_NODE)
        frozen_job = lg.enqueue("sleep", {"seconds": 600}, queue="frozen")
        lost_job = lg.enqueue("sleep", {"seconds": 600}, queue="lost")
        lg.wait_running_on(frozen_job, "frozen-w")
        lg.wait_running_on(lost_job, "lost-w")
    finally:
        first.stop()

    # While the operator is down: a process freezes on a healthy node, and a whole node
    # freezes (no Lease, no status: NotReady after the 15 s grace; its processes are alive).
    agents[HEALTHY_NODE].freeze_pod(SYNC, "frozen-w")
    agents[FROZEN_NODE].fail_node("freeze")
    wait_for(lambda: not node_ready(admin, FROZEN_NODE) or None, 60, "the frozen node NotReady")

    second = operator(state_dir, plane, "operator-restarts-2")
    try:
        lg.wait_event("PodRestarted", timeout=60, containing=f"job {frozen_job} ")
        lost = lg.wait_job(lost_job, ("retryable", "available"), timeout=60)
        errors = lifeguard_errors(lost)
        assert errors and errors[-1].startswith("lifeguard: InfrastructureDeath/NodeLost"), errors
        # No first scan judged either job without its pod or node.
        for job in (frozen_job, lost_job):
            assert not any("Stale/" in e for e in lifeguard_errors(lg.job(job))), lg.job(job)
        metrics = second.metrics()
        assert 'cause="Stale"' not in "".join(
            line for line in metrics.splitlines() if line.startswith("lifeguard_verdicts_total")
        ), metrics
    finally:
        second.stop()
        with contextlib.suppress(Exception):  # evicted by the restart: nothing to thaw
            agents[HEALTHY_NODE].thaw_pod(SYNC, "frozen-w")


def last_scan_at(dsn: str) -> datetime | None:
    """The latest query start of the operator's connections to this database."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT max(query_start) FROM pg_stat_activity"
            " WHERE application_name = 'river-lifeguard' AND datname = current_database()"
        ).fetchone()
    return None if row is None else row[0]


def scans_go_on_during(dsn: str, outage: Callable[[], None]) -> int:
    """Runs `outage` in the foreground and samples the operator's queries meanwhile; returns
    how many distinct query starts were seen while it lasted."""
    seen: set[datetime] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            at = last_scan_at(dsn)
            if at is not None:
                seen.add(at)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        outage()
    finally:
        done.set()
        sampler.join(timeout=10)
    return len(seen)


def test_apiserver_and_etcd_restarts_do_not_stop_scans_or_blind_the_operator(
    state_dir: Path,
    plane: ControlPlane,
    admin: KubeClient,
    agents: dict[str, NodeAgentHandle],
    river_database: RiverDatabase,
    worker_binary: Path,
) -> None:
    dsn = river_database()
    lg = world(plane, admin, OUTAGE, dsn, worker_binary)
    # One replica without leader election: an elected leader that cannot renew its Lease for
    # renewDeadline (10 s) stops scanning and acting by design, since it cannot tell an outage
    # from its own partition; this test is about one operator through the outage.
    process = operator(state_dir, plane, "operator-restarts-outage", elect=False)
    try:
        lg.wait_condition(POLICY, "Ready", "True", timeout=60)
        lg.worker_pod("steady-w", "steady", node=HEALTHY_NODE)
        steady = lg.enqueue("sleep", {"seconds": 600}, queue="steady")
        lg.wait_running_on(steady, "steady-w")

        # Scans (scanInterval 1s) go on while the apiserver is down, then while etcd is.
        during_apiserver = scans_go_on_during(
            dsn, lambda: plane.restart("kube-apiserver", down_for=8)
        )
        during_etcd = scans_go_on_during(dsn, lambda: plane.restart("etcd", down_for=20))
        # Generous: a scan a second would give 8 and 20; under load fewer are seen.
        assert during_apiserver >= 4, "the database was not scanned while the apiserver was down"
        assert during_etcd >= 5, "the database was not scanned while etcd was down"
        assert lg.job(steady)["state"] == "running", "a healthy job was touched"

        # Afterwards: a pod deletion is still retried by the fast path ...
        lg.worker_pod("doomed-w", "doomed", node=HEALTHY_NODE)
        doomed = lg.enqueue("sleep", {"seconds": 600}, queue="doomed")
        lg.wait_running_on(doomed, "doomed-w")
        lg.delete_pod("doomed-w")
        retried = lg.wait_job(doomed, ("retryable", "available"), timeout=20)
        assert lifeguard_errors(retried)[-1].startswith("lifeguard: InfrastructureDeath/")

        # ... and a frozen process on a healthy node is Unresponsive, its pod restarted: the
        # Lease ages the operator could not read during the outage are no evidence.
        lg.worker_pod("frozen-after-w", "frozen", node=HEALTHY_NODE)
        frozen = lg.enqueue("sleep", {"seconds": 600}, queue="frozen")
        lg.wait_running_on(frozen, "frozen-after-w")
        agents[HEALTHY_NODE].freeze_pod(OUTAGE, "frozen-after-w")
        lg.wait_event("PodRestarted", timeout=60, containing=f"job {frozen} ")
        assert not any("NodeLost" in e for e in lifeguard_errors(lg.job(frozen)))

        # The outage was said once on the policy, and the node view is observed again.
        lg.wait_event("ApiserverUnreachable", timeout=30)
        nodes = lg.condition(POLICY, "NodesObserved")
        assert nodes is None or nodes["status"] == "True", nodes
        assert lg.job(steady)["state"] == "running", "a healthy job was touched"
        log_text = process.log_text()
        assert "scan failed unexpectedly" not in log_text
        # One line per outage: every "unreachable" is followed by its "answers again" before
        # the next one (an apiserver that fails again right after etcd returns, under load, is
        # another outage and may say so once more).
        lines = re.findall(
            r"the apiserver (is unreachable \(.*?\): database scans go on|answers again)",
            log_text,
        )
        said = ["down" if line.startswith("is unreachable") else "up" for line in lines]
        assert said and said[0] == "down", said
        assert all(a != b for a, b in itertools.pairwise(said)), said
    finally:
        process.stop()


def test_an_operator_started_before_the_apiserver_waits_for_it_and_then_acts(
    state_dir: Path,
    plane: ControlPlane,
    admin: KubeClient,
    agents: dict[str, NodeAgentHandle],
    river_database: RiverDatabase,
    worker_binary: Path,
) -> None:
    lg = world(plane, admin, STARTUP, river_database(), worker_binary)
    # A database that is not there when the operator starts (nothing listens on the port).
    absent = new_world(
        plane,
        admin,
        NO_DATABASE,
        f"postgresql://river@127.0.0.1:{free_port()}/river",
        worker_binary,
    )
    absent.apply_policy(POLICY, fast_policy_spec())
    unreachable = f"cannot reach the Kubernetes API at {plane.server}: "
    with plane.down("kube-apiserver"):
        # start_operator returns once /healthz answers: the waiting operator answers it.
        process = operator(
            state_dir, plane, "operator-restarts-startup", namespaces=(STARTUP, NO_DATABASE)
        )
        wait_for(
            lambda: process.log_text().count(unreachable) >= 2 or None,
            60,
            "the operator to name the apiserver it cannot reach, twice",
        )
        assert process.daemon.alive() and process.healthy()
    try:
        lg.wait_condition(POLICY, "Ready", "True", timeout=90)
        wait_for(lambda: node_ready(admin, HEALTHY_NODE) or None, 60, f"{HEALTHY_NODE} Ready")
        lg.worker_pod("startup-w", "startup", node=HEALTHY_NODE)
        job = lg.enqueue("sleep", {"seconds": 600}, queue="startup")
        lg.wait_running_on(job, "startup-w")
        lg.delete_pod("startup-w")
        retried = lg.wait_job(job, ("retryable", "available"), timeout=30)
        assert lifeguard_errors(retried)[-1].startswith("lifeguard: InfrastructureDeath/")

        down = absent.wait_condition(POLICY, "DatabaseConnected", "False", timeout=60)
        assert "127.0.0.1" in down["message"], down
        log_text = process.log_text()
        assert "Traceback" not in log_text, process.log_tail()
        assert f"the Kubernetes API at {plane.server} answers" in log_text
        tries = [line for line in log_text.splitlines() if unreachable in line]
        assert all("retrying in" in line for line in tries), tries
    finally:
        process.stop()
        lg.cleanup()
        absent.cleanup()


def test_an_operator_the_apiserver_refuses_exits_with_one_line(
    state_dir: Path, plane: ControlPlane
) -> None:
    config = yaml.safe_load(plane.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-a-valid-token"}
    refused = state_dir / "restarts" / "refused.kubeconfig"
    refused.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "lifeguard.cli", "run", "--namespace", STARTUP, "--no-leader-elect"],
        env={**os.environ, "KUBECONFIG": str(refused)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert f"cannot use the Kubernetes API at {plane.server}: " in errors[0]
    assert "Unauthorized" in errors[0], errors


def test_an_apiserver_outage_longer_than_kopfs_retries_does_not_end_the_operator(
    state_dir: Path,
    plane: ControlPlane,
    admin: KubeClient,
    agents: dict[str, NodeAgentHandle],
    river_database: RiverDatabase,
    worker_binary: Path,
) -> None:
    # kopf retries a failed API request for 54 s by default, then lets its watcher fail. An
    # apiserver that is down longer (an upgrade, a lost control-plane node) must not end the
    # operator: it waits, then follows again and acts.
    dsn = river_database()
    lg = world(plane, admin, LONG, dsn, worker_binary)
    process = operator(state_dir, plane, "operator-restarts-long", elect=False, namespaces=(LONG,))
    try:
        lg.wait_condition(POLICY, "Ready", "True", timeout=60)
        plane.restart("kube-apiserver", down_for=75)
        assert process.daemon.alive(), process.log_tail()
        wait_for(lambda: node_ready(admin, HEALTHY_NODE), timeout=120, what="node ready again")
        lg.worker_pod("long-w", "long", node=HEALTHY_NODE)
        job = lg.enqueue("sleep", {"seconds": 600}, queue="long")
        lg.wait_running_on(job, "long-w")
        lg.delete_pod("long-w")
        retried = lg.wait_job(job, ("retryable", "available"), timeout=30)
        assert lifeguard_errors(retried)[-1].startswith("lifeguard: InfrastructureDeath/")
        assert process.daemon.alive(), process.log_tail()
        assert "Traceback" not in process.log_text(), process.log_tail(120)
    finally:
        process.stop()
