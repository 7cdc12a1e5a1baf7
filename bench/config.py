"""The bench's size knobs, read from BENCH_* environment variables.

Defaults are the sizes the issue names (1k/10k/100k scans, 100k jobs for WAL, 30 death events,
10k pods); the harness's sanity test sets tiny values so the same code runs in seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("database", "cluster", "policies", "realnode")


def _ints(name: str, default: str) -> tuple[int, ...]:
    raw = os.environ.get(name, default)
    values = tuple(int(part) for part in raw.replace(" ", "").split(",") if part)
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{name}={raw!r}: want a comma-separated list of positive integers")
    return values


def _int(name: str, default: int) -> int:
    value = int(os.environ.get(name, str(default)))
    if value < 0:
        raise ValueError(f"{name}={value}: must not be negative")
    return value


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


@dataclass(frozen=True)
class BenchConfig:
    out_dir: Path
    # Which parts run: "database" needs PostgreSQL only, "cluster" the control plane too.
    sections: tuple[str, ...]
    # Running jobs in the database for each scan figure (scan_1k/10k/100k).
    scan_sizes: tuple[int, ...]
    scan_repeats: int
    # Jobs in river_job while heartbeats are measured, and beats per store.
    wal_jobs: int
    wal_beats: int
    beat_concurrency: int
    # Jobs run by real workers (1 % crashed mid-job) before the heartbeat table is counted.
    heartbeat_rows_jobs: int
    # Cluster: death events (half OOM kills, half pod deletions) and their job durations.
    death_events: int
    # Pod deletions with an idle standby worker of the same queue (death_to_rerun_*).
    rerun_events: int
    node_loss_jobs: int
    stuck_events: int
    healthy_jobs: int
    # River's rescuer alone: RescueStuckJobsAfter given to that worker, and its deaths.
    rescuer_after_s: float
    rescuer_events: int
    # Scale: pods created in the API without processes, and healthy jobs while idle CPU is read.
    scale_pods: int
    idle_jobs: int
    idle_window_s: float
    poll_interval_s: float
    # kube-controller-manager --node-monitor-grace-period for the bench's control plane.
    node_monitor_grace: str
    # Many policies: the policy counts measured in turn, the namespaces and running jobs
    # (one ghost pod each) they share, and the operator's connection cap.
    policy_sizes: tuple[int, ...] = (1, 20, 200)
    policy_namespaces: int = 50
    policy_jobs: int = 10_000
    policy_connection_cap: int = 10
    # Real node: OOM kills, one pod at a time (real_node_oom_to_retryable_p99_s).
    real_node_ooms: int = 10

    @classmethod
    def from_env(cls, out_dir: Path) -> BenchConfig:
        sections = tuple(
            s for s in os.environ.get("BENCH_SECTIONS", ",".join(SECTIONS)).split(",") if s
        )
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"BENCH_SECTIONS: unknown {sorted(unknown)}; known {SECTIONS}")
        return cls(
            out_dir=out_dir,
            sections=sections,
            scan_sizes=_ints("BENCH_SIZES", "1000,10000,100000"),
            scan_repeats=max(1, _int("BENCH_SCAN_REPEATS", 7)),
            wal_jobs=max(1, _int("BENCH_WAL_JOBS", 100_000)),
            wal_beats=max(1, _int("BENCH_WAL_BEATS", 4000)),
            beat_concurrency=max(1, _int("BENCH_BEAT_CONCURRENCY", 8)),
            heartbeat_rows_jobs=max(4, _int("BENCH_HEARTBEAT_ROWS_JOBS", 10_000)),
            death_events=_int("BENCH_DEATH_EVENTS", 30),
            rerun_events=_int("BENCH_RERUN_EVENTS", 20),
            node_loss_jobs=_int("BENCH_NODE_LOSS_JOBS", 4),
            stuck_events=_int("BENCH_STUCK_EVENTS", 5),
            healthy_jobs=_int("BENCH_HEALTHY_JOBS", 4),
            rescuer_after_s=_float("BENCH_RESCUER_AFTER_S", 60.0),
            rescuer_events=_int("BENCH_RESCUER_EVENTS", 3),
            scale_pods=_int("BENCH_SCALE_PODS", 10_000),
            idle_jobs=_int("BENCH_IDLE_JOBS", 1000),
            idle_window_s=_float("BENCH_IDLE_WINDOW_S", 60.0),
            poll_interval_s=_float("BENCH_POLL_INTERVAL_S", 0.05),
            node_monitor_grace=os.environ.get("BENCH_NODE_MONITOR_GRACE", "50s"),
            policy_sizes=_ints("BENCH_POLICY_SIZES", "1,20,200"),
            policy_namespaces=max(1, _int("BENCH_POLICY_NAMESPACES", 50)),
            policy_jobs=max(1, _int("BENCH_POLICY_JOBS", 10_000)),
            policy_connection_cap=max(1, _int("BENCH_POLICY_CONNECTION_CAP", 10)),
            real_node_ooms=_int("BENCH_REAL_NODE_OOMS", 10),
        )
