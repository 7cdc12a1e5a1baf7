"""The board where policies share the jobs they last saw beating, by pod."""

from lifeguard.plan import BeatingJob, PodRef
from lifeguard.supervisor.beats import MIN_TRUST_SECONDS, BeatBoard

POD = PodRef("jobs", "worker-1", "uid-1")
OTHER_POD = PodRef("jobs", "worker-2", "uid-2")


def test_a_policy_reads_the_others_beats_and_never_its_own() -> None:
    board = BeatBoard()
    board.publish("jobs/fast", "fast", {POD: (7,)}, now=100.0, scan_interval=5)
    board.publish("jobs/all", "all", {POD: (9,), OTHER_POD: (3, 4)}, now=100.0, scan_interval=5)

    assert board.elsewhere("jobs/fast", now=101.0) == {
        POD: (BeatingJob(9, "all"),),
        OTHER_POD: (BeatingJob(3, "all"), BeatingJob(4, "all")),
    }
    assert board.elsewhere("jobs/all", now=101.0) == {POD: (BeatingJob(7, "fast"),)}


def test_a_new_cycle_replaces_a_policys_entry() -> None:
    board = BeatBoard()
    board.publish("jobs/all", "all", {POD: (9,)}, now=100.0, scan_interval=5)
    board.publish("jobs/all", "all", {}, now=105.0, scan_interval=5)

    assert board.elsewhere("jobs/fast", now=106.0) == {}


def test_an_entry_is_trusted_for_two_scan_intervals_and_at_least_the_minimum() -> None:
    board = BeatBoard()
    board.publish("jobs/slow", "slow", {POD: (1,)}, now=0.0, scan_interval=60)
    board.publish("jobs/fast", "fast", {OTHER_POD: (2,)}, now=0.0, scan_interval=1)

    assert set(board.elsewhere("jobs/x", now=MIN_TRUST_SECONDS)) == {POD, OTHER_POD}
    assert set(board.elsewhere("jobs/x", now=MIN_TRUST_SECONDS + 1)) == {POD}
    assert board.elsewhere("jobs/x", now=121.0) == {}


def test_a_stopped_policy_is_forgotten() -> None:
    board = BeatBoard()
    board.publish("jobs/all", "all", {POD: (9,)}, now=100.0, scan_interval=5)
    board.forget("jobs/all")

    assert board.elsewhere("jobs/fast", now=100.0) == {}
