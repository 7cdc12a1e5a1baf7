"""Many policies on one database: connections, scan cycles, memory and CPU at 1, 20 and 200.

One River database, 10k running jobs in 50 namespaces of 200 ghost pods (as bench/scale.py
makes them: Running in the API on a Node this process keeps Ready, no processes, fresh beats
written by an UPDATE). Each namespace has four queues. A size of P policies fills P/4
namespaces with three one-queue tier policies and then a team catch-all selecting the
namespace's four queues (it judges the queue no older tier takes; its Overlapping condition
names the tiers). A size of 1 is one team catch-all. Sizes run in turn on one operator
(`lifeguard run -A --max-database-connections 10`), each replacing the previous size's
policies, after the operator has had a minute to take in the pods.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench import seed
from bench.config import BenchConfig
from bench.figures import Results
from bench.scale import LABELS, beat_all, client_start, cpu_seconds, create_ghost_pods, rss_mb
from devenv import river
from devenv.controlplane import ControlPlane
from devenv.nodeagent.kube import KubeClient
from devenv.nodeagent.node import NodeHeartbeat
from devenv.operator import OperatorProcess, start_operator
from devenv.postgres import PostgresCluster
from devenv.scenario import POLICY_PATH, install_crd, new_world, policy_body, wait_for
from lifeguard.river.database import APPLICATION_NAME

log = logging.getLogger("bench")

GHOST_NODE = "ghost-policies"
QUEUES_PER_NAMESPACE = 4
TIERS = ("tier-1", "tier-2", "tier-3")
CATCH_ALL = "untiered"
# Figure keys per size; other sizes (policies, namespaces, jobs) are kept in the details only.
PREFIXES = {1: "policies_1", 20: "policies_20", 200: "many_policies"}
FIGURE_NAMESPACES = 50
FIGURE_JOBS = 10_000
SETTLE_S = 10.0
STARTUP_SETTLE_S = 60.0


@dataclass(frozen=True)
class World:
    dsn: str
    kube: KubeClient
    namespaces: tuple[str, ...]
    jobs_per_namespace: int


def namespace_name(index: int) -> str:
    return f"team-{index:02d}"


def queue_name(namespace: str, tier: int) -> str:
    return f"{namespace}-q{tier}"


def run_policies(config: BenchConfig, state_dir: Path, results: Results) -> None:
    if not config.policy_sizes:
        return
    with _environment(config, state_dir) as (world, operator):
        for size in config.policy_sizes:
            _measure(config, world, operator, size, results)


@contextmanager
def _environment(config: BenchConfig, state_dir: Path) -> Iterator[tuple[World, OperatorProcess]]:
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    with ExitStack() as stack:
        postgres = PostgresCluster.start(state_dir)
        stack.callback(postgres.stop)
        dsn = river.create_database(postgres, "policies", heartbeats=True)
        plane = ControlPlane.start(state_dir)
        stack.callback(plane.stop)
        install_crd(plane)
        kube = KubeClient(plane.kubeconfig)
        ghost = NodeHeartbeat(kube, GHOST_NODE, stop)
        ghost.register()
        ghost.start()
        stack.callback(stop.set)
        world = _populate(config, plane, kube, dsn)
        threading.Thread(target=beat_all, args=(dsn, stop), name="beater", daemon=True).start()
        operator = start_operator(
            state_dir,
            plane.kubeconfig,
            extra_args=["--max-database-connections", str(config.policy_connection_cap)],
        )
        stack.callback(operator.stop)
        time.sleep(STARTUP_SETTLE_S)  # the watch events of 10k new pods, taken in
        yield world, operator


def _populate(config: BenchConfig, plane: ControlPlane, kube: KubeClient, dsn: str) -> World:
    began = time.monotonic()
    count = config.policy_namespaces
    per_namespace = max(QUEUES_PER_NAMESPACE, config.policy_jobs // count)
    per_queue = per_namespace // QUEUES_PER_NAMESPACE
    per_namespace = per_queue * QUEUES_PER_NAMESPACE
    namespaces = tuple(namespace_name(i) for i in range(count))
    started = datetime.now(UTC)
    for namespace in namespaces:
        new_world(plane, kube, namespace, dsn, Path("no-worker-needed"))
    pods = [(ns, f"{ns}-ghost-{i}") for ns in namespaces for i in range(per_namespace)]
    create_ghost_pods(kube, pods, GHOST_NODE, started)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for namespace in namespaces:
            for tier in range(QUEUES_PER_NAMESPACE):
                seed.add_running_jobs(
                    conn,
                    per_queue,
                    queue=queue_name(namespace, tier),
                    first=tier * per_queue,
                    client_sql=f"'{namespace}-ghost-' || (i - 1) || '_{client_start(started)}'",
                )
    log.info(
        "policies: %d namespaces, %d pods and jobs in %.1fs",
        count,
        len(pods),
        time.monotonic() - began,
    )
    return World(dsn, kube, namespaces, per_namespace)


def _policies(world: World, size: int) -> list[tuple[str, str, dict[str, Any], int]]:
    """(namespace, name, spec, expected running jobs) for `size` policies: tiers first."""
    full, rest = divmod(size, QUEUES_PER_NAMESPACE)
    if full + (1 if rest else 0) > len(world.namespaces):
        raise ValueError(f"{size} policies need more than {len(world.namespaces)} namespaces")
    per_queue = world.jobs_per_namespace // QUEUES_PER_NAMESPACE
    base: dict[str, Any] = {
        "database": {"secretRef": {"name": "river-db"}},
        "workers": {"podSelector": {"matchLabels": dict(LABELS)}},
        "safety": {"mode": "DryRun"},
    }
    tiers: list[tuple[str, str, dict[str, Any], int]] = []
    catch_alls: list[tuple[str, str, dict[str, Any], int]] = []
    for index in range(full):
        namespace = world.namespaces[index]
        for tier, name in enumerate(TIERS):
            spec = {**base, "selector": {"queues": [queue_name(namespace, tier)]}}
            tiers.append((namespace, name, spec, per_queue))
        catch_alls.append((namespace, CATCH_ALL, _team(base, namespace), per_queue))
    if rest:
        # A namespace with its catch-all alone: it judges all of its namespace's jobs.
        namespace = world.namespaces[full]
        catch_alls.append((namespace, CATCH_ALL, _team(base, namespace), world.jobs_per_namespace))
    return tiers + catch_alls


def _team(base: dict[str, Any], namespace: str) -> dict[str, Any]:
    queues = [queue_name(namespace, tier) for tier in range(QUEUES_PER_NAMESPACE)]
    return {**base, "selector": {"queues": queues}}


def _measure(
    config: BenchConfig, world: World, operator: OperatorProcess, size: int, results: Results
) -> None:
    pid = operator.daemon.pid
    _delete_policies(world)
    policies = _policies(world, size)
    peak = ConnectionPeak(world.dsn)
    peak.start()
    try:
        began = time.monotonic()
        for namespace, name, spec, _ in policies:
            world.kube.create(POLICY_PATH.format(ns=namespace), policy_body(namespace, name, spec))
        expected = {f"{ns}/{name}": jobs for ns, name, _, jobs in policies}
        _wait_counts(world, expected)
        judged_after = time.monotonic() - began
        time.sleep(SETTLE_S)
        before = scan_histograms(operator.metrics())
        cpu = cpu_seconds(pid)
        window_start = time.monotonic()
        time.sleep(config.idle_window_s)
        used = cpu_seconds(pid) - cpu
        elapsed = time.monotonic() - window_start
        after = scan_histograms(operator.metrics())
        rss = rss_mb(pid)
    finally:
        peak.stop()
    cycles, p99 = cycle_p99(before, after, set(expected))
    overlapping = _overlapping(world)
    figures = {
        "connections_max": peak.peak,
        "scan_p99_s": p99,
        "rss_mb": rss,
        "cpu_idle_pct": round(100 * used / elapsed, 2),
    }
    prefix = PREFIXES.get(len(policies))
    full_size = (len(world.namespaces), len(world.namespaces) * world.jobs_per_namespace) == (
        FIGURE_NAMESPACES,
        FIGURE_JOBS,
    )
    if prefix is not None and full_size:
        for key, value in figures.items():
            results.set(f"{prefix}_{key}", value)
    results.details.setdefault("policies", {})[str(len(policies))] = {
        **figures,
        "policies": len(policies),
        "running_jobs": len(world.namespaces) * world.jobs_per_namespace,
        "judged_jobs": sum(expected.values()),
        "all_counted_after_s": round(judged_after, 1),
        "cycles_in_window": cycles,
        "overlapping_policies": overlapping,
        "window_s": round(elapsed, 1),
        "median_connections": peak.median,
    }
    log.info("policies %d: %s", len(policies), figures)


def _delete_policies(world: World) -> None:
    for namespace in world.namespaces:
        world.kube.delete(POLICY_PATH.format(ns=namespace))

    def gone() -> bool:
        return not world.kube.get("/apis/lifeguard.dev/v1alpha1/jobpolicies").get("items")

    wait_for(gone, 120, "the previous policies to be deleted", step=1)


def _wait_counts(world: World, expected: dict[str, int]) -> None:
    """Until every policy's status counts exactly the jobs it owns, all Healthy."""

    def counted() -> bool:
        items = world.kube.get("/apis/lifeguard.dev/v1alpha1/jobpolicies").get("items") or []
        seen = {}
        for item in items:
            meta = item["metadata"]
            jobs = (item.get("status") or {}).get("jobs") or {}
            seen[f"{meta['namespace']}/{meta['name']}"] = (jobs.get("running"), jobs.get("healthy"))
        return all(seen.get(key) == (count, count) for key, count in expected.items())

    wait_for(counted, 600, f"{len(expected)} policies to count their own jobs", step=3)


