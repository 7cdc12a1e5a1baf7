"""Runs the Lifeguard operator (`lifeguard run`) as a separate process against the local cluster."""

from __future__ import annotations

import os
import sys
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

from devenv import procs
from devenv.ports import free_port


class OperatorProcess:
    """A running operator: its daemon (PID, log) and its health and metrics ports."""

    def __init__(
        self, daemon: procs.Daemon, health_port: int, metrics_port: int, identity: str = ""
    ) -> None:
        self.daemon = daemon
        self.health_port = health_port
        self.metrics_port = metrics_port
        # Its name in the leader Lease.
        self.identity = identity

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as response:
            text: str = response.read().decode()
            return text

    def leader_gauge(self) -> float | None:
        """`lifeguard_leader` as this process exports it (None when it does not answer)."""
        try:
            text = self.metrics()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("lifeguard_leader "):
                return float(line.split()[1])
        return None

    def log_tail(self, lines: int = 80) -> str:
        return self.daemon.log_tail(lines)

    def log_text(self) -> str:
        return self.daemon.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> None:
        self.daemon.stop(timeout=timeout)


def start_operator(
    state_dir: Path,
    kubeconfig: Path,
    *,
    name: str = "operator",
    namespaces: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
    lease: tuple[str, str] | None = None,
) -> OperatorProcess:
    """Starts `lifeguard run` and waits until its liveness endpoint answers.

    `lease` is the leader Lease (namespace, name) it campaigns for; operators sharing one elect
    a leader. Without it, each process gets a Lease of its own in `default`, so it leads at
    once and tests that start operators one after another never wait for each other's terms.
    """
    health_port, metrics_port = free_port(), free_port()
    identity = f"{name}-{uuid.uuid4().hex[:6]}"
    lease_namespace, lease_name = lease or ("default", f"lifeguard-{identity}")
    scope = [arg for ns in namespaces for arg in ("--namespace", ns)] or ["--all-namespaces"]
    argv = [
        sys.executable,
        "-m",
        "lifeguard.cli",
        "run",
        *scope,
        "--health-port",
        str(health_port),
        "--metrics-port",
        str(metrics_port),
        "--log-level",
        "debug" if os.environ.get("LIFEGUARD_DEBUG") else "info",
        "--leader-election-namespace",
        lease_namespace,
        "--leader-election-name",
        lease_name,
        "--leader-election-identity",
        identity,
        *extra_args,
    ]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    daemon = procs.start_daemon(state_dir, name, argv, env=env)
    process = OperatorProcess(daemon, health_port, metrics_port, identity)
    procs.wait_ready(daemon, process.healthy, timeout=timeout, what="answering /healthz")
    return process
