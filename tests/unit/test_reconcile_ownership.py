"""Reconcile with the ownership rule: a policy counts, judges and acts on its own jobs only."""

from __future__ import annotations

from dataclasses import replace

from builders import SnapshotBuilder, ago, pod, policy_spec, running_job, snapshot

from lifeguard.model.conditions import OVERLAPPING, ConditionStatus
from lifeguard.model.enums import Action, Cause, Unattributed
from lifeguard.model.ownership import Claim, PolicyFacts
from lifeguard.model.selectors import JobSelector
from lifeguard.reconcile import Effects, ReconcileState, reconcile

SPEC = policy_spec()
T, F = ConditionStatus.TRUE, ConditionStatus.FALSE


def facts(
    key: str, age_days: float, unattributed: Unattributed = Unattributed.IGNORE
) -> PolicyFacts:
    namespace, name = key.split("/")
    return PolicyFacts(
        namespace=namespace,
        name=name,
        created=ago(age_days * 86400),
        selector=JobSelector(),
        unattributed=unattributed,
        database="db",
    )


ME = facts("jobs/rescue", 1)
OLDER = facts("jobs/catch-all", 10)
TEAM_B = facts("team-b/rescue", 5)

OWN = running_job(job_id=1).on(pod("w-1"))
# Team B's worker, frozen: beats stale, its pod running in team-b.
FROZEN_IN_B = running_job(job_id=2).beat_age(300).on(pod("b-1").in_namespace("team-b"))
# A worker outside the cluster, beats stale.
OUTSIDE = running_job(job_id=3).beat_age(300).unattributed()


def run(
    world: SnapshotBuilder, state: ReconcileState | None = None
) -> tuple[ReconcileState, Effects]:
    return reconcile(world.snap(), state or ReconcileState(), SPEC)


def judged_ids(world: SnapshotBuilder) -> list[int]:
    _, effects = run(world)
    return [obs.job.id for obs, _ in effects.judged]


def test_without_a_fleet_every_scanned_job_is_judged() -> None:
    assert judged_ids(snapshot(OWN, FROZEN_IN_B, OUTSIDE)) == [1, 2, 3]


def test_a_job_of_another_namespaces_pod_is_neither_counted_nor_acted_on() -> None:
    world = snapshot(OWN, FROZEN_IN_B).among(ME, TEAM_B)

    state, effects = run(world)

    assert [obs.job.id for obs, _ in effects.judged] == [1]
    assert effects.actions == ()
    assert state.book.jobs.running == 1
    [(job, ownership)] = effects.not_judged
    assert (job.id, ownership.claim, ownership.owner) == (2, Claim.OTHER_NAMESPACE, "team-b/rescue")
    assert "namespace team-b" in ownership.message


def test_the_other_namespaces_policy_judges_and_acts_on_it() -> None:
    world = snapshot(OWN, FROZEN_IN_B).among(ME, TEAM_B, me="team-b/rescue")

    _, effects = run(world)

    assert [obs.job.id for obs, _ in effects.judged] == [2]
    assert [a.job_id for a in effects.actions] == [2]


def test_stale_jobs_of_other_namespaces_do_not_trip_the_breaker() -> None:
    others = [
        running_job(job_id=10 + n).beat_age(300).on(pod(f"b-{n}").in_namespace("team-b"))
        for n in range(10)
    ]
    state, _ = run(snapshot(OWN, *others).among(ME, TEAM_B))

    assert not state.safety.circuit_open
    assert state.book.jobs.running == 1


def test_an_unattributed_job_is_left_alone_by_default_and_judged_by_a_judge_policy() -> None:
    ignoring = snapshot(OWN, OUTSIDE).among(ME)
    judging_me = replace(ME, unattributed=Unattributed.JUDGE)
    judging = snapshot(OWN, OUTSIDE).among(judging_me)

    assert judged_ids(ignoring) == [1]
    assert judged_ids(judging) == [1, 3]
    _, effects = run(judging)
    assert [a.job_id for a in effects.actions] == [3]


