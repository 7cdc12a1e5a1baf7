"""Operator cost at scale: pods without processes on a node no agent runs, and their jobs.

A "ghost" Node is registered and kept Ready by this process (Lease and Ready condition, as the
node agent does), so the node-lifecycle controller leaves its pods alone. Each ghost pod is
created in the API and given a Running status with a started container; its River job names it
in attempted_by and gets fresh beats from a background UPDATE, so every job is Healthy and the
operator does its steady-state work: watch pods, scan, judge, report.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import seed
from bench.cluster_env import Env
from bench.figures import Results
from devenv import river
from devenv.nodeagent.kube import MERGE, KubeClient
from devenv.nodeagent.node import NodeHeartbeat
from devenv.scenario import Scenario, new_world, wait_for

log = logging.getLogger("bench")

NAMESPACE = "bench-scale"
GHOST_NODE = "ghost-1"
LABELS = {"app": "scale-worker"}
QUEUE = "scale"
BEAT_EVERY_S = 5.0
IDLE_FIGURE_JOBS = 1_000
SCALE_FIGURE_PODS = 10_000


def measure_scale(env: Env, results: Results) -> None:
    config = env.config
    if config.idle_jobs == 0 and config.scale_pods == 0:
        return
    assert env.operator is not None
    pid = env.operator.daemon.pid
    stop = threading.Event()
    ghost = NodeHeartbeat(env.kube, GHOST_NODE, stop)
    ghost.register()  # as the node agent does: the Node, its status and Lease, then renewals
    ghost.start()
    try:
        dsn = river.create_database(env.postgres, "scale", heartbeats=True)
        world = new_world(env.plane, env.kube, NAMESPACE, dsn, env.worker)
        beater = threading.Thread(target=beat_all, args=(dsn, stop), name="beater", daemon=True)
        beater.start()
        world.apply_policy(
            "scale",
            {
                "database": {"secretRef": {"name": "river-db"}},
                "selector": {"queues": [QUEUE]},
                "workers": {"podSelector": {"matchLabels": dict(LABELS)}},
                "safety": {"mode": "DryRun"},
            },
        )
        started = datetime.now(UTC)
        created = 0
        if config.idle_jobs:
            created = _add_ghosts(env.kube, dsn, created, config.idle_jobs, started)
            _wait_healthy(world, created)
            time.sleep(10)  # let start-up work (first listings, status writes) settle
            cpu = cpu_seconds(pid)
            window_start = time.monotonic()
            time.sleep(config.idle_window_s)
            used = cpu_seconds(pid) - cpu
            elapsed = time.monotonic() - window_start
            # The figure's name fixes its size; other sizes are kept in the details only.
            if created == IDLE_FIGURE_JOBS:
                results.set("operator_cpu_idle_pct_1k_jobs", round(100 * used / elapsed, 2))
            results.details["idle"] = {
                "cpu_pct": round(100 * used / elapsed, 2),
                "jobs": created,
                "window_s": round(elapsed, 1),
                "cpu_s": round(used, 2),
                "rss_mb": rss_mb(pid),
            }
        if config.scale_pods > created:
            created = _add_ghosts(env.kube, dsn, created, config.scale_pods - created, started)
            _wait_healthy(world, created)
            time.sleep(15)  # a few more scans and status writes at full size
            rss = rss_mb(pid)
            if created == SCALE_FIGURE_PODS:
                results.set("operator_rss_mb_10k_pods", rss)
            results.details["scale"] = {
                "pods": created,
                "jobs": created,
                "rss_mb": rss,
                "peak_rss_mb": status_mb(pid, "VmHWM"),
                "status_jobs": (world.policy("scale").get("status") or {}).get("jobs"),
            }
    finally:
        stop.set()


def _add_ghosts(kube: KubeClient, dsn: str, first: int, count: int, started: datetime) -> int:
    """Creates pods ghost-<first..first+count-1>, Running, and one running job for each."""
    began = time.monotonic()
    names = [f"ghost-{index}" for index in range(first, first + count)]
    create_ghost_pods(kube, [(NAMESPACE, name) for name in names], GHOST_NODE, started)
    with psycopg.connect(dsn, autocommit=True) as conn:
        seed.add_running_jobs(
            conn,
            count,
            queue=QUEUE,
            first=first,
            client_sql=f"'ghost-' || (i - 1) || '_{client_start(started)}'",
        )
    log.info("scale: %d ghost pods and jobs added in %.1fs", count, time.monotonic() - began)
    return first + count


def create_ghost_pods(
    kube: KubeClient, pods: list[tuple[str, str]], node: str, started: datetime
) -> None:
    """Creates each (namespace, name) pod on `node` and gives it a Running status; its container
    started before its River client (`client_start`), which started before its job's attempt."""
    container_started = (started - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def one(pod: tuple[str, str]) -> None:
        namespace, name = pod
        path = f"/api/v1/namespaces/{namespace}/pods"
        kube.create(path, ghost_pod(name, node))
        kube.patch(f"{path}/{name}/status", running_status(container_started), MERGE)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(one, pods))


def client_start(started: datetime) -> str:
    """The start time in a ghost's River client ID (River's format), after its container's."""
    return (started - timedelta(hours=2)).strftime("%Y_%m_%dT%H_%M_%S_%f")


def ghost_pod(name: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "worker", "image": "lifeguard/example-worker:dev"}],
            # Nothing may evict them while the bench measures.
            "tolerations": [{"operator": "Exists"}],
        },
    }


def running_status(started_at: str) -> dict[str, Any]:
    return {
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "worker",
                    "image": "lifeguard/example-worker:dev",
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": started_at}},
                }
            ],
        }
    }


def beat_all(dsn: str, stop: threading.Event) -> None:
    """Fresh beats for every scale job, as their (absent) workers' middleware would write."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.wait(BEAT_EVERY_S):
            conn.execute("UPDATE river_job_heartbeat SET beat_at = now()")


def _wait_healthy(world: Scenario, count: int) -> None:
    def healthy() -> bool:
        jobs = (world.policy("scale").get("status") or {}).get("jobs") or {}
        return bool(jobs.get("running") == count and jobs.get("healthy") == count)

    try:
        wait_for(healthy, 300, f"the operator to judge {count} scale jobs healthy", step=2)
    except AssertionError:
        status = world.policy("scale").get("status")
        raise AssertionError(f"scale policy never saw {count} healthy jobs: {status}") from None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise KeyError(f"{key} not in /proc/{pid}/status")


def rss_mb(pid: int) -> float:
    return status_mb(pid, "VmRSS")
