"""Two replicas, one leader: failover, freeze, handover, upgrade and node loss, on the real
control plane with real River jobs.

The replicas are `lifeguard run` processes authenticated as the chart's ServiceAccount and
campaigning for the chart's Lease (the local cluster runs no container images; the release's
Deployment is pinned to no node, so its pods stay Pending and only the processes act). They run
with the default election timings (15 s lease, 10 s renew deadline, 2 s retry period): the
timings users get. The figures printed here are informational; `make bench` measures them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devenv import helm
from devenv.chart import chart_lease, service_account_kubeconfig
from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.scenario import (
    Scenario,
    fast_policy_spec,
    lifeguard_errors,
    migrate_heartbeats,
    new_world,
    wait_for,
)

pytestmark = pytest.mark.e2e

RiverDatabase = Callable[..., str]
StartAgent = Callable[[str], NodeAgentHandle]
RELEASE, HOME, JOBS, POLICY = "lg-ha", "ha-system", "ha-jobs", "workers"
# No node carries this label: the Deployment's pods stay Pending, the processes do the work.
NOWHERE = {"lifeguard.dev/test-no-runtime": "true"}
CHART_VALUES = {"watch": {"namespaces": [JOBS]}, "nodeSelector": NOWHERE}
# A lost node's jobs are judged NodeLost when the restart's escalation waits longer than the
# node's grace period, as the production default (2m) does.
ACTIONS = {"unresponsive": {"action": "RestartPod", "then": "Retry", "after": "40s"}}
RELEASE_SEEN = "has no holder: trying to take it at once"
ACTION_LINE = re.compile(r"policy \S+ job (\d+) \(.*\): .* -> ")


@dataclass
class Replicas:
    """The operator processes of one release, started and stopped like a Deployment's pods."""

    plane: ControlPlane
    state_dir: Path
    kubeconfig: Path
    lease: tuple[str, str]
    alive: list[OperatorProcess] = field(default_factory=list)
    started: int = 0
    # When each replica (by PID) was started, on this process's monotonic clock.
    started_at: dict[int, float] = field(default_factory=dict)

    def start(self) -> OperatorProcess:
        self.started += 1
        process = start_operator(
            self.state_dir,
            self.kubeconfig,
            name=f"operator-ha-{self.started}",
            namespaces=[JOBS],
            lease=self.lease,
        )
        self.alive.append(process)
        self.started_at[process.daemon.pid] = time.monotonic()
        return process

    def gone(self, process: OperatorProcess) -> None:
        self.alive.remove(process)

    def roles(self, timeout: float = 60) -> tuple[OperatorProcess, list[OperatorProcess]]:
        """The leader and the standbys, once exactly one live replica reports leading."""

        def settled() -> tuple[OperatorProcess, list[OperatorProcess]] | None:
            gauges = [(p, p.leader_gauge()) for p in self.alive]
            leaders = [p for p, g in gauges if g == 1]
            if len(leaders) == 1 and all(g == 0 for p, g in gauges if p is not leaders[0]):
                return leaders[0], [p for p in self.alive if p is not leaders[0]]
            return None

        return wait_for(settled, timeout, "exactly one leading replica")

    def holder(self) -> str:
        lease = self.plane.kubectl_json("get", "lease", self.lease[1], "-n", self.lease[0])
        return str((lease.get("spec") or {}).get("holderIdentity") or "")  # type: ignore[union-attr]

    def stop_all(self) -> None:
        for process in list(self.alive):
            process.stop()
        self.alive.clear()


def actions_for(process: OperatorProcess, job: int) -> list[str]:
    """The action lines about `job` in a replica's log."""
    return [
        line
        for line in process.log_text().splitlines()
        if (match := ACTION_LINE.search(line)) and int(match.group(1)) == job
    ]


def retried_events(world: Scenario, job: int) -> int:
    return sum(f"job {job} " in e["message"] for e in world.events("JobRetried"))


def running_job(world: Scenario, pod: str, queue: str, node: str | None = None) -> int:
    world.worker_pod(pod, queue, node=node)
    job = world.enqueue("sleep", {"seconds": 600}, queue=queue)
    world.wait_job(job, "running", timeout=30)
    return job


def assert_rescued_once(world: Scenario, job: int) -> None:
    row = world.wait_job(job, ("retryable", "available"), timeout=60)
    world.wait_event("JobRetried", containing=f"job {job} ")
    time.sleep(3)  # anything a second replica would do shows by now
    assert len(lifeguard_errors(world.job(job))) == 1, row["errors"]
    assert retried_events(world, job) == 1