def _overlapping(world: World) -> int:
    items = world.kube.get("/apis/lifeguard.dev/v1alpha1/jobpolicies").get("items") or []
    return sum(
        1
        for item in items
        for c in (item.get("status") or {}).get("conditions") or []
        if c.get("type") == "Overlapping" and c.get("status") == "True"
    )


class ConnectionPeak:
    """The most connections the operator holds, polled from pg_stat_activity."""

    def __init__(self, dsn: str, every: float = 0.5) -> None:
        self._dsn = dsn
        self._every = every
        self._stop = threading.Event()
        self._samples: list[int] = []
        self._thread = threading.Thread(target=self._run, name="connections", daemon=True)

    @property
    def peak(self) -> int:
        return max(self._samples, default=0)

    @property
    def median(self) -> float:
        return statistics.median(self._samples) if self._samples else 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while not self._stop.wait(self._every):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    (APPLICATION_NAME,),
                ).fetchone()
                self._samples.append(int(row[0]) if row else 0)


Histograms = dict[str, dict[float, float]]


def scan_histograms(text: str) -> Histograms:
    """Per policy: cumulative bucket counts of lifeguard_scan_duration_seconds (le → count)."""
    found: Histograms = {}
    for family in text_string_to_metric_families(text):
        if family.name != "lifeguard_scan_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                found.setdefault(sample.labels["policy"], {})[bound] = sample.value
    return found


def cycle_p99(
    before: Histograms, after: Histograms, policies: set[str]
) -> tuple[int, float | None]:
    """(cycles in the window, their p99) over every policy; p99 None unless each policy
    completed at least one cycle. Linear within a bucket, as PromQL's histogram_quantile."""
    inf = float("inf")
    total: dict[float, float] = {}
    idle = 0
    for policy in policies:
        now, then = after.get(policy, {}), before.get(policy, {})
        if now.get(inf, 0) - then.get(inf, 0) < 1:
            idle += 1
        for bound, count in now.items():
            total[bound] = total.get(bound, 0) + count - then.get(bound, 0)
    cycles = int(total.get(inf, 0))
    if cycles == 0 or idle:
        if idle:
            log.warning("policies: %d of %d policies completed no cycle", idle, len(policies))
        return cycles, None
    rank = 0.99 * cycles
    lower, below = 0.0, 0.0
    for bound in sorted(total):
        count = total[bound]
        if count >= rank:
            if bound == inf:
                return cycles, lower
            share = (rank - below) / (count - below) if count > below else 1.0
            return cycles, round(lower + (bound - lower) * share, 4)
        lower, below = bound, count
    return cycles, None
