"""Node loss from the kubelet's Lease and every beat on the node, before NotReady.

Kubernetes' defaults: a 40 s Lease renewed every 10 s (late after 20 s, silent after 30 s).
Lifeguard's: a beat every 10 s, quiet after two intervals (20 s), stale after three (30 s).
"""

from dataclasses import replace

import pytest
from builders import JobBuilder, NodeBuilder, node, pod, running_job

from lifeguard.model.enums import Cause
from lifeguard.model.observation import Observation
from lifeguard.verdict import decide
from lifeguard.verdict.nodes import Lease, lease_state, with_node_beats

H = Cause.HEALTHY
INFRA = Cause.INFRASTRUCTURE_DEATH
UNRESPONSIVE = Cause.UNRESPONSIVE

LEASE_AGE = {"fresh": 8.0, "late": 25.0, "silent": 35.0}
BEAT_AGE = {"fresh": 5.0, "late": 25.0, "stale": 45.0}


def jobs_on_node(lease: str, beats: str, scope: str) -> list[Observation]:
    """The judged job (first) and the policy's other jobs on its node n1, per scope:
    one: alone on the node; all: two more in the same state; some: one more that beats.
    A job on another node beats fresh in every case: it says nothing about n1."""
    on_n1 = node("n1").lease_silent_for(LEASE_AGE[lease])

    def job(job_id: int, beat_age: float, on: NodeBuilder = on_n1) -> JobBuilder:
        name = f"worker-{job_id}"
        return (
            running_job(job_id=job_id)
            .beat_age(beat_age)
            .on(pod(name, node_name=on.facts.name))
            .node_is(on)
        )

    judged = job(1, BEAT_AGE[beats])
    others = {
        "one": [],
        "all": [job(2, BEAT_AGE[beats]), job(3, BEAT_AGE[beats])],
        "some": [job(2, BEAT_AGE["fresh"])],
    }[scope]
    elsewhere = job(9, BEAT_AGE["fresh"], node("n2").lease_silent_for(2))
    return with_node_beats([b.obs() for b in (judged, *others, elsewhere)])


def row(lease: str, beats: str, scope: str, cause: Cause, reason: str) -> object:
    return pytest.param(
        lease, beats, scope, cause, reason, id=f"lease_{lease}-beats_{beats}-{scope}"
    )


COMBINATIONS = [
    # The kubelet renews: whatever the beats say, the node is there.
    row("fresh", "fresh", "one", H, "BeatFresh"),
    row("fresh", "fresh", "all", H, "BeatFresh"),
    row("fresh", "fresh", "some", H, "BeatFresh"),
    row("fresh", "late", "one", H, "BeatFresh"),
    row("fresh", "late", "all", H, "BeatFresh"),
    row("fresh", "late", "some", H, "BeatFresh"),
    # Beats stop while the Lease renews: a worker problem, not node loss.
    row("fresh", "stale", "one", UNRESPONSIVE, "BeatStale"),
    row("fresh", "stale", "all", UNRESPONSIVE, "BeatStale"),
    row("fresh", "stale", "some", UNRESPONSIVE, "BeatStale"),
    # The kubelet is late but workers beat: a partition the jobs survive.
    row("late", "fresh", "one", H, "BeatFresh"),
    row("late", "fresh", "all", H, "BeatFresh"),
    row("late", "fresh", "some", H, "BeatFresh"),
    # Late Lease and every job on the node quiet: lost, before any beat is stale.
    row("late", "late", "one", INFRA, "NodeLost"),
    row("late", "late", "all", INFRA, "NodeLost"),
    row("late", "late", "some", H, "BeatFresh"),
    row("late", "stale", "one", INFRA, "NodeLost"),
    row("late", "stale", "all", INFRA, "NodeLost"),
    # Another worker on the node still beats: the node is alive, this worker is not.
    row("late", "stale", "some", UNRESPONSIVE, "BeatStale"),
    row("silent", "fresh", "one", H, "BeatFresh"),
    row("silent", "fresh", "all", H, "BeatFresh"),
    row("silent", "fresh", "some", H, "BeatFresh"),
    row("silent", "late", "one", INFRA, "NodeLost"),
    row("silent", "late", "all", INFRA, "NodeLost"),
    row("silent", "late", "some", H, "BeatFresh"),
    row("silent", "stale", "one", INFRA, "NodeLost"),
    row("silent", "stale", "all", INFRA, "NodeLost"),
    row("silent", "stale", "some", UNRESPONSIVE, "BeatStale"),
]


