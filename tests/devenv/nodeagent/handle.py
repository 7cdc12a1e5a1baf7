"""Starting a node agent as a detached process, and controlling it from tests and devenv."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devenv import procs
from devenv.nodeagent.proc import CGROUP_MEMORY_ROOT, remove_cgroup_tree

Json = dict[str, Any]
CGROUP_PARENT = "lifeguard"


def daemon_name(node_name: str) -> str:
    return f"nodeagent-{node_name}"


def agent_dir(state_dir: Path, node_name: str) -> Path:
    """The agent's own folder: control.json and one folder per pod (logs, working dir)."""
    return state_dir / "nodeagent" / node_name


def node_cgroup(work_dir: Path) -> Path:
    """The agent's memory cgroup, keyed by its folder: two environments on one machine (tests
    and a demo, say) may both have a node-1, and must never kill each other's processes."""
    key = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:12]
    return CGROUP_MEMORY_ROOT / CGROUP_PARENT / f"{work_dir.name}-{key}"


class NodeAgentError(RuntimeError):
    """The node agent did not start, or refused a control request."""


@dataclass
class NodeAgentHandle:
    node_name: str
    state_dir: Path
    daemon: procs.Daemon

    @property
    def pid(self) -> int:
        return self.daemon.pid

    @property
    def work_dir(self) -> Path:
        return agent_dir(self.state_dir, self.node_name)

    @classmethod
    def attach(cls, state_dir: Path, node_name: str) -> NodeAgentHandle:
        """The handle of an agent an earlier process started in `state_dir`."""
        name = daemon_name(node_name)
        pid_path = procs.run_dir(state_dir) / f"{name}.pid"
        entry = procs.read_pid_file(pid_path)
        if entry is None:
            raise NodeAgentError(f"no PID file {pid_path}")
        log_path = procs.log_dir(state_dir) / f"{name}.log"
        return cls(node_name, state_dir, procs.Daemon(name, entry[0], log_path, pid_path))

    def _request(self, method: str, path: str, body: Json | None = None) -> Any:
        control = json.loads((self.work_dir / "control.json").read_text())
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{control['port']}{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise NodeAgentError(f"{method} {path}: {exc.code}: {exc.read().decode()}") from exc

    def health(self) -> Json:
        answer: Json = self._request("GET", "/healthz")
        return answer

    def pods(self) -> list[Json]:
        """Pods this agent runs: namespace, name, uid, pids and memory mechanism per container."""
        answer: list[Json] = self._request("GET", "/pods")
        return answer

    @property
    def memory_mechanism(self) -> str:
        """cgroup-v1 or rss-polling: how memory limits are enforced on this node."""
        return str(self.health()["memory_mechanism"])

    def fail_node(self, mode: str = "kill") -> Json:
        """Stops Lease and status updates; SIGKILLs (kill) or SIGSTOPs (freeze) every pod."""
        answer: Json = self._request("POST", "/fail", {"mode": mode})
        return answer

    def pause_kubelet(self, seconds: float) -> Json:
        """Stops Lease and status updates for `seconds`, then resumes them; pods keep running."""
        answer: Json = self._request("POST", "/pause", {"seconds": seconds})
        return answer

    def freeze_pod(self, namespace: str, name: str) -> Json:
        answer: Json = self._request("POST", "/freeze", {"namespace": namespace, "name": name})
        return answer

    def thaw_pod(self, namespace: str, name: str) -> Json:
        answer: Json = self._request("POST", "/thaw", {"namespace": namespace, "name": name})
        return answer

    def kill_pod_process(self, namespace: str, name: str, sig: int | str = signal.SIGKILL) -> Json:
        body = {
            "namespace": namespace,
            "name": name,
            "signal": int(sig) if isinstance(sig, int) else sig,
        }
        answer: Json = self._request("POST", "/signal", body)
        return answer

    def container_log(self, namespace: str, name: str, container: str) -> str:
        """What a pod's container wrote (stdout and stderr), across restarts; "" if none.

        There is no kubelet API for `kubectl logs`; the agent keeps each container's output
        in <state>/nodeagent/<node>/pods/<namespace>_<name>_<uid>/<container>.log.
        """
        logs = sorted((self.work_dir / "pods").glob(f"{namespace}_{name}_*/{container}.log"))
        return "".join(path.read_text(errors="replace") for path in logs)

    def log_tail(self, lines: int = 60) -> str:
        return self.daemon.log_tail(lines)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (the agent kills its pods' processes), then SIGKILL; leftovers are killed."""
        self.daemon.stop(signal.SIGTERM, timeout=timeout)
        # An agent killed hard cannot clean up: its cgroups still hold its pods' processes.
        remove_cgroup_tree(node_cgroup(self.work_dir))


def start_node_agent(
    state_dir: Path,
    kubeconfig: Path,
    node_name: str,
    path_dirs: list[Path],
    *,
    timeout: float = 60.0,
    lease_renew_seconds: float | None = None,
) -> NodeAgentHandle:
    """Starts `python -m devenv.nodeagent` detached; returns once its Node is registered."""
    work = agent_dir(state_dir, node_name)
    work.mkdir(parents=True, exist_ok=True)
    (work / "control.json").unlink(missing_ok=True)
    tests_dir = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(tests_dir), env.get("PYTHONPATH", "")] if p)
    argv = [
        sys.executable,
        "-m",
        "devenv.nodeagent",
        "--kubeconfig",
        str(kubeconfig),
        "--node",
        node_name,
        "--state-dir",
        str(work),
        "--path",
        os.pathsep.join(str(p) for p in path_dirs),
    ]
    if lease_renew_seconds is not None:
        argv += ["--lease-renew-seconds", str(lease_renew_seconds)]
    daemon = procs.start_daemon(state_dir, daemon_name(node_name), argv, env=env, cwd=work)
    handle = NodeAgentHandle(node_name, state_dir, daemon)

    def registered() -> bool:
        return bool((work / "control.json").exists() and handle.health()["registered"])

    try:
        procs.wait_ready(daemon, registered, timeout=timeout, what="registered")
    except procs.DaemonError:
        handle.stop(timeout=5)
        raise
    return handle


def stop_node_agent(state_dir: Path, node_name: str, timeout: float = 20.0) -> bool:
    """Stops an agent by its PID file (for `devenv down`); True if one was running."""
    name = daemon_name(node_name)
    stopped = procs.stop_pid_file(procs.run_dir(state_dir) / f"{name}.pid", signal.SIGTERM, timeout)
    remove_cgroup_tree(node_cgroup(agent_dir(state_dir, node_name)))
    return stopped
