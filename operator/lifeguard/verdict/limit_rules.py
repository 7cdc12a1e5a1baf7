"""Rules 8 and 9 of the verdict order: the policy's limits on progress and run time.

They judge jobs whose beats are fresh (or that never beat by design): a job that beats but
made no progress within progressTimeout is Stuck, one running past maxRuntime (or the adaptive
limit learned for its kind, when it does not beat) is Overdue. Stuck comes first, because a
job that stopped progressing is overdue *because* it is stuck. Why the rules come in this order
is in `lifeguard.verdict.rules`.
"""

from lifeguard.model.enums import Cause
from lifeguard.verdict.case import Case
from lifeguard.verdict.text import seconds
from lifeguard.verdict.types import Verdict


def stuck(case: Case) -> Verdict | None:
    job, timeout = case.obs.job, case.obs.thresholds.progress_timeout
    if timeout is None or not case.beat.fresh:
        return None
    # A job that never reported progress has made none since it started.
    age = job.progress_age if job.progress_age is not None else job.running_for
    if age <= timeout:
        return None
    said = (
        f"its last progress was {seconds(age)} ago"
        if job.progress_age is not None
        else f"it has reported no progress in {seconds(age)} since it started"
    )
    return Verdict(
        Cause.STUCK,
        "ProgressStale",
        f"{case.where} still beats, but {said} (timeout {seconds(timeout)})",
        age - timeout,
    )


def overdue(case: Case) -> Verdict | None:
    obs = case.obs
    running_for, limits = obs.job.running_for, obs.thresholds
    if limits.max_runtime is not None and running_for > limits.max_runtime:
        return Verdict(
            Cause.OVERDUE,
            "MaxRuntimeExceeded",
            f"job {obs.job.id} ({obs.job.kind}) on {case.where} has run for"
            f" {seconds(running_for)}, beyond maxRuntime {seconds(limits.max_runtime)}",
            running_for - limits.max_runtime,
        )
    without_beats = not obs.beats_expected or case.beat.never
    if without_beats and limits.adaptive_limit is not None and running_for > limits.adaptive_limit:
        return Verdict(
            Cause.OVERDUE,
            "AdaptiveLimitExceeded",
            f"job {obs.job.id} ({obs.job.kind}) on {case.where} has run for"
            f" {seconds(running_for)}, beyond the adaptive limit"
            f" {seconds(limits.adaptive_limit)} learned for its kind",
            running_for - limits.adaptive_limit,
        )
    return None
