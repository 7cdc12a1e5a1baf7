"""What users feel after a death: how soon their job runs again, and how much work it redoes.

- death to rerun: a worker pod is deleted while a healthy standby of its queue idles; from the
  DELETE call to the job `running` on the standby.
- node loss: `sleep` jobs of 60 one-second steps on a node that fails at step ~30, with idle
  standbys on other nodes; from the failure to each job leaving `running`, then the steps the
  standby redoes (it resumes from the checkpoint Lifeguard copied into `lifeguard:resume`).
  Meanwhile a healthy node's kubelet stalls once for 15 s: its jobs must not be touched.
"""

from __future__ import annotations

import logging
import re
import statistics
import time

import psycopg

from bench.cluster_env import (
    CHAOS_NODES,
    LOST_NODE,
    Env,
    delete_pods,
    enqueue,
    pod_body,
    start_pods,
)
from bench.figures import Results
from bench.watch import percentile
from devenv.waiting import wait_for
from lifeguard.model.client_id import river_host_of_pod

log = logging.getLogger("bench")

MIN_RERUN_EVENTS = 20
NODE_LOSS_STEPS = 60
NODE_LOSS_FAIL_AT_STEP = 30
KUBELET_PAUSE_S = 15.0


def death_to_rerun(env: Env, results: Results) -> None:
    """Pod deletions with a standby of the same queue idling: until the job runs there."""
    world, count = env.world, env.config.rerun_events
    delays: list[float] = []
    batch = 5
    for first in range(0, count, batch):
        names = [f"rerun-{i}" for i in range(first, min(first + batch, count))]
        start_pods(world, [pod_body(world, n, n, node=CHAOS_NODES[0]) for n in names])
        jobs = [enqueue(world, "sleep", {"seconds": 3600}, n)[0] for n in names]
        env.watch.wait_running(jobs, 30)
        # Standbys start once the jobs run on the victims, so they can only get them by rerun.
        standbys = [f"{n}-standby" for n in names]
        start_pods(
            world,
            [
                pod_body(world, s, n, node=CHAOS_NODES[1])
                for s, n in zip(standbys, names, strict=True)
            ],
        )
        time.sleep(2.0)  # let every standby's producer settle into idle polling
        for name, standby, job in zip(names, standbys, jobs, strict=True):
            died = time.time()
            world.delete_pod(name, grace=0)
            ran = _running_on(env, job, standby, 60)
            if ran is None:
                raise RuntimeError(f"job {job} did not run on {standby} within 60s")
            delays.append(ran - died)
            log.info("rerun %s: job %d on %s after %.3fs", name, job, standby, delays[-1])
        delete_pods(world, standbys)
    if len(delays) >= MIN_RERUN_EVENTS:
        results.set("death_to_rerun_p50_s", round(percentile(delays, 50), 3))
        results.set("death_to_rerun_p99_s", round(percentile(delays, 99), 3))
    results.details["death_to_rerun"] = {
        "events": len(delays),
        "p50_s": round(percentile(delays, 50), 3) if delays else None,
        "p99_s": round(percentile(delays, 99), 3) if delays else None,
        "all_s": [round(d, 3) for d in delays],
    }


def _running_on(env: Env, job: int, pod: str, timeout: float) -> float | None:
    """When (time.time()) the job was first seen running under a client of `pod`."""
    prefix = river_host_of_pod(pod) + "_"
    deadline = time.monotonic() + timeout
    with psycopg.connect(env.world.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT state::text, attempted_by[cardinality(attempted_by)] FROM river_job"
                " WHERE id = %s",
                (job,),
            ).fetchone()
            now = time.time()
            if row and row[0] == "running" and str(row[1] or "").startswith(prefix):
                return now
            time.sleep(env.config.poll_interval_s)
    return None


