"""Production shapes of worker pods for end-to-end scenarios: sidecars next to the worker,
native sidecars (restartable init containers), and workers run by a batch/v1 Job.

Each helper builds on a `Scenario` (its namespace, database and worker binary) and speaks of
what a user deploys, so the tests read like the story they check.
"""

from __future__ import annotations

from typing import Any

from devenv.scenario import WORKER_LABELS, Scenario, wait_for

Json = dict[str, Any]

WORKER_IMAGE = "lifeguard/example-worker:dev"


def worker_container(world: Scenario, queue: str, env: dict[str, str] | None = None) -> Json:
    """The example River worker on `queue`, beating every second unless `env` says otherwise."""
    variables = {
        "DATABASE_URL": world.dsn,
        "WORKER_QUEUES": queue,
        "HEARTBEAT_INTERVAL": "1s",
        "SHUTDOWN_TIMEOUT": "2s",
        **({"RIVER_SCHEMA": world.schema} if world.schema else {}),
        **(env or {}),
    }
    return {
        "name": "worker",
        "image": WORKER_IMAGE,
        "command": ["worker", "run"],
        "env": [{"name": k, "value": v} for k, v in variables.items()],
    }


def flapping_sidecar(name: str = "cloud-sql-proxy", every: float = 3) -> Json:
    """A sidecar that exits 1 every `every` seconds (a proxy that keeps losing its upstream)."""
    return {"name": name, "image": "busybox", "command": ["sh", "-c", f"sleep {every}; exit 1"]}


def pod_with_sidecar(
    world: Scenario,
    name: str,
    queue: str,
    labels: dict[str, str],
    *,
    sidecar: Json,
    native: bool = False,
    restart_policy: str = "Always",
) -> str:
    """A worker pod with a sidecar: a second container, or a native sidecar (an init container
    with restartPolicy Always) when `native`. Waits until the worker runs."""
    spec: Json = {
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 5,
        "containers": [worker_container(world, queue)],
    }
    if native:
        spec["initContainers"] = [{**sidecar, "restartPolicy": "Always"}]
    else:
        spec["containers"].append(sidecar)
    world.kube.create(
        f"/api/v1/namespaces/{world.namespace}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {**WORKER_LABELS, **labels}},
            "spec": spec,
        },
    )
    world.pods.append(name)
    wait_for(lambda: _worker_running(world.pod(name)), 60, f"pod {name}'s worker to run")
    return name


def restarts(pod: Json | None, container: str) -> int:
    """The restart count of a container or native sidecar of `pod` (0 when not reported)."""
    status = (pod or {}).get("status") or {}
    for entry in [
        *(status.get("containerStatuses") or []),
        *(status.get("initContainerStatuses") or []),
    ]:
        if entry.get("name") == container:
            return int(entry.get("restartCount") or 0)
    return 0


def _worker_running(pod: Json | None) -> bool:
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
    return any(
        s.get("name") == "worker" and (s.get("state") or {}).get("running") for s in statuses
    )


def worker_job(
    world: Scenario,
    name: str,
    queue: str,
    labels: dict[str, str],
    *,
    active_deadline: int | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """A batch/v1 Job whose one pod runs the example worker on `queue`.

    Its jobs outlast the pod's grace period (River would wait 60 s for them, the kubelet kills
    the pod after 2 s), as long jobs do: River cannot hand them back, Lifeguard has to.
    """
    spec: Json = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": {**WORKER_LABELS, **labels}},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 2,
                "containers": [
                    worker_container(world, queue, {"SHUTDOWN_TIMEOUT": "60s", **(env or {})})
                ],
            },
        },
    }
    if active_deadline is not None:
        spec["activeDeadlineSeconds"] = active_deadline
    world.kube.create(
        f"/apis/batch/v1/namespaces/{world.namespace}/jobs",
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec},
    )
    return name


def job_pods(world: Scenario, job: str) -> list[Json]:
    found = world.kube.get(
        f"/api/v1/namespaces/{world.namespace}/pods",
        labelSelector=f"batch.kubernetes.io/job-name={job}",
    )
    return list(found.get("items") or [])


def suspend_job(world: Scenario, job: str) -> None:
    """What Kueue does to preempt a Job: spec.suspend = true (the controller deletes its pods)."""
    world.kube.patch(
        f"/apis/batch/v1/namespaces/{world.namespace}/jobs/{job}",
        {"spec": {"suspend": True}},
        content_type="application/merge-patch+json",
    )
