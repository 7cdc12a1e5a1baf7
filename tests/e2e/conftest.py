"""End-to-end fixtures: node agents on the real control plane, and an admin API client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle, start_node_agent
from devenv.nodeagent.kube import KubeClient

NODE_NAMES = ("node-1", "node-2")

StartAgent = Callable[[str], NodeAgentHandle]


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> KubeClient:
    """The cluster admin's API client (JSON in, JSON out)."""
    return KubeClient(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def start_agent(
    state_dir: Path, control_plane: ControlPlane, worker_binary: Path
) -> Iterator[StartAgent]:
    """Starts node agents as a kubelet would run: each with its node's own identity.

    Pods find the example worker on the agents' PATH. Every agent is stopped at the end.
    """
    started: list[NodeAgentHandle] = []

    def start(node_name: str) -> NodeAgentHandle:
        kubeconfig = control_plane.user_kubeconfig(f"system:node:{node_name}", ["system:nodes"])
        handle = start_node_agent(state_dir, kubeconfig, node_name, [worker_binary.parent])
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture(scope="session")
def node_agents(start_agent: StartAgent) -> list[NodeAgentHandle]:
    """Two healthy nodes, node-1 and node-2, for the whole session (never failed by tests)."""
    return [start_agent(name) for name in NODE_NAMES]
