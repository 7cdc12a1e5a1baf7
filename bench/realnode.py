"""The real node: OOM kill to retryable, read from the real kubelet's container status.

One worker pod at a time on the real node (kubelet + containerd + runc, tests/devenv/realnode),
each under a 64Mi limit running an `eat` job; the operator runs from its image, installed by
Helm, with Lifeguard's default policy. The kill moment is when the container's process
disappears from the host's /proc (polled every 10 ms: the API's finishedAt has whole seconds);
the end is the job leaving `running` in river_job (polled every BENCH_POLL_INTERVAL_S).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from bench.config import BenchConfig
from bench.figures import Results
from bench.watch import percentile
from devenv.controlplane import ControlPlane
from devenv.realnode_relay import container_pids
from devenv.realnode_world import RealScenario, real_world
from devenv.scenario import WORKER_LABELS, wait_for
from devenv.worker import build_worker

log = logging.getLogger("bench.realnode")

POLICY = {
    "database": {"secretRef": {"name": "river-db"}},
    "workers": {"podSelector": {"matchLabels": dict(WORKER_LABELS)}},
}


def run_realnode(config: BenchConfig, state_dir: Path, results: Results) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    plane = ControlPlane.start(state_dir)
    try:
        with real_world(
            state_dir / "realnode",
            plane,
            build_worker(),
            release="lg-bench",
            release_namespace="lg-bench-system",
            watched="bench-real",
            policy="bench",
            spec=POLICY,
        ) as world:
            samples = [
                _oom_to_retryable(world, i, config.poll_interval_s)
                for i in range(config.real_node_ooms)
            ]
    finally:
        plane.stop()
    if samples:
        results.set("real_node_oom_to_retryable_p99_s", round(percentile(samples, 99), 3))
        results.details["real_node_oom_to_retryable_s"] = [round(s, 3) for s in samples]


def _oom_to_retryable(world: RealScenario, index: int, poll_s: float) -> float:
    # A queue per pod: the earlier pods' retried jobs must not land in this one.
    queue = f"oom-{index}"
    pod = world.worker_pod(queue, queue, memory="64Mi")
    pids = container_pids(world.container_id(pod))
    assert pids, f"no process for pod {pod}"
    job = world.enqueue("eat", {"mb_per_step": 16, "step_ms": 100}, queue=queue)
    killed = wait_for(
        lambda: _gone(pids) and time.monotonic(), 60, f"the OOM kill in {pod}", step=0.01
    )
    left: float = wait_for(
        lambda: world.job(job)["state"] != "running" and time.monotonic(),
        120,
        f"job {job} to leave running",
        step=poll_s,
    )
    took = left - killed
    log.info("pod %s: OOM kill to retryable in %.3fs", pod, took)
    world.delete_pod(pod)
    return took


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)
