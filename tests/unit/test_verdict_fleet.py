"""Running jobs of a kind that never beat: beats missing for that kind, not workers frozen."""

import pytest
from builders import JobBuilder, running_job

from lifeguard.model.enums import Cause
from lifeguard.verdict import decide
from lifeguard.verdict.fleet import (
    MAX_KINDS_NAMED,
    MIDDLEWARE,
    beats_missing,
    judged_without_beats,
)


def silent(kind: str = "report", job_id: int = 1, running_for: float = 90) -> JobBuilder:
    return running_job(kind=kind, job_id=job_id, running_for=running_for).no_beat()


def beating(kind: str = "report", job_id: int = 2) -> JobBuilder:
    return running_job(kind=kind, job_id=job_id).beat_age(40)


@pytest.mark.parametrize(
    ("jobs", "kinds"),
    [
        pytest.param(
            [silent(job_id=1), silent(job_id=2, running_for=10)], {"report"}, id="no_job_beats"
        ),
        pytest.param([silent(job_id=1), beating()], set(), id="one_job_of_the_kind_beats"),
        pytest.param(
            [silent("export", 1), silent("export", 2), beating("report", 3)],
            {"export"},
            id="a_kind_without_beats_next_to_a_kind_that_beats",
        ),
        pytest.param(
            [silent("export", 1), silent("import", 2), beating("report", 3)],
            {"export", "import"},
            id="two_kinds_without_beats",
        ),
        pytest.param([silent(running_for=10)], set(), id="within_startup_grace_says_nothing_yet"),
        pytest.param(
            [silent("export", 1, running_for=10), beating("report", 2)],
            set(),
            id="a_silent_kind_within_its_grace_says_nothing_yet",
        ),
        pytest.param(
            [silent().unattributed()], set(), id="jobs_without_an_attributable_pod_say_nothing"
        ),
        pytest.param(
            [running_job(running_for=90).without_beats()], set(), id="policy_without_beats"
        ),
        pytest.param([], set(), id="no_running_job"),
    ],
)
def test_the_kinds_whose_running_jobs_never_beat(jobs: list[JobBuilder], kinds: set[str]) -> None:
    missing = beats_missing([job.obs() for job in jobs])
    assert (missing.kinds if missing is not None else set()) == kinds


def test_a_policy_none_of_whose_jobs_beat_names_the_middleware_and_store_none() -> None:
    missing = beats_missing([silent(job_id=1).obs(), silent(job_id=2, running_for=10).obs()])

    assert missing is not None
    assert missing.message.startswith("No running job has a heartbeat; kind report (2 running);")
    assert "1 job past startupGrace (1m)" in missing.message
    assert MIDDLEWARE in missing.message and "heartbeat.store: None" in missing.message


def test_a_kind_without_beats_next_to_beating_kinds_is_named_and_no_store_none_for_all() -> None:
    missing = beats_missing(
        [silent("export", 1).obs(), silent("export", 2).obs(), beating("report", 3).obs()]
    )

    assert missing is not None
    assert missing.message.startswith("Running jobs of this kind never beat: export (2 running);")
    assert "report" not in missing.message.split(";")[0]
    assert "policy of their own (selector.kinds)" in missing.message


def test_the_kinds_named_are_bounded() -> None:
    kinds = [f"kind-{n:02}" for n in range(MAX_KINDS_NAMED + 3)]
    missing = beats_missing([silent(kind, n).obs() for n, kind in enumerate(kinds)])

    assert missing is not None and missing.kinds == set(kinds)
    assert f"kind-{MAX_KINDS_NAMED - 1:02} (1 running) and 3 more;" in missing.message
    assert f"kind-{MAX_KINDS_NAMED:02}" not in missing.message


def test_jobs_judged_without_beats_are_not_unresponsive_but_pod_evidence_still_acts() -> None:
    quiet = silent(job_id=1).obs()
    assert decide(quiet).cause is Cause.UNRESPONSIVE

    [judged] = judged_without_beats([quiet])
    assert decide(judged).cause is Cause.HEALTHY


def test_only_the_kinds_named_are_judged_without_beats() -> None:
    export, report = silent("export", 1).obs(), silent("report", 2).obs()

    judged = judged_without_beats([export, report], {"export"})

    assert [decide(o).cause for o in judged] == [Cause.HEALTHY, Cause.UNRESPONSIVE]
