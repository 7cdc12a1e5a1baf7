"""The cluster figures: the whole local environment, the operator, and chaos against it.

One run brings up PostgreSQL, the control plane, three node agents and `lifeguard run`, starts
healthy long jobs that must never be touched, and then, while they run: River's own rescuer on
deleted pods (in a database no JobPolicy names), pod deaths (OOM kills and deletions), stuck
jobs, reruns on standby workers, a lost node (whose jobs resume elsewhere) while another node's
kubelet stalls, and finally idle CPU and memory at scale with pods that have no processes.
"""

from __future__ import annotations

import logging
import re
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg

from bench.cluster_env import (
    CHAOS_NODES,
    EAT_ARGS,
    RESCUER_NAMESPACE,
    STUCK_TIMEOUT_S,
    Env,
    delete_pods,
    enqueue,
    environment,
    pod_body,
    start_pods,
)
from bench.config import BenchConfig
from bench.failover import measure_failover
from bench.figures import Results
from bench.rerun import death_to_rerun, node_loss
from bench.scale import measure_scale
from bench.watch import JobWatch, percentile
from devenv import procs, river
from devenv.nodeagent.handle import daemon_name
from devenv.scenario import Scenario, new_world, untouched

log = logging.getLogger("bench")

MIN_DEATH_EVENTS = 30


def run_cluster(config: BenchConfig, state_dir: Path, results: Results) -> None:
    results.set("river_rescuer_default_s", river_rescue_after_default())
    with environment(config, state_dir) as env:
        _healthy_jobs(env)
        rescuer = RescuerRun.start(env)
        _infra_deaths(env, results)
        death_to_rerun(env, results)
        _stuck(env, results)
        node_loss(env, results)
        rescuer.finish(results)
        measure_failover(env, results)
        measure_scale(env, results)
        results.set("false_rescues", _false_rescues(env))


# -- River's own rescuer ------------------------------------------------------------------


def river_rescue_after_default() -> float:
    """JobRescuerRescueAfterDefault in River's source (the module cache), in seconds."""
    source = _river_source("internal/maintenance/job_rescuer.go")
    return _go_duration(source, "JobRescuerRescueAfterDefault")


def river_rescuer_interval() -> float:
    return _go_duration(
        _river_source("internal/maintenance/job_rescuer.go"), "JobRescuerIntervalDefault"
    )


def _river_source(relative: str) -> str:
    done = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True, timeout=60
    )
    path = Path(done.stdout.strip()) / "github.com/riverqueue/river@v0.51.2" / relative
    return path.read_text()


def _go_duration(source: str, name: str) -> float:
    match = re.search(rf"{name}\s*=\s*(?:(\d+)\s*\*\s*)?time\.(Hour|Minute|Second)", source)
    if match is None:
        raise ValueError(f"{name} not found in River's source")
    unit = {"Hour": 3600.0, "Minute": 60.0, "Second": 1.0}[match.group(2)]
    return float(match.group(1) or 1) * unit


