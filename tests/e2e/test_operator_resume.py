"""Beyond rescue: a retried job resumes from its last progress, and runs again at once.

The example worker's `sleep` job works in steps, reports `{"step", "steps"}` after each, logs
every step done (`log_steps`), and resumes from `lifeguard:resume` (heartbeat.ResumeFrom), so
each test counts the steps done twice across the pods that ran the job.
"""

from __future__ import annotations

import re
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
    lifeguard_errors,
    migrate_heartbeats,
    new_world,
    wait_for,
)

pytestmark = pytest.mark.e2e

RiverDatabase = Callable[..., str]
StartAgent = Callable[[str], NodeAgentHandle]
NAMESPACE, POLICY = "lg-resume", "workers"
RESUME_KEY = "lifeguard:resume"
STEPS, STEP_SECONDS = 60, 0.5
# Progress is written at most once a second: the steps of one such interval may be redone.
STEPS_PER_PROGRESS_WRITE = 2


@pytest.fixture(scope="module")
def operator(
    state_dir: Path, control_plane: ControlPlane, node_agents: list[NodeAgentHandle]
) -> Iterator[OperatorProcess]:
    install_crd(control_plane)
    process = start_operator(
        state_dir, control_plane.kubeconfig, name="operator-resume", namespaces=[NAMESPACE]
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def world(
    control_plane: ControlPlane,
    kube: KubeClient,
    river_database: RiverDatabase,
    worker_binary: Path,
    operator: OperatorProcess,
) -> Iterator[Scenario]:
    dsn = river_database()
    migrate_heartbeats(dsn)
    scenario = new_world(control_plane, kube, NAMESPACE, dsn, worker_binary)
    # The restart's follow-up waits longer than the node controller's grace period (15 s here),
    # as the default 2m does: a lost node's job is judged NodeLost before the restart of its
    # pod (which a dead kubelet never carries out) turns into a retry.
    actions = {"unresponsive": {"action": "RestartPod", "then": "Retry", "after": "40s"}}
    scenario.apply_policy(POLICY, fast_policy_spec(actions=actions))
    scenario.wait_condition(POLICY, "Ready", "True", timeout=60)
    yield scenario
    scenario.cleanup()


class Logs:
    """Container logs of the test's pods, wherever they ran (the node agents keep them)."""

    def __init__(self, world: Scenario, agents: list[NodeAgentHandle]) -> None:
        self.world = world
        self.agents = {agent.node_name: agent for agent in agents}
        self.node_of: dict[str, str] = {}

    def remember(self, pod: str) -> str:
        spec = (self.world.pod(pod) or {}).get("spec") or {}
        self.node_of[pod] = spec["nodeName"]
        return pod

    def of(self, pod: str) -> str:
        agent = self.agents[self.node_of[pod]]
        return agent.container_log(self.world.namespace, pod, "worker")

    def steps_done(self, pod: str, job_id: int) -> list[int]:
        pattern = rf'msg="sleep step done" job_id={job_id} attempt=\d+ step=(\d+)'
        return [int(step) for step in re.findall(pattern, self.of(pod))]

    def resumed_from(self, pod: str, job_id: int) -> int | None:
        pattern = rf'msg="sleep job resumes" job_id={job_id} attempt=\d+ from_step=(\d+)'
        found = re.findall(pattern, self.of(pod))
        return int(found[-1]) if found else None


def sleep_job(world: Scenario, queue: str, **misbehave: int) -> int:
    args = {"seconds": STEPS * STEP_SECONDS, "progress_every_seconds": STEP_SECONDS}
    return world.enqueue("sleep", {**args, "log_steps": True, **misbehave}, queue=queue)


def assert_resumed(logs: Logs, job_id: int, first: str, second: str) -> None:
    """The second pod resumed at the first one's last checkpoint and finished the job; the
    steps done twice are at most those of one progress write interval."""
    start = logs.resumed_from(second, job_id)
    done_first, done_second = logs.steps_done(first, job_id), logs.steps_done(second, job_id)
    assert start is not None and start >= 10, (start, logs.of(second)[-2000:])
    assert done_second == list(range(start + 1, STEPS + 1))
    redone = len(done_first) - start
    print(f"job {job_id}: {len(done_first)} steps on {first}, resumed at {start} on {second}")
    assert 0 <= redone <= STEPS_PER_PROGRESS_WRITE, (done_first[-5:], start)
    assert len(done_first) + len(done_second) <= STEPS + STEPS_PER_PROGRESS_WRITE


def test_a_job_on_a_lost_node_resumes_on_another_pod_from_its_last_step(
    world: Scenario,
    kube: KubeClient,
    start_agent: StartAgent,
    node_agents: list[NodeAgentHandle],
) -> None:
    doomed = start_agent("node-resume")
    logs = Logs(world, [*node_agents, doomed])
    first = logs.remember(world.worker_pod("lost-w", "lost", node="node-resume"))
    job = sleep_job(world, "lost")
    world.wait_job(job, "running", timeout=30)
    second = logs.remember(world.worker_pod("lost-standby", "lost", node=node_agents[0].node_name))
    wait_for(lambda: len(logs.steps_done(first, job)) >= 30, 60, "step 30 on the doomed node")

    doomed.fail_node("kill")
    done = world.wait_job(job, "completed", timeout=120)

    errors = lifeguard_errors(done)
    assert errors and errors[-1].startswith("lifeguard: InfrastructureDeath/NodeLost"), errors
    checkpoint = done["metadata"][RESUME_KEY]
    assert checkpoint["attempt"] == 1 and checkpoint["progress"]["steps"] == STEPS
    assert_resumed(logs, job, first, second)
    doomed.stop()
    kube.delete("/api/v1/nodes/node-resume")


def test_an_oom_killed_job_retried_resumes_from_its_last_step(
    world: Scenario, node_agents: list[NodeAgentHandle]
) -> None:
    logs = Logs(world, node_agents)
    first = logs.remember(world.worker_pod("oom-w", "oom", memory="96Mi"))
    job = sleep_job(world, "oom", oom_at_step=15)
    world.wait_job(job, "running", timeout=30)
    second = logs.remember(world.worker_pod("oom-standby", "oom"))

    done = world.wait_job(job, "completed", timeout=120)

    errors = lifeguard_errors(done)
    assert errors and errors[0].startswith("lifeguard: ResourceExhausted/OOMKilled"), errors
    assert done["attempt"] == 2, "the OOM kill counts the attempt"
    assert logs.resumed_from(second, job) == 15
    assert logs.steps_done(first, job) == list(range(1, 16))


def test_a_frozen_job_restarted_then_retried_resumes_from_its_last_step(
    world: Scenario, node_agents: list[NodeAgentHandle]
) -> None:
    logs = Logs(world, node_agents)
    first = logs.remember(world.worker_pod("frozen-w", "frozen", grace_seconds=2))
    job = sleep_job(world, "frozen", freeze_at_step=12)
    world.wait_job(job, "running", timeout=30)
    second = logs.remember(world.worker_pod("frozen-standby", "frozen"))

    world.wait_event("PodRestarted", timeout=60, containing=f"job {job} ")
    done = world.wait_job(job, "completed", timeout=120)

    assert lifeguard_errors(done), done
    assert logs.resumed_from(second, job) == 12
    assert logs.steps_done(first, job) == list(range(1, 13))


def test_a_deleted_pods_job_runs_again_at_once_on_a_standby_and_starts_over_without_progress(
    world: Scenario, node_agents: list[NodeAgentHandle]
) -> None:
    """The job never reports progress (`hang`): no checkpoint is written, it starts over. The
    retry makes it available and wakes the standby, which fetches it within its poll interval
    at most (River's default 1 s), not after River's scheduler moves a retryable job."""
    world.worker_pod("gone-w", "gone")
    job = world.enqueue("hang", queue="gone")
    world.wait_job(job, "running", timeout=30)
    standby = world.worker_pod("gone-standby", "gone", env={"FETCH_POLL_INTERVAL": "10m"})
    time.sleep(2)

    deleted_at = time.monotonic()
    world.delete_pod("gone-w", grace=0)
    running = world.wait_running_on(job, standby, timeout=30)
    took = time.monotonic() - deleted_at

    print(f"pod deletion to running on the standby: {took:.2f}s")
    assert took < 15, "the standby fetched the job only after a poll or River's scheduler"
    assert running["attempt"] == 1, "the attempt was refunded"
    assert RESUME_KEY not in running["metadata"]
    errors = lifeguard_errors(running)
    assert errors and errors[0].startswith("lifeguard: InfrastructureDeath/"), errors
