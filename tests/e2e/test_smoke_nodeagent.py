"""Smoke: pods run as real processes on the node agents, on the real control plane.

Every pod here is a local process started by a node agent; its status is what the process
really did (exit code, OOM kill, signals), and node failure plays out through the real
node-lifecycle and taint-eviction controllers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devenv.nodeagent import NodeAgentHandle
from devenv.nodeagent.handle import node_cgroup
from devenv.nodeagent.kube import ApiError, KubeClient
from devenv.nodeagent.spec import pod_hostname
from devenv.nodeagent.testing import (
    NAMESPACE,
    condition,
    container,
    create_pod,
    get_pod,
    main_status,
    pod_manifest,
    process_gone,
    terminated,
    unique,
    wait_for,
    wait_running,
    worker_insert,
)

pytestmark = pytest.mark.e2e

Json = dict[str, Any]
RiverDatabase = Callable[..., str]
WORKER_ENV = {"HEARTBEAT_STORE": "none", "EXIT_WHEN_IDLE": "3s", "MAX_WORKERS": "2"}


def river_job(dsn: str, job_id: int) -> tuple[str, list[str]]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT state::text, coalesce(attempted_by, '{}') FROM river_job WHERE id = %s",
            (job_id,),
        ).fetchone()
    assert row is not None, f"River job {job_id} is missing"
    return row[0], list(row[1])


def client_id_prefix(pod_name: str) -> str:
    """River's default client ID starts with the hostname, dots as underscores, <= 60 chars."""
    return pod_hostname(pod_name).replace(".", "_")[:60] + "_"


@pytest.mark.parametrize("name_length", [0, 70], ids=["short-name", "name-over-63-chars"])
def test_pod_process_has_the_pod_name_as_hostname_and_reports_its_exit(
    kube: KubeClient, node_agents: list[NodeAgentHandle], name_length: int
) -> None:
    name = unique("hostname")
    name = name + "-" + "x" * (name_length - len(name) - 1) if name_length else name
    create_pod(kube, pod_manifest(name, container(["sh", "-c", "hostname; sleep 2; exit 3"])))

    running = main_status(wait_running(kube, name))["state"]["running"]
    pod = get_pod(kube, name)
    assert pod is not None
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"] == "127.0.0.1"
    assert (condition(pod, "Ready") or {}).get("status") == "True"
    ended = wait_for(lambda: terminated(get_pod(kube, name)), 60, "the container to exit")
    pod = get_pod(kube, name)

    assert ended["exitCode"] == 3
    assert ended["reason"] == "Error"
    assert ended["startedAt"] == running["startedAt"]
    assert ended["finishedAt"] >= ended["startedAt"]
    # FallbackToLogsOnError: the log tail is the message, and the log is what `hostname` said.
    assert ended["message"].strip() == pod_hostname(name)
    assert len(ended["message"].strip()) <= 63
    assert pod is not None
    assert pod["status"]["phase"] == "Failed"
    assert main_status(pod)["restartCount"] == 0
    node = next(a for a in node_agents if a.node_name == pod["spec"]["nodeName"])
    cgroup = node_cgroup(node.work_dir) / pod["metadata"]["uid"]
    wait_for(lambda: not cgroup.exists(), 10, "the pod's cgroup to be removed")


def test_on_failure_pod_is_restarted_with_its_last_state_kept(
    kube: KubeClient, node_agents: list[NodeAgentHandle]
) -> None:
    name = unique("restarts")
    pod = pod_manifest(name, container(["sh", "-c", "exit 7"]), restart_policy="OnFailure")
    create_pod(kube, pod)

    status = wait_for(
        lambda: (s := main_status(get_pod(kube, name))).get("restartCount", 0) >= 1 and s,
        60,
        "a restart",
    )

    assert status["lastState"]["terminated"]["exitCode"] == 7
    assert status["lastState"]["terminated"]["reason"] == "Error"
    kube.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}", {"gracePeriodSeconds": 0})


def test_deleting_a_pod_sends_sigterm_then_completes_the_deletion(
    kube: KubeClient, node_agents: list[NodeAgentHandle]
) -> None:
    name = unique("graceful")
    script = "trap 'echo got SIGTERM; exit 0' TERM; while true; do sleep 0.1; done"
    create_pod(kube, pod_manifest(name, container(["sh", "-c", script])))
    pod = wait_running(kube, name)
    node = next(a for a in node_agents if a.node_name == pod["spec"]["nodeName"])
    pids = next(p["pids"]["main"] for p in node.pods() if p["name"] == name)

    kube.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}", {"gracePeriodSeconds": 30})

    # Well inside the 30 s grace period: the process ended on SIGTERM and the agent
    # completed the deletion, as a kubelet does.
    wait_for(lambda: get_pod(kube, name) is None, 20, "the pod object to be gone")
    assert process_gone(pids)


def test_frozen_pod_process_stops_and_a_sigkill_from_outside_is_an_error_not_oom(
    kube: KubeClient, node_agents: list[NodeAgentHandle]
) -> None:
    name = unique("frozen")
    create_pod(kube, pod_manifest(name, container(["sleep", "3600"]), restart_policy="Never"))
    pod = wait_running(kube, name)
    node = next(a for a in node_agents if a.node_name == pod["spec"]["nodeName"])

    (pid,) = node.freeze_pod(NAMESPACE, name)["pids"]
    frozen = wait_for(lambda: process_state(pid) == "T", 10, "the process to stop")
    node.thaw_pod(NAMESPACE, name)
    thawed = wait_for(lambda: process_state(pid) in "SR", 10, "the process to continue")
    node.kill_pod_process(NAMESPACE, name, "KILL")
    ended = wait_for(lambda: terminated(get_pod(kube, name)), 30, "the container to end")

    assert frozen
    assert thawed
    assert ended["exitCode"] == 137
    assert ended["signal"] == 9
    assert ended["reason"] == "Error"