@dataclass
class RescuerRun:
    """Pods whose River clients use RescueStuckJobsAfter, deleted; River alone must notice."""

    env: Env
    world: Scenario
    watch: JobWatch
    deleted_at: dict[int, float]
    attempted_at: dict[int, float]
    thread: threading.Thread
    seen: dict[int, tuple[float, str]] = field(default_factory=dict)

    @classmethod
    def start(cls, env: Env) -> RescuerRun:
        config = env.config
        dsn = river.create_database(env.postgres, "rescuer")
        world = new_world(env.plane, env.kube, RESCUER_NAMESPACE, dsn, env.worker)
        # River's rescuer skips a job whose effective timeout is negative (job_rescuer.go
        # makeRetryDecision: `timeout < 0` -> ignore), and the example worker disables
        # JobTimeout (-1) for its long jobs. RescueStuckJobsAfter may not be shorter than
        # JobTimeout, so both get the same value: River's rescuer as it can best be tuned.
        after = f"{config.rescuer_after_s:g}s"
        rescue = {"RESCUE_STUCK_JOBS_AFTER": after, "JOB_TIMEOUT": after}
        # A survivor on a queue with no jobs: it stays up, and its client can be River's
        # leader that runs the rescuer once the victims are gone.
        start_pods(world, [pod_body(world, "survivor", "idle", node=CHAOS_NODES[0], env=rescue)])
        victims = [f"victim-{i}" for i in range(config.rescuer_events)]
        start_pods(
            world,
            [
                pod_body(world, name, name, node=CHAOS_NODES[i % 2], env=rescue)
                for i, name in enumerate(victims)
            ],
        )
        watch = JobWatch(dsn, 0.25)
        jobs = {name: enqueue(world, "sleep", {"seconds": 3600}, name)[0] for name in victims}
        watch.wait_running(jobs.values(), 60)
        attempted = {job: watch.row(job)["attempted_at"].timestamp() for job in jobs.values()}
        deleted: dict[int, float] = {}
        for name, job in jobs.items():
            deleted[job] = time.time()
            world.delete_pod(name, grace=0)
        run = cls(env, world, watch, deleted, attempted, threading.Thread(target=lambda: None))
        timeout = config.rescuer_after_s + 2 * river_rescuer_interval() + 60
        run.thread = threading.Thread(
            target=lambda: run.seen.update(watch.left_running(jobs.values(), timeout)),
            name="rescuer-watch",
            daemon=True,
        )
        run.thread.start()
        log.info("River rescuer: %d pods deleted; waiting up to %.0fs", len(victims), timeout)
        return run

    def finish(self, results: Results) -> None:
        self.thread.join()
        delays = [self.seen[j][0] - t for j, t in self.deleted_at.items() if j in self.seen]
        since_start = [self.seen[j][0] - t for j, t in self.attempted_at.items() if j in self.seen]
        results.details["river_rescuer"] = {
            "rescue_stuck_jobs_after_s": self.env.config.rescuer_after_s,
            "rescuer_interval_s": river_rescuer_interval(),
            "events": len(self.deleted_at),
            "rescued": len(delays),
            "from_deletion_s": [round(d, 2) for d in delays],
            "from_attempted_at_s": [round(d, 2) for d in since_start],
            "states": sorted({s for _, s in self.seen.values()}),
        }
        if delays:
            results.set("river_rescuer_measured_s", round(statistics.median(delays), 2))
        self.world.cleanup()


# -- Lifeguard ----------------------------------------------------------------------------


def _healthy_jobs(env: Env) -> None:
    """Long healthy jobs that run through the whole bench; none may ever be touched."""
    count = env.config.healthy_jobs
    names = [f"healthy-{i}" for i in range(count)]
    start_pods(
        env.world,
        [pod_body(env.world, n, n, node=CHAOS_NODES[i % 2]) for i, n in enumerate(names)],
    )
    for name in names:
        env.healthy_jobs += enqueue(env.world, "sleep", {"seconds": 36000}, name)
    env.watch.wait_running(env.healthy_jobs, 60)


def _false_rescues(env: Env) -> int:
    touched = 0
    for job in env.healthy_jobs:
        row = env.world.job(job)
        if row["state"] != "running" or not untouched(row):
            log.warning("healthy job %d was touched: %s", job, row)
            touched += 1
    return touched


