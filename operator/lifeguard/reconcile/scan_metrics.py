"""The metric updates of one scan's verdicts: gauges of the running jobs by cause, the beat ages,
each verdict counted once per job attempt and cause, and the run time of each job that stopped
running since the last scan.

Counting once per attempt takes a memory across scans (`ReconcileState.seen_verdicts`, and
`running` for the jobs that ended); it is kept here, apart from the once-per-attempt memory of
decisions announced (announce.py), because a verdict is counted whether or not it leads to an
action.
"""

from collections import Counter

from lifeguard import plan as planning
from lifeguard.model.enums import Cause
from lifeguard.reconcile.cycle import Cycle
from lifeguard.reconcile.effects import gauge, inc, observe
from lifeguard.reconcile.state import SeenVerdict


def count_scan(cycle: Cycle, judged: list[planning.Judged]) -> None:
    """Gauges and histograms of one scan; verdicts counted once per attempt and cause."""
    counts = dict.fromkeys((c.value for c in Cause), 0)
    seen: set[SeenVerdict] = set()
    running: dict[int, tuple[str, float]] = {}
    beat_ages: list[float] = []
    # New verdicts by (cause, reason): one counter update each, however many jobs.
    new_verdicts: Counter[tuple[str, str]] = Counter()
    for obs, verdict in judged:
        counts[verdict.cause.value] += 1
        key = (obs.job.id, obs.job.attempted_at, verdict.cause)
        seen.add(key)
        if key not in cycle.seen_verdicts:
            new_verdicts[verdict.cause.value, verdict.reason] += 1
        if obs.job.beat_age is not None:
            beat_ages.append(obs.job.beat_age)
        running[obs.job.id] = (obs.job.kind, obs.job.running_for)
    for (cause, reason), count in sorted(new_verdicts.items()):
        cycle.metrics.append(inc("verdicts", cause, reason, by=count))
    if beat_ages:
        cycle.metrics.append(observe("heartbeat_age", tuple(beat_ages)))
    for cause, count in counts.items():
        cycle.metrics.append(gauge("running_jobs", count, cause))
    for job_id, (kind, running_for) in cycle.running.items():
        if job_id not in running:
            cycle.metrics.append(observe("job_duration", (running_for,), kind, per_policy=False))
    cycle.seen_verdicts, cycle.running = frozenset(seen), running
