"""The whole local environment: PostgreSQL with River, the control plane and node agents,
and, on request, the real node (kubelet, containerd, runc; devenv.realnode).

`up` starts everything in a state folder and writes <state>/env.sh; `down` stops it all by the
PID files in <state>/run/, so it works from a different process than the one that started it.
"""

from __future__ import annotations

import importlib
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from devenv import controlplane, postgres, procs, river
from devenv.controlplane import ControlPlane
from devenv.postgres import PostgresCluster
from devenv.tools import tool_dir

if TYPE_CHECKING:
    from devenv.realnode_world import RealSite

DATABASE = "lifeguard"
NODE_AGENT_PREFIX = "nodeagent-"
REAL_NODE_PREFIX = "realnode-"
TOOLS = ("kubectl", "helm", "river", "etcd", "kube-apiserver")


class NodeAgent(Protocol):
    def stop(self) -> None: ...


# devenv.nodeagent.start_node_agent(state_dir, kubeconfig, node_name, path_dirs): a detached
# process with a PID file; `down` finds it again by that PID file.
StartNodeAgent = Callable[[Path, Path, str, list[Path]], NodeAgent]


@dataclass
class Environment:
    state_dir: Path
    postgres: PostgresCluster
    database_url: str
    control_plane: ControlPlane
    node_agents: list[NodeAgent] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # The real node and PostgreSQL's socket folder its pods mount; None unless asked for.
    real_site: RealSite | None = None

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env.sh"


def node_name(index: int) -> str:
    return f"node-{index}"


def _node_agent_starter() -> StartNodeAgent:
    module = importlib.import_module("devenv.nodeagent")
    starter: StartNodeAgent = module.start_node_agent
    return starter


def pod_path_dirs() -> list[Path]:
    """Folders whose commands pods may run: the example worker's bin folder."""
    worker = importlib.import_module("devenv.worker")
    binary: Path = worker.build_worker()
    return [binary.parent]


def up(state_dir: Path, nodes: int = 2, *, real_node: bool = False) -> Environment:
    """Starts everything and returns once it is ready; the daemons keep running afterwards.

    `real_node` also starts the real node (devenv.realnode, node `realnode`, tainted): its
    tools and images must be built (`make node-tools images`; tools/images.sh runs here too),
    and PostgreSQL then also serves its unix socket in <state>/pg-socket for the node's pods.

    On failure, stops what it started and keeps the state folder (logs in <state>/logs/).
    """
    state_dir = state_dir.resolve()
    _start_fresh(state_dir)
    timings: dict[str, float] = {}
    try:
        began = time.monotonic()
        socket_dir = state_dir / "pg-socket" if real_node else None
        cluster = PostgresCluster.start(state_dir, socket_dir=socket_dir)
        database_url = river.create_database(cluster, DATABASE)
        timings["postgres"] = time.monotonic() - began

        began = time.monotonic()
        plane = ControlPlane.start(state_dir)
        timings["control_plane"] = time.monotonic() - began

        environment = Environment(state_dir, cluster, database_url, plane, timings=timings)
        if nodes:
            began = time.monotonic()
            start_node_agent = _node_agent_starter()
            path_dirs = pod_path_dirs()
            for index in range(1, nodes + 1):
                name = node_name(index)
                # The node's own identity, as a kubelet has: the Node authorizer and the
                # NodeRestriction admission plugin limit it to its node and its pods.
                kubeconfig = plane.user_kubeconfig(f"system:node:{name}", ["system:nodes"])
                environment.node_agents.append(
                    start_node_agent(state_dir, kubeconfig, name, path_dirs)
                )
            timings["node_agents"] = time.monotonic() - began
        if socket_dir is not None:
            began = time.monotonic()
            realnode = importlib.import_module("devenv.realnode")
            world = importlib.import_module("devenv.realnode_world")
            node = realnode.start(state_dir, plane)
            environment.real_site = world.RealSite(node, socket_dir, cluster.port)
            timings["real_node"] = time.monotonic() - began
        write_env_file(environment)
        return environment
    except BaseException:
        down(state_dir)
        raise


def _start_fresh(state_dir: Path) -> None:
    """Empties a state folder left by an earlier, stopped `up`; refuses a running one.

    Reusing old etcd or PostgreSQL data would mix a new PKI with old service account tokens
    and an existing database, so every `up` starts from nothing.
    """
    running = [p.stem for p in procs.run_dir(state_dir).glob("*.pid") if procs.pid_alive(p)]
    if running:
        raise RuntimeError(
            f"{state_dir} is in use ({', '.join(sorted(running))} running): "
            f"run `python -m devenv down --state-dir {state_dir}` first"
        )
    if state_dir.exists():
        for entry in state_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    state_dir.mkdir(parents=True, exist_ok=True)


def write_env_file(environment: Environment) -> Path:
    """<state>/env.sh: KUBECONFIG, DATABASE_URL, PATH with the tools, LIFEGUARD_STATE_DIR."""
    bin_dirs = [str(tool_dir(name)) for name in TOOLS]
    lines = [
        "# Generated by `python -m devenv up`; source it to use this environment.",
        f"export KUBECONFIG={shlex.quote(str(environment.control_plane.kubeconfig))}",
        f"export DATABASE_URL={shlex.quote(environment.database_url)}",
        f"export LIFEGUARD_STATE_DIR={shlex.quote(str(environment.state_dir))}",
        f'export PATH={shlex.quote(":".join(dict.fromkeys(bin_dirs)))}:"$PATH"',
    ]
    environment.env_file.write_text("\n".join(lines) + "\n")
    return environment.env_file


def down(state_dir: Path) -> list[str]:
    """Stops everything an `up` started in `state_dir`; returns the names of what it stopped.

    Node agents (and anything else with a PID file in <state>/run/) go first, so their pod
    processes end while the apiserver can still record it; PostgreSQL goes last.
    """
    state_dir = state_dir.resolve()
    runs = procs.run_dir(state_dir)
    known = {*controlplane.DAEMONS, "postgres"}
    stopped: list[str] = []
    # The real node first: its containers, mounts, bridge and cgroups go with it.
    if any(runs.glob(f"{REAL_NODE_PREFIX}*.pid")) and importlib.import_module(
        "devenv.realnode"
    ).stop(state_dir):
        stopped.append("realnode")
    for pid_file in sorted(runs.glob("*.pid")):
        if pid_file.stem in known or pid_file.stem.startswith(REAL_NODE_PREFIX):
            continue
        if pid_file.stem.startswith(NODE_AGENT_PREFIX):
            # The node agent's own stop also removes its pods' memory cgroups.
            stop_agent = importlib.import_module("devenv.nodeagent").stop_node_agent
            if stop_agent(state_dir, pid_file.stem.removeprefix(NODE_AGENT_PREFIX)):
                stopped.append(pid_file.stem)
        elif procs.stop_pid_file(pid_file):
            stopped.append(pid_file.stem)
    for name in controlplane.DAEMONS:
        if procs.stop_pid_file(runs / f"{name}.pid"):
            stopped.append(name)
    if postgres.stop(state_dir):
        stopped.append("postgres")
    return stopped