@pytest.fixture(scope="module")
def ha(
    state_dir: Path,
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    node_agents: list[NodeAgentHandle],
) -> Iterator[tuple[Scenario, Replicas]]:
    dsn = river_database()
    migrate_heartbeats(dsn)
    world = new_world(control_plane, kube, JOBS, dsn, worker_binary)
    control_plane.kubectl("create", "namespace", HOME)
    helm.install(RELEASE, HOME, CHART_VALUES, control_plane.kubeconfig)
    account = f"{RELEASE}-river-lifeguard"
    kubeconfig = service_account_kubeconfig(
        control_plane, account, HOME, state_dir / "operator-ha.kubeconfig"
    )
    replicas = Replicas(
        control_plane, state_dir, kubeconfig, chart_lease(control_plane, RELEASE, HOME)
    )
    world.apply_policy(POLICY, fast_policy_spec(actions=ACTIONS))
    first = replicas.start()
    assert replicas.roles()[0] is first  # alone, it takes the chart's empty Lease at once
    replicas.start()
    world.wait_condition(POLICY, "Ready", "True", timeout=60)
    yield world, replicas
    replicas.stop_all()
    helm.uninstall(RELEASE, HOME, control_plane.kubeconfig)
    control_plane.kubectl("delete", "namespace", HOME, "--wait=false", check=False)
    world.cleanup()


def test_one_replica_acts_and_the_standby_only_watches(ha: tuple[Scenario, Replicas]) -> None:
    world, replicas = ha
    leader, (standby,) = replicas.roles()
    job = running_job(world, "ha-w1", "ha1")

    world.delete_pod("ha-w1", grace=0)

    assert_rescued_once(world, job)
    assert len(actions_for(leader, job)) == 1
    assert actions_for(standby, job) == []
    assert standby.leader_gauge() == 0
    assert standby.healthy()  # waiting is not broken
    standby_log = standby.log_text()
    assert "supervising" not in standby_log
    assert f"{leader.identity} leads, this replica stands by" in standby_log
    assert replicas.holder() == leader.identity


def test_killed_leader_is_replaced_and_the_standby_rescues_the_job(
    ha: tuple[Scenario, Replicas],
) -> None:
    world, replicas = ha
    leader, (standby,) = replicas.roles()
    job = running_job(world, "ha-w2", "ha2")

    killed_at = time.monotonic()
    leader.daemon.stop(signal.SIGKILL)
    replicas.gone(leader)
    world.delete_pod("ha-w2", grace=0)
    world.wait_job(job, ("retryable", "available"), timeout=60)
    took = time.monotonic() - killed_at

    print(f"leader SIGKILLed to the standby's first action: {took:.2f}s")
    assert_rescued_once(world, job)
    assert len(actions_for(standby, job)) == 1
    assert replicas.roles()[0] is standby
    replicas.start()  # the Deployment would replace the killed pod


def test_frozen_leader_resumes_without_acting_and_steps_down(
    ha: tuple[Scenario, Replicas],
) -> None:
    world, replicas = ha
    leader, (standby,) = replicas.roles()
    job = running_job(world, "ha-w3", "ha3")

    os.kill(leader.daemon.pid, signal.SIGSTOP)
    try:
        # The pod dies while the leader is frozen: it would act on it as soon as it resumes.
        world.delete_pod("ha-w3", grace=0)
        wait_for(lambda: standby.leader_gauge() == 1, 40, "the standby to lead")
        world.wait_job(job, ("retryable", "available"), timeout=30)
        world.wait_event("JobRetried", containing=f"job {job} ")
    finally:
        os.kill(leader.daemon.pid, signal.SIGCONT)

    wait_for(lambda: "stepped down" in leader.log_text(), 20, "the old leader to step down")
    # Its own clock told it first: the term ended while it was frozen.
    assert "stepped down: no renewal for the renew deadline" in leader.log_text()
    wait_for(lambda: leader.leader_gauge() == 0, 20, "the old leader's gauge to drop")
    assert_rescued_once(world, job)
    assert actions_for(leader, job) == []
    assert len(actions_for(standby, job)) == 1
    assert replicas.roles() == (standby, [leader])


def test_sigterm_hands_the_lease_over_at_once(
    ha: tuple[Scenario, Replicas],
) -> None:
    _, replicas = ha
    leader, (standby,) = replicas.roles()
    # A standby jumps on a release once it has stood by for a lease duration (15 s).
    time.sleep(max(0.0, replicas.started_at[standby.daemon.pid] + 16 - time.monotonic()))
    leader_saw, standby_saw = (p.log_text().count(RELEASE_SEEN) for p in (leader, standby))

    stopped_at = time.monotonic()
    os.kill(leader.daemon.pid, signal.SIGTERM)
    wait_for(lambda: standby.leader_gauge() == 1, 30, "the standby to lead", step=0.05)
    took = time.monotonic() - stopped_at

    print(f"leader SIGTERMed to the standby leading: {took:.2f}s")
    assert took <= 3.0
    leader.stop()
    replicas.gone(leader)
    assert "released Lease" in leader.log_text()
    # The standby took over on its watch's news of the release, not at its next periodic try;
    # the leader on its way out did not try to take back what it released.
    assert standby.log_text().count(RELEASE_SEEN) == standby_saw + 1
    assert leader.log_text().count(RELEASE_SEEN) == leader_saw
    replicas.start()