def test_job_pod_runs_the_worker_to_completion_through_the_job_controller(
    kube: KubeClient,
    node_agents: list[NodeAgentHandle],
    river_database: RiverDatabase,
    worker_binary: Path,
) -> None:
    dsn = river_database()
    job_id = worker_insert(worker_binary, dsn, "sleep", '{"seconds": 1}')
    name = unique("smoke-job")
    main = container(["worker", "run"], env={"DATABASE_URL": dsn, **WORKER_ENV})
    job: Json = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never"}}},
    }
    job["spec"]["template"]["spec"]["containers"] = [main]
    kube.create(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", job)

    def complete() -> Json | None:
        found = kube.get(f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}")
        failed = condition(found, "Failed")
        assert not failed or failed["status"] != "True", f"Job failed: {failed}"
        done = condition(found, "Complete")
        return found if done and done["status"] == "True" else None

    wait_for(complete, 120, "the Job to be Complete")
    pods = kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=f"job-name={name}")
    (pod,) = pods["items"]
    state, attempted_by = river_job(dsn, job_id)

    assert state == "completed"
    assert attempted_by[-1].startswith(client_id_prefix(pod["metadata"]["name"]))
    assert terminated(pod) is not None
    assert terminated(pod)["reason"] == "Completed"  # type: ignore[index]
    assert pod["status"]["phase"] == "Succeeded"


def test_worker_over_its_memory_limit_is_oom_killed_and_its_river_job_stays_running(
    kube: KubeClient,
    node_agents: list[NodeAgentHandle],
    river_database: RiverDatabase,
    worker_binary: Path,
) -> None:
    dsn = river_database()
    job_id = worker_insert(worker_binary, dsn, "eat", '{"mb_per_step": 16, "step_ms": 50}')
    name = unique("smoke-oom")
    main = container(["worker", "run"], env={"DATABASE_URL": dsn, **WORKER_ENV}, memory="128Mi")
    create_pod(kube, pod_manifest(name, main))

    ended = wait_for(lambda: terminated(get_pod(kube, name)), 120, "the worker to be killed")
    pod = get_pod(kube, name)
    state, attempted_by = river_job(dsn, job_id)

    assert ended["reason"] == "OOMKilled", ended
    assert ended["exitCode"] == 137
    assert pod is not None
    assert pod["status"]["phase"] == "Failed"
    # The very problem Lifeguard solves: River still believes the job runs.
    assert state == "running"
    assert attempted_by[-1].startswith(client_id_prefix(name))
    assert {a.memory_mechanism for a in node_agents} == {"cgroup-v1"}


@pytest.fixture
def doomed_node(
    start_agent: Callable[[str], NodeAgentHandle],
    kube: KubeClient,
    node_agents: list[NodeAgentHandle],
) -> Iterator[NodeAgentHandle]:
    """A node of its own for a test that fails it; removed afterwards with its pods.

    The healthy `node_agents` must exist: when every node of a zone is not ready, the
    node-lifecycle controller assumes a control-plane side outage ("master disruption mode")
    and evicts nothing.
    """
    agent = start_agent(unique("doomed"))
    yield agent
    agent.stop()
    pods = kube.get("/api/v1/pods", fieldSelector=f"spec.nodeName={agent.node_name}")
    paths = [
        f"/api/v1/namespaces/{p['metadata']['namespace']}/pods/{p['metadata']['name']}"
        for p in pods["items"]
    ]
    for path in [*paths, f"/api/v1/nodes/{agent.node_name}"]:
        try:
            kube.delete(path, {"gracePeriodSeconds": 0})
        except ApiError as exc:
            if exc.status != 404:
                raise


def process_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


@pytest.mark.parametrize("mode", ["kill", "freeze"])
def test_failed_node_goes_not_ready_and_its_pods_are_evicted_by_taint_eviction(
    kube: KubeClient, doomed_node: NodeAgentHandle, mode: str
) -> None:
    name = unique("on-doomed")
    manifest = pod_manifest(name, container(["sleep", "3600"]), node_name=doomed_node.node_name)
    create_pod(kube, manifest)
    wait_running(kube, name)
    (described,) = doomed_node.pods()
    pid = described["pids"]["main"]

    doomed_node.fail_node(mode)

    node_path = f"/api/v1/nodes/{doomed_node.node_name}"
    not_ready = wait_for(
        lambda: (c := condition(kube.get(node_path), "Ready")) and c["status"] != "True" and c,
        90,
        "the node-lifecycle controller to mark the node not ready",
    )
    evicted = wait_for(
        lambda: (p := get_pod(kube, name)) and p["metadata"].get("deletionTimestamp") and p,
        90,
        "taint eviction to delete the pod",
    )
    disruption = condition(evicted, "DisruptionTarget")

    assert not_ready["reason"] == "NodeStatusUnknown"
    assert disruption is not None
    assert disruption["status"] == "True"
    assert disruption["reason"] == "DeletionByTaintManager"
    # Pod and process go together: the node's processes really died or froze.
    assert process_gone(pid) if mode == "kill" else process_state(pid) == "T"
