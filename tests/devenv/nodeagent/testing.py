"""Small helpers for tests that run pods on node agents: manifests, reads and waits."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any, TypeVar

from devenv.nodeagent.kube import ApiError, KubeClient

# Re-exported: the node agent's tests wait through these helpers.
from devenv.waiting import wait_for as wait_for  # noqa: PLC0414

Json = dict[str, Any]
T = TypeVar("T")
NAMESPACE = "default"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def container(
    command: list[str], *, env: dict[str, str] | None = None, memory: str | None = None
) -> Json:
    spec: Json = {
        "name": "main",
        "image": "lifeguard/test:dev",
        "command": command,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if memory is not None:
        spec["resources"] = {"limits": {"memory": memory}}
    return spec


def pod_manifest(
    name: str, main: Json, *, restart_policy: str = "Never", node_name: str | None = None
) -> Json:
    spec: Json = {"restartPolicy": restart_policy, "containers": [main]}
    if node_name is not None:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def create_pod(kube: KubeClient, manifest: Json) -> Json:
    return kube.create(f"/api/v1/namespaces/{NAMESPACE}/pods", manifest)


def get_pod(kube: KubeClient, name: str) -> Json | None:
    try:
        return kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def wait_running(kube: KubeClient, name: str, timeout: float = 60) -> Json:
    """Waits until the pod's (first) container runs; the pod as read then."""

    def running() -> Json | None:
        pod = get_pod(kube, name)
        return pod if (main_status(pod).get("state") or {}).get("running") else None

    return wait_for(running, timeout, f"pod {name}'s container to run")


def main_status(pod: Json | None) -> Json:
    """The first container's status ({} while there is none)."""
    statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
    status: Json = statuses[0]
    return status


def terminated(pod: Json | None) -> Json | None:
    state: Json | None = (main_status(pod).get("state") or {}).get("terminated")
    return state


def condition(obj: Json | None, kind: str) -> Json | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            found: Json = cond
            return found
    return None


def worker_insert(worker: Path, database_url: str, kind: str, args: str) -> int:
    """Inserts one River job with the example worker's `insert` (River's own client)."""
    done = subprocess.run(
        [str(worker), "insert", "--kind", kind, "--args", args],
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"worker insert failed: {done.stdout}{done.stderr}"
    ids: list[int] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids[0]


def process_gone(pid: int) -> bool:
    """True once `pid` no longer runs (exited, or a zombie nobody reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