def _infra_deaths(env: Env, results: Results) -> None:
    """OOM kills and pod deletions, a batch of pods at a time, one death at a time."""
    world, config = env.world, env.config
    delays: dict[str, list[float]] = {"oom": [], "delete": []}
    batch = 5
    index = 0
    while index < config.death_events:
        size = min(batch, config.death_events - index)
        plan = [
            ("oom" if (index + k) % 2 == 0 else "delete", f"death-{index + k}") for k in range(size)
        ]
        bodies = [
            pod_body(
                world,
                name,
                name,
                node=CHAOS_NODES[(index + k) % 2],
                memory="64Mi" if how == "oom" else None,
            )
            for k, (how, name) in enumerate(plan)
        ]
        start_pods(world, bodies)
        for k, (how, name) in enumerate(plan):
            node = CHAOS_NODES[(index + k) % 2]
            if how == "oom":
                [job] = enqueue(world, "eat", EAT_ARGS, name)
                env.watch.wait_running([job], 30)
                seen = env.watch.left_running([job], 60)
                died = _oom_time(env, node, name)
            else:
                [job] = enqueue(world, "sleep", {"seconds": 3600}, name)
                env.watch.wait_running([job], 30)
                time.sleep(0.5)  # let its first beat land: a job in its stride
                died = time.time()
                world.delete_pod(name, grace=0)
                seen = env.watch.left_running([job], 60)
            if job not in seen:
                raise RuntimeError(f"{how} of {name}: job {job} still running after 60s")
            delays[how].append(seen[job][0] - died)
            log.info("%s %s: job %d %s after %.3fs", how, name, job, seen[job][1], delays[how][-1])
        delete_pods(world, [name for how, name in plan if how == "oom"])
        index += size
    everything = delays["oom"] + delays["delete"]
    # The issue asks for at least 30 events; fewer (a sanity run) stay in the details.
    if len(everything) >= MIN_DEATH_EVENTS:
        results.set("infra_death_to_retryable_p50_s", round(percentile(everything, 50), 3))
        results.set("infra_death_to_retryable_p99_s", round(percentile(everything, 99), 3))
    results.details["infra_deaths"] = {
        kind: {
            "events": len(values),
            "p50_s": round(percentile(values, 50), 3) if values else None,
            "p99_s": round(percentile(values, 99), 3) if values else None,
            "max_s": round(max(values), 3) if values else None,
            "all_s": [round(v, 3) for v in values],
        }
        for kind, values in {**delays, "all": everything}.items()
    }


_AGENT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*pod (\S+)/(\S+) (\S+): exited")


def _oom_time(env: Env, node: str, pod: str) -> float:
    """When the node agent saw the OOM-killed process exit (its log, millisecond stamps).

    The container's finishedAt in the API has whole seconds only.
    """
    log_path = procs.log_dir(env.state_dir) / f"{daemon_name(node)}.log"
    found = None
    for line in log_path.read_text(errors="replace").splitlines():
        match = _AGENT_LINE.match(line)
        if match and match.group(3) == pod and "OOMKilled" in line:
            found = match.group(1)
    if found is None:
        raise RuntimeError(f"no OOM exit of {pod} in {log_path}")
    return datetime.strptime(found, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _stuck(env: Env, results: Results) -> None:
    """Jobs that beat but stopped progressing: from progress_at + progressTimeout to cancel."""
    count = env.config.stuck_events
    if count == 0:
        return
    world = env.world
    start_pods(world, [pod_body(world, "stuck-0", "stuck", node=CHAOS_NODES[0])])
    jobs = enqueue(world, "stall", {"progress_for_seconds": 2}, "stuck", count)
    env.watch.wait_running(jobs, 30)
    progress_at: dict[int, datetime] = {}
    cancel_at: dict[int, datetime] = {}
    deadline = time.monotonic() + STUCK_TIMEOUT_S + 60
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        while len(cancel_at) < len(jobs) and time.monotonic() < deadline:
            for job_id, at in conn.execute(
                "SELECT job_id, progress_at FROM river_job_heartbeat"
                " WHERE job_id = ANY(%s) AND progress_at IS NOT NULL",
                (jobs,),
            ).fetchall():
                progress_at[job_id] = at
            for job_id, at in conn.execute(
                "SELECT id, (metadata->>'cancel_attempted_at')::timestamptz FROM river_job"
                " WHERE id = ANY(%s) AND metadata ? 'cancel_attempted_at'",
                (jobs,),
            ).fetchall():
                cancel_at.setdefault(job_id, at)
            time.sleep(0.25)
    over = [
        (cancel_at[j] - progress_at[j]).total_seconds() - STUCK_TIMEOUT_S
        for j in jobs
        if j in cancel_at and j in progress_at
    ]
    if over:
        results.set("stuck_detect_over_timeout_p50_s", round(statistics.median(over), 3))
    results.details["stuck"] = {
        "progress_timeout_s": STUCK_TIMEOUT_S,
        "events": len(jobs),
        "cancelled": len(cancel_at),
        "over_timeout_s": [round(v, 3) for v in over],
    }
    delete_pods(world, ["stuck-0"])