def node_loss(env: Env, results: Results) -> None:
    count = env.config.node_loss_jobs
    if count == 0:
        return
    world = env.world
    names = [f"lost-{i}" for i in range(count)]
    start_pods(world, [pod_body(world, n, n, node=LOST_NODE) for n in names])
    args = {"seconds": NODE_LOSS_STEPS, "progress_every_seconds": 1, "log_steps": True}
    jobs = [enqueue(world, "sleep", args, n)[0] for n in names]
    env.watch.wait_running(jobs, 30)
    standbys = [f"{n}-standby" for n in names]
    start_pods(
        world,
        [
            pod_body(world, s, n, node=CHAOS_NODES[i % 2])
            for i, (s, n) in enumerate(zip(standbys, names, strict=True))
        ],
    )
    _wait_steps(env, jobs, NODE_LOSS_FAIL_AT_STEP, 120)
    failed = time.time()
    env.agents[LOST_NODE].fail_node("kill")
    # A healthy node's kubelet stalls once, at the same time: its long jobs stay untouched.
    env.agents[CHAOS_NODES[0]].pause_kubelet(KUBELET_PAUSE_S)
    seen = env.watch.left_running(jobs, 240)
    delays = [seen[j][0] - failed for j in jobs if j in seen]
    if delays:
        results.set("node_loss_to_retryable_p50_s", round(statistics.median(delays), 2))
    redone = _redone_steps(env, dict(zip(jobs, zip(names, standbys, strict=True), strict=True)))
    if redone:
        pct = [100.0 * r / NODE_LOSS_STEPS for r in redone.values()]
        results.set("work_redone_after_node_loss_pct", round(statistics.mean(pct), 2))
    results.details["node_loss"] = {
        "jobs": len(jobs),
        "moved": len(delays),
        "all_s": [round(d, 2) for d in delays],
        "states": sorted({s for _, s in seen.values()}),
        "node_monitor_grace_period": env.config.node_monitor_grace,
        "steps_redone": redone,
        "kubelet_paused_s": {CHAOS_NODES[0]: KUBELET_PAUSE_S},
    }
    delete_pods(world, standbys)


def _wait_steps(env: Env, jobs: list[int], step: int, timeout: float) -> None:
    """Until every job's last progress reports `step` (the heartbeat table's progress)."""
    with psycopg.connect(env.world.dsn, autocommit=True) as conn:

        def reached() -> bool:
            row = conn.execute(
                "SELECT count(*) FROM river_job_heartbeat WHERE job_id = ANY(%s)"
                " AND (progress->>'step')::int >= %s",
                (jobs, step),
            ).fetchone()
            return bool(row and row[0] == len(jobs))

        wait_for(reached, timeout, f"jobs {jobs} to reach step {step}")


def _redone_steps(env: Env, placed: dict[int, tuple[str, str]]) -> dict[int, int]:
    """Per job: steps the lost pod logged as done minus the step its standby resumed from."""
    redone: dict[int, int] = {}
    deadline = time.monotonic() + 60
    pending = dict(placed)
    while pending and time.monotonic() < deadline:
        for job, (lost, standby) in list(pending.items()):
            node = CHAOS_NODES[list(placed).index(job) % 2]
            standby_log = env.agents[node].container_log(env.world.namespace, standby, "worker")
            start = _last(_RESUMED.format(job=job), standby_log)
            if start is None and not re.search(_STEP.format(job=job), standby_log):
                continue  # not picked up yet
            lost_log = env.agents[LOST_NODE].container_log(env.world.namespace, lost, "worker")
            done = re.findall(_STEP.format(job=job), lost_log)
            # Started over (no checkpoint): everything the lost pod did is done again.
            redone[job] = max(0, len(done) - (start or 0))
            del pending[job]
        time.sleep(0.5)
    for job in pending:
        log.warning("job %d did not resume on its standby within 60s", job)
    return redone


_RESUMED = r'msg="sleep job resumes" job_id={job} attempt=\d+ from_step=(\d+)'
_STEP = r'msg="sleep step done" job_id={job} attempt=\d+ step=(\d+)'


def _last(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None
