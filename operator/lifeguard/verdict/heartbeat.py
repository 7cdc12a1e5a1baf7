"""What the job's beats say: fresh, stale, or not there yet.

A job that never beat is judged as if its last beat were at its start once the startup grace
is over: a worker that took a job and never beat is as silent as one that stopped beating.
Jobs of workers that do not beat at all (`beats_expected` False) are never stale; runtime
limits judge them instead.
"""

from dataclasses import dataclass

from lifeguard.model.observation import Observation
from lifeguard.verdict.text import seconds


@dataclass(frozen=True, slots=True)
class Beat:
    """The job's liveness signal, derived once per decision."""

    # Seconds since the last beat, or since the start for a job past its grace without one.
    age: float | None
    # No beat was ever written for this attempt.
    never: bool
    # The beat (or its absence) says the process may be gone.
    stale: bool
    # Beats were expected and one was seen within the threshold.
    fresh: bool
    stale_after: float
    startup_grace: float

    @property
    def stale_for(self) -> float | None:
        """Seconds since the beat went stale (or since the startup grace ran out)."""
        if not self.stale or self.age is None:
            return None
        return self.age - (self.startup_grace if self.never else self.stale_after)

    def describe(self) -> str:
        """A clause for messages: "its last beat was 45s ago (stale after 30s)"."""
        if not self.never and self.age is not None:
            return (
                f"its last beat was {seconds(self.age)} ago"
                f" (stale after {seconds(self.stale_after)})"
            )
        if self.age is not None:
            return (
                f"it has not beaten in {seconds(self.age)} since it started"
                f" (startup grace {seconds(self.startup_grace)})"
            )
        return "it has not beaten yet"


def read_beat(obs: Observation) -> Beat:
    job, limits = obs.job, obs.thresholds
    if job.beat_age is not None:
        stale = job.beat_age > limits.stale_after
        return Beat(
            age=job.beat_age,
            never=False,
            stale=stale,
            fresh=not stale,
            stale_after=limits.stale_after,
            startup_grace=limits.startup_grace,
        )
    past_grace = obs.beats_expected and job.running_for >= limits.startup_grace
    return Beat(
        age=job.running_for if past_grace else None,
        never=True,
        stale=past_grace,
        fresh=False,
        stale_after=limits.stale_after,
        startup_grace=limits.startup_grace,
    )
