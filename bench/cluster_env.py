"""The cluster bench's environment: PostgreSQL, control plane, node agents, the operator.

Also the small verbs the figures use: worker pods pinned to a node, jobs enqueued by the
example worker's own `insert`, deletions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import BenchConfig
from bench.watch import JobWatch
from devenv import controlplane, river
from devenv.controlplane import ControlPlane
from devenv.nodeagent import NodeAgentHandle, start_node_agent
from devenv.nodeagent.kube import KubeClient
from devenv.operator import OperatorProcess, start_operator
from devenv.postgres import PostgresCluster
from devenv.scenario import WORKER_LABELS, Scenario, install_crd, new_world
from devenv.worker import build_worker

log = logging.getLogger("bench")

NAMESPACE = "bench"
# What the bench's operators watch, and the Lease they share (failover figures).
OPERATOR_NAMESPACES = [NAMESPACE, "bench-scale"]
BENCH_LEASE = ("default", "lifeguard-bench")
RESCUER_NAMESPACE = "bench-rescuer"
CHAOS_NODES = ("node-1", "node-2")
LOST_NODE = "node-3"
STUCK_TIMEOUT_S = 20.0
# Lifeguard's defaults (10 s beats, 3 missed) on every worker of the policy's namespace.
WORKER_ENV = {"HEARTBEAT_INTERVAL": "10s", "SHUTDOWN_TIMEOUT": "2s"}
# The eat kind allocates this much per step: an OOM kill within a second under 64Mi.
EAT_ARGS = {"mb_per_step": 16, "step_ms": 100}


@dataclass
class Env:
    config: BenchConfig
    state_dir: Path
    postgres: PostgresCluster
    plane: ControlPlane
    kube: KubeClient
    worker: Path
    agents: dict[str, NodeAgentHandle]
    world: Scenario
    watch: JobWatch
    operator: OperatorProcess | None = None
    healthy_jobs: list[int] = field(default_factory=list)


# -- the environment ---------------------------------------------------------------------


@contextmanager
def environment(config: BenchConfig, state_dir: Path) -> Iterator[Env]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        postgres = PostgresCluster.start(state_dir)
        stack.callback(postgres.stop)
        dsn = river.create_database(postgres, "lifeguard", heartbeats=True)
        # Node loss is judged against Kubernetes' own default (50 s since 1.32), not the
        # devenv's short test setting, unless BENCH_NODE_MONITOR_GRACE says otherwise.
        controlplane.NODE_MONITOR_GRACE = config.node_monitor_grace
        plane = ControlPlane.start(state_dir)
        stack.callback(plane.stop)
        install_crd(plane)
        worker = build_worker()
        agents: dict[str, NodeAgentHandle] = {}
        for node in (*CHAOS_NODES, LOST_NODE):
            kubeconfig = plane.user_kubeconfig(f"system:node:{node}", ["system:nodes"])
            # A kubelet's default renewal period, so Lease ages look as they do in production.
            agents[node] = start_node_agent(
                state_dir, kubeconfig, node, [worker.parent], lease_renew_seconds=10.0
            )
            stack.callback(agents[node].stop)
        kube = KubeClient(plane.kubeconfig)
        world = new_world(plane, kube, NAMESPACE, dsn, worker)
        world.apply_policy(
            "bench",
            {
                "database": {"secretRef": {"name": "river-db"}},
                "workers": {"podSelector": {"matchLabels": dict(WORKER_LABELS)}},
                "tiers": [
                    {"match": {"queues": ["stuck"]}, "progressTimeout": f"{STUCK_TIMEOUT_S:g}s"}
                ],
            },
        )
        env = Env(
            config=config,
            state_dir=state_dir,
            postgres=postgres,
            plane=plane,
            kube=kube,
            worker=worker,
            agents=agents,
            world=world,
            watch=JobWatch(dsn, config.poll_interval_s),
        )
        env.operator = start_operator(
            state_dir, plane.kubeconfig, namespaces=OPERATOR_NAMESPACES, lease=BENCH_LEASE
        )
        # The failover figures replace the operator: stop whichever runs at the end.
        stack.callback(_stop_operator, env)
        world.wait_condition("bench", "Ready", "True", timeout=60)
        yield env


def _stop_operator(env: Env) -> None:
    if env.operator is not None:
        env.operator.stop()


def pod_body(
    world: Scenario,
    name: str,
    queue: str,
    *,
    node: str,
    env: dict[str, str] | None = None,
    memory: str | None = None,
) -> dict[str, Any]:
    """A worker pod as Scenario.worker_pod makes it, pinned to `node`, beating as by default."""
    return world.worker_pod_body(
        name, queue, node=node, env={**WORKER_ENV, **(env or {})}, memory=memory
    )


def start_pods(world: Scenario, bodies: list[dict[str, Any]]) -> list[str]:
    """Creates the pods at once, then waits until every one runs (a loaded node takes longer)."""
    return world.start_pods(bodies, timeout=90)


def enqueue(
    world: Scenario, kind: str, args: dict[str, Any], queue: str, count: int = 1
) -> list[int]:
    return world.enqueue_many(kind, args, queue=queue, count=count)


def delete_pods(world: Scenario, names: list[str]) -> None:
    for name in names:
        try:
            world.delete_pod(name, grace=0)
        except Exception as exc:  # already gone: fine for cleanup
            log.info("delete pod %s: %s", name, exc)
