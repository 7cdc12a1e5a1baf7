"""Leader election's rules: who may take the Lease, what is written, and when a leader may act.

Times are monotonic seconds of the replica asking; wall-clock times only appear in what is
written, never in a decision.
"""

from datetime import UTC, datetime

import pytest

from lifeguard.cluster.election import (
    ElectionTiming,
    LeaseRecord,
    Observed,
    TimingError,
    claim,
    released,
    term_valid,
)

ME, OTHER = "lifeguard-a_1", "lifeguard-b_2"
WALL = datetime(2026, 11, 30, 23, 0, 0, 123456, tzinfo=UTC)
DEFAULT = ElectionTiming()


def record(holder: str = OTHER, renewed: str = "t1", duration: int = 15) -> LeaseRecord:
    return LeaseRecord(
        holder=holder,
        lease_duration_seconds=duration,
        acquire_time="t0",
        renew_time=renewed,
        transitions=3,
    )


@pytest.mark.parametrize(
    ("observed_at", "now", "current", "held"),
    [
        pytest.param(100.0, 100.0, record(), True, id="just_seen_lease_of_another_is_held"),
        pytest.param(100.0, 114.9, record(), True, id="held_until_a_whole_duration_passed"),
        pytest.param(100.0, 115.0, record(), False, id="free_after_a_whole_duration_unchanged"),
        pytest.param(100.0, 100.0, record(holder=""), False, id="released_lease_is_free_at_once"),
        pytest.param(100.0, 100.0, record(holder=ME), False, id="own_record_is_free_to_me"),
        pytest.param(100.0, 100.5, record(duration=1), True, id="its_own_duration_counts"),
        pytest.param(100.0, 101.0, record(duration=1), False, id="a_short_lease_frees_sooner"),
    ],
)
def test_a_candidate_takes_the_lease_only_when_unheld_by_its_own_clock(
    observed_at: float, now: float, current: LeaseRecord, held: bool
) -> None:
    observed = Observed(current, observed_at)

    assert observed.held_by_other(ME, now) is held


def test_a_renewal_restarts_the_candidates_timer_and_an_unchanged_record_does_not() -> None:
    first = Observed(record(renewed="t1"), 100.0)

    unchanged = first.seen(record(renewed="t1"), 110.0)
    renewed = first.seen(record(renewed="t2"), 110.0)

    assert unchanged.at == 100.0
    assert unchanged.held_by_other(ME, 115.0) is False
    assert renewed.at == 110.0
    assert renewed.held_by_other(ME, 115.0) is True


def test_a_wall_clock_far_in_the_past_does_not_free_a_lease_that_keeps_changing() -> None:
    # The holder's clock is an hour behind: its renewTime looks expired, but it keeps changing.
    observed = Observed(record(renewed="2026-11-30T22:00:00.000000Z"), 100.0)
    observed = observed.seen(record(renewed="2026-11-30T22:00:02.000000Z"), 102.0)

    assert observed.held_by_other(ME, 103.0) is True


@pytest.mark.parametrize(
    ("current", "leading", "acquire", "transitions"),
    [
        pytest.param(record(holder=ME), True, "t0", 3, id="renewal_keeps_acquire_and_count"),
        pytest.param(record(), False, "2026-11-30T23:00:00.123456Z", 4, id="takeover_counts"),
        pytest.param(
            record(holder=""),
            False,
            "2026-11-30T23:00:00.123456Z",
            4,
            id="taking_a_released_lease_counts",
        ),
        pytest.param(
            record(holder=ME),
            False,
            "2026-11-30T23:00:00.123456Z",
            3,
            id="own_stale_record_is_a_new_term_without_a_transition",
        ),
    ],
)
def test_claim_writes_the_holder_times_and_transitions(
    current: LeaseRecord, leading: bool, acquire: str, transitions: int
) -> None:
    written = claim(current, ME, DEFAULT, WALL, leading)

    assert written.holder == ME
    assert written.lease_duration_seconds == 15
    assert written.renew_time == "2026-11-30T23:00:00.123456Z"
    assert written.acquire_time == acquire
    assert written.transitions == transitions


def test_release_empties_the_holder_and_keeps_the_count() -> None:
    written = released(record(holder=ME), WALL)

    assert written.holder == ""
    assert written.lease_duration_seconds == 1
    assert written.transitions == 3
    assert written.to_spec()["holderIdentity"] is None


def test_a_record_survives_the_round_trip_through_a_lease_spec() -> None:
    original = record()

    assert LeaseRecord.from_spec(original.to_spec()) == original
    assert LeaseRecord.from_spec(None) == LeaseRecord()


@pytest.mark.parametrize(
    ("renewed_at", "now", "valid"),
    [
        pytest.param(100.0, 100.0, True, id="just_renewed"),
        pytest.param(100.0, 109.9, True, id="inside_the_renew_deadline"),
        pytest.param(100.0, 110.0, False, id="at_the_renew_deadline"),
        pytest.param(100.0, 160.0, False, id="frozen_for_a_minute"),
        pytest.param(None, 100.0, False, id="never_renewed"),
    ],
)
def test_a_leader_acts_only_within_the_renew_deadline_of_its_last_renewal(
    renewed_at: float | None, now: float, valid: bool
) -> None:
    assert term_valid(renewed_at, DEFAULT, now) is valid


def test_the_leader_stops_before_any_standby_may_start() -> None:
    # The renewal is sent at 100; a standby sees it at the earliest at 100 and waits a lease
    # duration from there. The leader's last valid instant comes first.
    sent = 100.0
    standby = Observed(record(), sent)
    last_valid = sent + DEFAULT.renew_deadline - 0.001

    assert term_valid(sent, DEFAULT, last_valid)
    assert standby.held_by_other(ME, last_valid)


@pytest.mark.parametrize(
    ("timing", "flag"),
    [
        pytest.param(ElectionTiming(15, 15, 2), "--renew-deadline", id="deadline_not_shorter"),
        pytest.param(ElectionTiming(15, 10, 10), "--retry-period", id="retry_not_shorter"),
        pytest.param(ElectionTiming(15, 10, 0), "--retry-period", id="retry_zero"),
        pytest.param(ElectionTiming(0.5, 0.2, 0.1), "--lease-duration", id="under_a_second"),
    ],
)
def test_timings_that_cannot_keep_one_leader_are_refused_naming_the_flag(
    timing: ElectionTiming, flag: str
) -> None:
    with pytest.raises(TimingError, match=flag):
        timing.check()


def test_the_default_timings_are_kubernetes_usual_ones() -> None:
    assert DEFAULT.check() == ElectionTiming(15.0, 10.0, 2.0)
