"""A policy whose running jobs never beat: beats missing, not workers frozen."""

from builders import running_job

from lifeguard.model.enums import Cause
from lifeguard.verdict import decide
from lifeguard.verdict.fleet import MIDDLEWARE, beats_missing, judged_without_beats


def test_no_job_beating_past_the_startup_grace_is_beats_missing() -> None:
    observations = [
        running_job(job_id=1, running_for=90).no_beat().obs(),
        running_job(job_id=2, running_for=10).no_beat().obs(),
    ]
    why = beats_missing(observations)

    assert why is not None
    assert MIDDLEWARE in why and "heartbeat.store: None" in why
    assert "1 job past startupGrace (1m)" in why


def test_one_beating_job_means_beats_work() -> None:
    observations = [
        running_job(job_id=1, running_for=90).no_beat().obs(),
        running_job(job_id=2).beat_age(40).obs(),
    ]
    assert beats_missing(observations) is None


def test_jobs_within_their_startup_grace_say_nothing_yet() -> None:
    assert beats_missing([running_job(running_for=10).no_beat().obs()]) is None


def test_jobs_without_an_attributable_pod_say_nothing() -> None:
    assert beats_missing([running_job(running_for=90).no_beat().unattributed().obs()]) is None


def test_a_policy_without_beats_is_never_missing_them() -> None:
    assert beats_missing([running_job(running_for=90).without_beats().obs()]) is None


def test_no_running_job_is_not_beats_missing() -> None:
    assert beats_missing([]) is None


def test_jobs_judged_without_beats_are_not_unresponsive_but_pod_evidence_still_acts() -> None:
    silent = running_job(job_id=1, running_for=90).no_beat().obs()
    assert decide(silent).cause is Cause.UNRESPONSIVE

    [judged] = judged_without_beats([silent])
    assert decide(judged).cause is Cause.HEALTHY