def test_the_younger_of_two_overlapping_policies_judges_nothing_and_says_so_once() -> None:
    world = snapshot(OWN).among(ME, OLDER)

    state, effects = run(world)
    again, later = run(world.later(5), state)

    assert effects.judged == () and effects.actions == ()
    overlapping = next(c for c in state.book.conditions if c.type == OVERLAPPING)
    assert (overlapping.status, overlapping.reason) == (T, "OlderPolicySelects")
    assert "jobs/catch-all (1 running job)" in overlapping.message
    assert [e.reason for e in effects.events].count("PoliciesOverlap") == 1
    assert "PoliciesOverlap" not in [e.reason for e in later.events]
    assert again.book.jobs.running == 0


def test_the_older_of_two_overlapping_policies_judges_the_job_without_overlap() -> None:
    world = snapshot(OWN).among(ME, OLDER, me="jobs/catch-all")

    state, effects = run(world)

    assert [obs.job.id for obs, _ in effects.judged] == [1]
    overlapping = next(c for c in state.book.conditions if c.type == OVERLAPPING)
    assert (overlapping.status, overlapping.reason) == (F, "NoOverlap")


def test_pods_of_one_name_in_two_namespaces_that_cannot_be_told_apart_leave_the_job_alone() -> None:
    twin = pod("w-1").in_namespace("team-b")
    world = snapshot(OWN).pod(twin).among(ME, TEAM_B)

    _, effects = run(world)

    assert effects.judged == ()
    [(_, ownership)] = effects.not_judged
    assert ownership.claim is Claim.AMBIGUOUS
    assert "jobs, team-b" in ownership.message


def test_a_twin_pod_started_after_the_client_does_not_take_the_job_away() -> None:
    twin = pod("w-1").in_namespace("team-b").started(ago_s=60)
    world = snapshot(OWN).pod(twin).among(ME, TEAM_B)

    assert judged_ids(world) == [1]


def test_ready_says_how_many_scanned_jobs_other_policies_judge() -> None:
    state, _ = run(snapshot(OWN, FROZEN_IN_B).among(ME, TEAM_B))

    ready = next(c for c in state.book.conditions if c.type == "Ready")
    assert "Watching 1 running jobs" in ready.message
    assert "1 more it selects are judged by other policies or none" in ready.message


def test_a_dead_pods_job_is_not_judged_on_its_live_namesake_in_another_namespace() -> None:
    # The job ran in team-b's pod w-1, which died; jobs's own w-1 runs healthy. Both ran when
    # the client started, so neither policy may judge the silent job: jobs/rescue would restart
    # its healthy pod for it, team-b/rescue would retry a job the live pod may be running.
    dead_in_b = pod("w-1").in_namespace("team-b").killed(15).deleted()
    silent = running_job(job_id=4).beat_age(300).on(pod("w-1"))
    for me in ("jobs/rescue", "team-b/rescue"):
        _, effects = run(snapshot(silent).pod(dead_in_b).among(ME, TEAM_B, me=me))

        assert effects.actions == ()
        [(_, ownership)] = effects.not_judged
        assert ownership.claim is Claim.AMBIGUOUS


# Lifeguard restarted w-9 for its frozen job, then the operator restarted before it retried the
# job: the new inventory never saw w-9, so no pod anywhere names the job's namespace.
RESTARTED = (
    running_job(job_id=9).beat_age(300).lifeguard_restarted(pod_name="w-9").pod_unknown("w-9")
)


def test_a_job_whose_pod_lifeguard_restarted_stays_home_when_the_pod_is_forgotten() -> None:
    _, effects = run(snapshot(RESTARTED).among(ME, TEAM_B))

    [(_, verdict)] = effects.judged
    assert (verdict.cause, verdict.reason) == (Cause.UNRESPONSIVE, "BeatStale")
    assert "Lifeguard restarted pod w-9" in verdict.message
    assert [(a.job_id, a.action) for a in effects.actions] == [(9, Action.RETRY)]
    _, elsewhere = run(snapshot(RESTARTED).among(ME, TEAM_B, me="team-b/rescue"))
    assert elsewhere.judged == ()
    assert [o.claim for _, o in elsewhere.not_judged] == [Claim.OTHER_NAMESPACE]


def test_a_namesake_in_another_namespace_does_not_take_a_restarted_pods_job() -> None:
    namesake = pod("w-9").in_namespace("team-b")
    for me in ("jobs/rescue", "team-b/rescue"):
        _, effects = run(snapshot(RESTARTED).pod(namesake).among(ME, TEAM_B, me=me))

        assert effects.actions == ()
        assert [o.claim for _, o in effects.not_judged] == [Claim.AMBIGUOUS]
