"""Judgments about a policy's running jobs together, before each job is judged alone.

Workers without the heartbeat middleware are the first thing a new user has: Lifeguard is
installed before the workers change. Their jobs never beat, and judged one by one each would
be Unresponsive after its startup grace and its healthy pod restarted. Seen together the
pattern is plain: no running job of the policy has ever beaten. Then the beats, not the
workers, are missing: the policy says so (condition HeartbeatsMissing) and its jobs are
judged as if the policy said `heartbeat.store: None` (pod evidence and run time only).
"""

from collections.abc import Sequence
from dataclasses import replace

from lifeguard.model.observation import Observation
from lifeguard.verdict.text import seconds

MIDDLEWARE = "github.com/river-lifeguard/lifeguard/heartbeat"


def beats_missing(observations: Sequence[Observation]) -> str | None:
    """Why the policy's beats look missing, or None while any running job beats (or none
    has run past its startup grace yet, or the policy expects no beats)."""
    if not observations or not all(o.beats_expected for o in observations):
        return None
    if any(o.job.beat_age is not None for o in observations):
        return None
    past_grace = [
        o
        for o in observations
        if o.pod is not None and o.job.running_for >= o.thresholds.startup_grace
    ]
    if not past_grace:
        return None
    grace = min(o.thresholds.startup_grace for o in past_grace)
    jobs = "job" if len(past_grace) == 1 else "jobs"
    return (
        f"None of the {len(observations)} running jobs has a heartbeat, {len(past_grace)} {jobs}"
        f" past startupGrace ({seconds(grace)}): heartbeat-based actions are held (no pod is"
        f" restarted for a missing beat) and jobs are judged by pod evidence and run time."
        f" Add the heartbeat middleware ({MIDDLEWARE}) to the workers, or set"
        " heartbeat.store: None if they write no beats."
    )


def judged_without_beats(observations: Sequence[Observation]) -> list[Observation]:
    """The observations as a policy without beats sees them (store None)."""
    return [replace(o, beats_expected=False) for o in observations]