@pytest.mark.parametrize(("lease", "beats", "scope", "cause", "reason"), COMBINATIONS)
def test_node_loss_needs_a_late_lease_and_every_job_on_the_node_quiet(
    lease: str, beats: str, scope: str, cause: Cause, reason: str
) -> None:
    judged, *others = jobs_on_node(lease, beats, scope)

    verdict = decide(judged)

    assert (verdict.cause, verdict.reason) == (cause, reason), verdict.message
    # The other node's job is never touched by n1's fate.
    assert decide(others[-1]).cause is H


def test_a_kubelet_paused_once_for_15s_never_acts_while_its_workers_beat() -> None:
    """The kubelet stops renewing for 15 s, then renews again; the workers beat every 10 s.
    Seen by the operator (a poll every 5 s), the Lease ages up to ~30 s before the renewal
    shows; every scan in between, at any beat phase, judges the jobs Healthy."""
    for lease_age in range(0, 31):
        for beat_age in (0.5, 5.0, 10.5):
            judged = jobs_on_node("fresh", "fresh", "all")[0]
            flapping = (
                running_job().beat_age(beat_age).node_is(node("n1").lease_silent_for(lease_age))
            )
            [obs, *_] = with_node_beats([flapping.obs(), judged])
            assert decide(obs).cause is H, (lease_age, beat_age, decide(obs).message)


def test_a_lost_node_is_named_with_its_lease_age_and_its_quiet_jobs() -> None:
    judged = jobs_on_node("late", "late", "all")[0]

    verdict = decide(judged)

    assert verdict.message == (
        "pod worker-1 runs on node n1, whose kubelet has not renewed its Lease for 25s and none"
        " of the 3 jobs on it has beaten for over 20s; its last beat was 25s ago (stale after 30s)"
    )
    # Certain since the later of the two: the Lease late for 5 s, the jobs quiet for 5 s.
    assert verdict.evidence_age == pytest.approx(5.0)


def test_a_worker_that_stopped_on_a_node_whose_kubelet_is_late_says_others_still_beat() -> None:
    judged = jobs_on_node("silent", "stale", "some")[0]

    verdict = decide(judged)

    assert verdict.cause is UNRESPONSIVE
    assert "node n1's kubelet has not renewed its Lease for 35s, but 1 other job on it" in (
        verdict.message
    )


def test_a_job_still_starting_on_the_node_keeps_it_from_being_judged_lost() -> None:
    """A job within its startup grace has not beaten yet: no evidence either way, so the
    node is not declared lost on the others' silence alone."""
    lease = node("n1").lease_silent_for(25)
    quiet = running_job(job_id=1).beat_age(25).node_is(lease)
    starting = running_job(job_id=2, running_for=3).no_beat().on(pod("worker-2")).node_is(lease)

    obs, _ = with_node_beats([quiet.obs(), starting.obs()])

    assert decide(obs).cause is H


def test_jobs_of_workers_without_beats_never_make_a_node_lost() -> None:
    silent_by_design = running_job().without_beats().node_is(node().lease_silent_for(35))

    [obs] = with_node_beats([silent_by_design.obs()])

    assert decide(obs).cause is H


@pytest.mark.parametrize(
    ("age", "duration", "state"),
    [
        (None, 40, Lease.UNKNOWN),
        (10, 0, Lease.UNKNOWN),
        (20, 40, Lease.FRESH),
        (20.1, 40, Lease.LATE),
        (30, 40, Lease.LATE),
        (30.1, 40, Lease.SILENT),
        (8, 15, Lease.LATE),  # a 15 s Lease renews every 3.75 s
    ],
)
def test_lease_states_follow_the_kubelets_renew_interval(
    age: float | None, duration: float, state: Lease
) -> None:
    facts = node().facts

    assert lease_state(replace(facts, lease_age=age, lease_duration=duration)) is state


def test_without_its_neighbours_known_a_job_needs_a_silent_lease_and_a_stale_beat() -> None:
    """An observation built alone (no summary of its node) cannot tell a lost node from one
    quiet worker: it keeps to the Lease-silent, beat-stale rule."""
    late = running_job().beat_age(25).node_is(node().lease_silent_for(25)).obs()
    silent = running_job().beat_age(45).node_is(node().lease_silent_for(35)).obs()

    assert decide(late).cause is H
    assert (decide(silent).cause, decide(silent).reason) == (INFRA, "NodeLost")
