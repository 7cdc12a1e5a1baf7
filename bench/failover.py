"""Two operator replicas on one Lease: the standby's memory, a handover, a failover.

The bench's operator campaigns for the Lease `bench_lease`; a second `lifeguard run` with the
same scope and Lease stands by. With the default election timings (15 s lease, 10 s renew
deadline, 2 s retry period):
- both replicas' resident memory once both watch the same pods (the standby keeps its caches
  warm, so it should cost about what the leader costs);
- SIGTERM to the leader, to the standby reporting `lifeguard_leader 1` (polled every 20 ms);
- SIGKILL to the leader, a worker pod deleted at once, to that job leaving `running`.
Afterwards one operator leads alone again, as the rest of the bench expects.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

from bench.cluster_env import (
    BENCH_LEASE,
    CHAOS_NODES,
    OPERATOR_NAMESPACES,
    Env,
    enqueue,
    pod_body,
    start_pods,
)
from bench.figures import Results
from devenv.operator import OperatorProcess, start_operator
from devenv.scenario import wait_for

log = logging.getLogger("bench")

GAUGE_POLL_S = 0.02
SETTLE_S = 20.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for PID {pid}")


def _standby(env: Env, name: str) -> OperatorProcess:
    return start_operator(
        env.state_dir,
        env.plane.kubeconfig,
        name=name,
        namespaces=OPERATOR_NAMESPACES,
        lease=BENCH_LEASE,
    )


def _leading(process: OperatorProcess) -> bool:
    return process.leader_gauge() == 1


def measure_failover(env: Env, results: Results) -> None:
    if env.operator is None:
        raise RuntimeError("the bench's operator is not running")
    leader: OperatorProcess = env.operator
    wait_for(lambda: _leading(leader), 60, "the bench operator to lead")
    extra: list[OperatorProcess] = []  # started here: stopped at the end unless kept
    try:
        standby = _standby(env, "operator-standby-1")
        extra.append(standby)
        wait_for(lambda: standby.leader_gauge() == 0, 60, "the standby to stand by")
        time.sleep(SETTLE_S)  # both have listed and watch the same pods and nodes
        leader_rss, standby_rss = _rss_mb(leader.daemon.pid), _rss_mb(standby.daemon.pid)
        results.set("operator_leader_rss_mb", leader_rss)
        results.set("operator_standby_rss_mb", standby_rss)

        stopped = time.monotonic()
        os.kill(leader.daemon.pid, signal.SIGTERM)
        wait_for(lambda: _leading(standby), 30, "the standby to lead", step=GAUGE_POLL_S)
        handover = time.monotonic() - stopped
        results.set("operator_handover_sigterm_s", round(handover, 2))
        leader.stop()
        leader = standby
        standby = _standby(env, "operator-standby-2")
        extra.append(standby)
        wait_for(lambda: standby.leader_gauge() == 0, 60, "the new standby to stand by")
        time.sleep(SETTLE_S)

        world = env.world
        name = "failover-w"
        start_pods(world, [pod_body(world, name, name, node=CHAOS_NODES[0])])
        (job,) = enqueue(world, "sleep", {"seconds": 3600}, name)
        env.watch.wait_running([job], 30)
        time.sleep(1)
        killed = time.time()
        leader.daemon.stop(signal.SIGKILL)
        world.delete_pod(name, grace=0)
        seen = env.watch.left_running([job], 120)
        took = round(seen[job][0] - killed, 2) if job in seen else None
        results.set("operator_failover_kill_to_first_action_s", took)
        wait_for(lambda: _leading(standby), 30, "the standby to lead")
        results.details["failover"] = {
            "handover_sigterm_s": round(handover, 3),
            "kill_to_first_action_s": took,
            "job_state": seen[job][1] if job in seen else "running",
            "leader_rss_mb": leader_rss,
            "standby_rss_mb": standby_rss,
            "timings": "lease 15s, renew deadline 10s, retry period 2s",
        }
        # The last standby leads now: it is the operator the rest of the bench measures.
        env.operator = standby
        extra.remove(standby)
    finally:
        for process in extra:
            process.stop()
