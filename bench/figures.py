"""The figures: their fixed JSON keys, units, targets and methods, and the two output files.

A figure's value is None when its section did not run (or could not measure it); the table
says so instead of inventing a number.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Value = float | int | None


@dataclass(frozen=True)
class Figure:
    key: str
    unit: str
    method: str
    target: str = ""
    # True when the value meets the target; None when no target applies.
    meets: Callable[[float], bool] | None = None


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def _at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


FIGURES: tuple[Figure, ...] = (
    Figure(
        "infra_death_to_retryable_p50_s",
        "s",
        "Worker pods on node agents, one job each: half run an `eat` job under a 64Mi limit and"
        " are OOM-killed, half run a `sleep` job and are deleted (grace 0). From the kill (the"
        " node agent's log line, ms stamps: the API's finishedAt has whole seconds) or the"
        " DELETE call to the job leaving `running`, seen by polling river_job every 50 ms"
        " (BENCH_POLL_INTERVAL_S). Policy with Lifeguard's defaults; the operator's fast path.",
    ),
    Figure(
        "infra_death_to_retryable_p99_s",
        "s",
        "As the p50, same events (at least 30 by default); nearest-rank p99.",
        "≤ 2 s",
        _at_most(2.0),
    ),
    Figure(
        "death_to_rerun_p50_s",
        "s",
        "Worker pods running a `sleep` job each are deleted (grace 0) while an idle standby"
        " worker of the same queue runs on another node (started after the job, so it can only"
        " get it by a rerun); from the DELETE call to the job `running` under the standby's"
        " client (polled every 50 ms). Lifeguard's defaults: infrastructureDeath retries at"
        " once (available + River's insert notification). River alone: its rescuer after"
        " RescueStuckJobsAfter (river_rescuer_*), then its scheduler.",
    ),
    Figure(
        "death_to_rerun_p99_s",
        "s",
        "As the p50, same events (at least 20 by default, BENCH_RERUN_EVENTS); nearest-rank p99.",
        "≤ 2 s",
        _at_most(2.0),
    ),
    Figure(
        "real_node_oom_to_retryable_p99_s",
        "s",
        "On the real node (kubelet, containerd, runc built from source; the operator from its"
        " image, installed by Helm, Lifeguard's default policy): worker pods from the worker"
        " image, one at a time, each under a 64Mi limit running an `eat` job"
        " (BENCH_REAL_NODE_OOMS, default 10). From the container's process leaving the host's"
        " /proc (polled every 10 ms) to the job leaving `running` (polled every 50 ms);"
        " nearest-rank p99. The kubelet's PLEG relist (1 s) is the floor.",
        "≤ 2 s",
        _at_most(2.0),
    ),
    Figure(
        "node_loss_to_retryable_p50_s",
        "s",
        "A node agent's node fails (Lease and status stop, its processes are SIGKILLed) with"
        " `sleep` jobs running on it, at their step 30 of 60, and idle standbys of their queues"
        " on other nodes; from the failure call to each job's attempt ending (out of `running`,"
        " or already running again as a new attempt on a standby; polled every 50 ms)."
        " Lifeguard's default heartbeat settings (10 s beats, 3 missed = 30 s, scanInterval"
        " 5 s), Kubernetes' defaults: Lease 40 s renewed"
        " every 10 s, node-monitor-grace-period 50 s (BENCH_NODE_MONITOR_GRACE). Meanwhile"
        " another node's kubelet stalls for 15 s (its jobs count in false_rescues).",
        "≤ 25 s",
        _at_most(25.0),
    ),
    Figure(
        "work_redone_after_node_loss_pct",
        "%",
        "The node loss jobs (60 steps of 1 s, progress after each step) resume on idle"
        " standbys from `lifeguard:resume`: steps the lost pod logged as done minus the step"
        " the standby resumed from, over the job's 60 steps; the mean over the jobs. River"
        " alone: 100 % (a retry starts over), after RescueStuckJobsAfter.",
        "≤ 5 %",
        _at_most(5.0),
    ),
    Figure(
        "stuck_detect_over_timeout_p50_s",
        "s",
        "`stall` jobs report progress for 2 s, then beat without progress, under a tier with"
        " progressTimeout 20s; from their last progress_at + progressTimeout to the cancel"
        " request (metadata cancel_attempted_at), both database-clock times.",
    ),
    Figure(
        "river_rescuer_default_s",
        "s",
        "River's default RescueStuckJobsAfter (JobRescuerRescueAfterDefault), read from River"
        " v0.51.2's source in the Go module cache.",
    ),
    Figure(
        "river_rescuer_measured_s",
        "s",
        "Workers with RESCUE_STUCK_JOBS_AFTER=60s (and JOB_TIMEOUT=60s: River's rescuer"
        " ignores jobs whose timeout is disabled) in a database no JobPolicy names; pods"
        " running a `sleep` job are deleted (grace 0) and a surviving worker's rescuer moves"
        " the jobs: median from deletion to the job leaving `running` (polled every 250 ms).",
    ),
    Figure(
        "false_rescues",
        "jobs",
        "Long `sleep` jobs (10 h) on healthy pods, running through the whole cluster run, chaos"
        " and scale included; a job counts when it left `running` or its row carries any"
        " Lifeguard error or metadata key.",
        "0",
        _at_most(0),
    ),
    Figure(
        "scan_1k_running_s",
        "s",
        "lifeguard.river.scan (the operator's scan, Table store) over N running jobs with ~1 KiB"
        " args and a heartbeat row each, created with generate_series; median wall time of"
        " several scans after a warm-up, every job read (max_jobs ≥ N).",
    ),
    Figure("scan_10k_running_s", "s", "As scan_1k, with 10k running jobs."),
    Figure(
        "scan_100k_running_s",
        "s",
        "As scan_1k, with 100k running jobs, every job read (the operator's default cap of"
        " 10k rows is lifted for this figure).",
        "≤ 1 s",
        _at_most(1.0),
    ),
    Figure(
        "scan_queries_per_policy",
        "round trips",
        "libpq's protocol trace of the connection during one scan; client Sync and Query"
        " messages counted (the pool's checkout check happens before and is not part of the"
        " scan).",
        "1",
        _at_most(1),
    ),
    Figure(
        "heartbeat_wal_bytes_per_beat_table",
        "bytes",
        "The Go heartbeat middleware itself (bench/heartbeatwal) on running jobs in a table"
        " holding 100k jobs with ~1 KiB args: pg_wal_lsn_diff of pg_current_wal_lsn() around"
        " the beats, divided by the beats written (steady state: every job already has its"
        " heartbeat row). Autovacuum is off on both tables during the window.",
    ),
    Figure(
        "heartbeat_wal_bytes_per_beat_metadata",
        "bytes",
        "As for Table, with the Metadata store (key health_check_at in river_job.metadata).",
    ),
    Figure(
        "heartbeat_wal_ratio_metadata_over_table",
        "x",
        "heartbeat_wal_bytes_per_beat_metadata / heartbeat_wal_bytes_per_beat_table.",
        "≥ 5",
        _at_least(5.0),
    ),
    Figure(
        "heartbeat_beats_per_s_table",
        "beats/s",
        "Beats written per second by the Go middleware (Table store) with BENCH_BEAT_CONCURRENCY"
        " concurrent jobs on one pgx pool, same database and server.",
    ),
    Figure(
        "heartbeat_rows_after_10k_jobs",
        "rows",
        "Rows left in river_job_heartbeat after real River workers (examples/worker, Table"
        " store) ran 10k jobs, 1 % of them killed mid-job with their worker (SIGKILL), half of"
        " those retried (and finished by a second worker) and half discarded, then one round of"
        " the operator's pruner; no job is running by then. Without the middleware's removal"
        " and the pruner: one row per job ever run.",
        "0",
        _at_most(0),
    ),
    Figure(
        "operator_rss_mb_10k_pods",
        "MB",
        "`lifeguard run` watching a namespace with 10k pods created in the API (bound to a Node"
        " the bench keeps Ready, status Running, no processes) and 10k running jobs whose"
        " client IDs name them, with fresh beats (DryRun policy); VmRSS from /proc/PID/status"
        " once the policy's status counts all 10k jobs Healthy, plus 15 s.",
        "≤ 150 MB",
        _at_most(150.0),
    ),
    Figure(
        "operator_failover_kill_to_first_action_s",
        "s",
        "Two `lifeguard run` replicas on one Lease, default timings (lease 15 s, renew deadline"
        " 10 s, retry period 2 s). The leader is SIGKILLed and a worker pod running a `sleep`"
        " job deleted (grace 0) at once; from the kill to the job leaving `running` (polled"
        " every 50 ms): the standby waits out the lease by its own clock, then acts on its"
        " warm caches.",
        "≤ 20 s",
        _at_most(20.0),
    ),
    Figure(
        "operator_handover_sigterm_s",
        "s",
        "As above: SIGTERM to the leader, which stops acting and empties the Lease's holder;"
        " to the standby reporting lifeguard_leader 1 (its /metrics polled every 20 ms).",
        "≤ 3 s",
        _at_most(3.0),
    ),
    Figure(
        "operator_leader_rss_mb",
        "MB",
        "VmRSS of the leading replica while a standby watches the same namespaces (the chaos"
        " namespace at rest, before the scale pods), 20 s after the standby started.",
    ),
    Figure(
        "operator_standby_rss_mb",
        "MB",
        "VmRSS of the standby at the same moment: it keeps the same pod, node and Lease caches.",
    ),
    Figure(
        "operator_cpu_idle_pct_1k_jobs",
        "% of a core",
        "utime+stime from /proc/PID/stat over 60 s (BENCH_IDLE_WINDOW_S) while the operator"
        " watches 1k such healthy jobs and pods (plus the chaos namespace at rest), divided by"
        " the window.",
    ),
)


def _policy_figures(prefix: str, size: str, targets: bool) -> tuple[Figure, ...]:
    """The many-policies figures of one size (bench/policies.py); targets apply at 200."""
    world = (
        f"{size} in namespaces of four (three one-queue tier policies, then a catch-all of the"
        " team's four queues),"
        " one database, 10k running jobs (50 namespaces of 200 pods, bench/scale.py's ghost"
        " pods; fresh beats; DryRun; scanInterval 5s, the default; --max-database-connections 10)"
    )
    return (
        Figure(
            f"{prefix}_connections_max",
            "connections",
            f"{world}: the most connections of the operator (pg_stat_activity by"
            " application_name, polled every 0.5 s) from the policies' creation to the end of"
            " a 60 s window (BENCH_IDLE_WINDOW_S).",
            "≤ 10" if targets else "",
            _at_most(10) if targets else None,
        ),
        Figure(
            f"{prefix}_scan_p99_s",
            "s",
            "Same run: p99 of every policy's cycle (gather, judge, report; waiting for a"
            " shared connection included) over the window, from the operator's"
            " lifeguard_scan_duration_seconds histograms (interpolated within buckets, as"
            " PromQL's histogram_quantile; beyond the last finite bucket it reads 10, i.e."
            " at least 10 s); null unless every policy completed a cycle in it.",
            "≤ 2 s" if targets else "",
            _at_most(2.0) if targets else None,
        ),
        Figure(
            f"{prefix}_rss_mb",
            "MB",
            "Same run: the operator's VmRSS at the end of the window.",
            "≤ 200 MB" if targets else "",
            _at_most(200.0) if targets else None,
        ),
        Figure(
            f"{prefix}_cpu_idle_pct",
            "% of a core",
            "Same run: utime+stime of the operator over the window, divided by the window.",
        ),
    )


FIGURES += (
    _policy_figures("policies_1", "1 policy (a catch-all)", False)
    + _policy_figures("policies_20", "20 JobPolicies", False)
    + _policy_figures("many_policies", "200 JobPolicies", True)
)

FIGURE_KEYS = tuple(f.key for f in FIGURES)


@dataclass
class Results:
    values: dict[str, Value] = field(default_factory=lambda: dict.fromkeys(FIGURE_KEYS))
    # Extra measurements and context (sizes, capped scans, samples) for the record.
    details: dict[str, Any] = field(default_factory=dict)

    def set(self, key: str, value: Value) -> None:
        if key not in self.values:
            raise KeyError(f"unknown figure {key!r}")
        self.values[key] = value

    def to_json(self) -> dict[str, Any]:
        return {
            **self.values,
            "meta": {
                "machine": (
                    f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}"
                ),
                **self.details,
            },
        }


def _cpus() -> int:
    return os.cpu_count() or 0


def status(figure: Figure, value: Value) -> str:
    if value is None:
        return "not measured"
    if figure.meets is None:
        return ""
    return "meets" if figure.meets(float(value)) else "**misses**"


def render(value: Value) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def table_markdown(values: Mapping[str, Value]) -> str:
    rows = [
        "| figure | value | unit | target | status | method |",
        "|---|---:|---|---|---|---|",
    ]
    for figure in FIGURES:
        value = values.get(figure.key)
        rows.append(
            f"| `{figure.key}` | {render(value)} | {figure.unit} | {figure.target or '—'}"
            f" | {status(figure, value)} | {figure.method} |"
        )
    return "\n".join(rows) + "\n"


def write(results: Results, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    md_path = out_dir / "results.md"
    json_path.write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n")
    md_path.write_text("# Lifeguard bench results\n\n" + table_markdown(results.values))
    return json_path, md_path