def test_helm_upgrade_while_a_pod_dies_the_job_is_rescued(
    ha: tuple[Scenario, Replicas], control_plane: ControlPlane
) -> None:
    """The upgrade itself is `helm upgrade` of the live release (a new value rolls the
    Deployment); its pods cannot run here, so the roll is played by the processes the same way:
    a new replica starts first (maxSurge 1), then the old leader gets SIGTERM while a worker pod
    dies, then the old standby is replaced too."""
    world, replicas = ha
    leader, (standby,) = replicas.roles()
    job = running_job(world, "ha-w4", "ha4")
    holder = replicas.holder()

    helm.upgrade(
        RELEASE, HOME, {**CHART_VALUES, "logging": {"level": "debug"}}, control_plane.kubeconfig
    )
    deployment = control_plane.kubectl_json("get", "deployment", f"{RELEASE}-river-lifeguard",
                                            "-n", HOME)  # fmt: skip
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[index]
    assert args[-1] == "debug"
    assert replicas.holder() == holder  # the upgrade left the leader's record alone

    surge = replicas.start()
    os.kill(leader.daemon.pid, signal.SIGTERM)
    world.delete_pod("ha-w4", grace=0)

    assert_rescued_once(world, job)
    leader.stop()
    replicas.gone(leader)
    new_leader, _ = replicas.roles()
    assert new_leader in (standby, surge)
    standby.stop()
    replicas.gone(standby)
    replicas.start()
    assert replicas.roles()[0] in (standby, surge, *replicas.alive)


def test_loss_of_the_leaders_node_fails_over_and_rescues_its_jobs(
    ha: tuple[Scenario, Replicas], start_agent: StartAgent, kube: KubeClient
) -> None:
    """The node agent's node failure, with the leader's process on that node: both die at
    once (SIGKILL), as when the machine is lost."""
    world, replicas = ha
    leader, (standby,) = replicas.roles()
    doomed = start_agent("node-ha")
    try:
        jobs = [running_job(world, f"ha-n{i}", f"han{i}", node="node-ha") for i in range(2)]
        time.sleep(1.5)

        failed_at = time.monotonic()
        doomed.fail_node("kill")
        leader.daemon.stop(signal.SIGKILL)
        replicas.gone(leader)
        rows = [world.wait_job(job, ("retryable", "available"), timeout=120) for job in jobs]
        took = time.monotonic() - failed_at

        print(f"leader's node lost to its jobs retried by the standby: {took:.2f}s")
        for row in rows:
            errors = lifeguard_errors(row)
            assert errors and errors[-1].startswith("lifeguard: InfrastructureDeath/"), errors
        for job in jobs:
            assert len(actions_for(standby, job)) >= 1
            assert actions_for(leader, job) == []
        assert replicas.roles()[0] is standby
    finally:
        doomed.stop()
        kube.delete("/api/v1/nodes/node-ha")
        replicas.start()


def test_lease_names_the_leader_and_counts_transitions(
    ha: tuple[Scenario, Replicas], control_plane: ControlPlane
) -> None:
    _, replicas = ha
    leader, _ = replicas.roles()
    lease = control_plane.kubectl_json("get", "lease", replicas.lease[1], "-n", replicas.lease[0])
    spec = lease["spec"]  # type: ignore[index]
    events = json.loads(control_plane.kubectl("get", "events", "-n", HOME, "-o", "json").stdout)[
        "items"
    ]

    assert spec["holderIdentity"] == leader.identity
    # Renewals replace the whole object: the chart's labels must survive them.
    assert lease["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE  # type: ignore[index]
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] >= 4  # every failover above changed hands
    assert any(e["reason"] == "LeaderElected" and leader.identity in e["message"] for e in events)


def test_explain_names_the_acting_replica_in_its_header(
    ha: tuple[Scenario, Replicas], control_plane: ControlPlane
) -> None:
    _, replicas = ha
    leader, _ = replicas.roles()

    done = subprocess.run(
        [sys.executable, "-m", "lifeguard.cli", "explain", POLICY, "-n", JOBS],
        env={"KUBECONFIG": str(control_plane.kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    assert header.startswith("Operator leader")
    assert f"{leader.identity} (Lease {HOME}/{replicas.lease[1]}" in header
