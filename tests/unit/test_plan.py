"""The planner: per-cause rules, escalation, circuit breaker, rate limit and dry run."""

from datetime import timedelta

import pytest
from builders import NOW, JobBuilder, PolicyBuilder, node, pod, policy, running_job

from lifeguard.model.enums import Action, Backoff, Cause
from lifeguard.plan import BeatingJob, Judged, Plan, PodRef, SafetyState, Unread, plan
from lifeguard.plan.breaker import going_stale_after
from lifeguard.verdict import decide


def judge(*jobs: JobBuilder) -> list[Judged]:
    judged = []
    for job in jobs:
        obs = job.obs()
        judged.append((obs, decide(obs)))
    return judged


def plan_for(
    *jobs: JobBuilder, rules: PolicyBuilder | None = None, state: SafetyState | None = None
) -> Plan:
    return plan(judge(*jobs), rules or policy(), state or SafetyState(), NOW)


def only_action(result: Plan) -> tuple[Action, bool, Backoff, bool]:
    assert len(result.actions) == 1, result
    action = result.actions[0]
    return action.action, action.count_attempt, action.backoff, action.escalated


def stale_jobs(count: int, first_id: int = 100) -> list[JobBuilder]:
    """Jobs of workers outside the cluster whose beats stopped: Stale, no pod explains it."""
    return [running_job(job_id=first_id + n).unattributed().beat_age(300) for n in range(count)]


def healthy_jobs(count: int, first_id: int = 200) -> list[JobBuilder]:
    return [running_job(job_id=first_id + n).on(pod(f"w-{n}")) for n in range(count)]


# -- one job, the policy's default rules ------------------------------------------------------
RETRY, CANCEL, RESTART = Action.RETRY, Action.CANCEL, Action.RESTART_POD
NOW_B, RIVER_B = Backoff.IMMEDIATE, Backoff.RIVER

DEFAULT_RULES = [
    pytest.param(
        running_job().on(pod().oom_killed()),
        (RETRY, True, NOW_B, False),
        id="oom_killed_job_is_retried_at_once_and_counts_attempt",
    ),
    pytest.param(
        running_job().on(pod().deleted()),
        (RETRY, False, NOW_B, False),
        id="deleted_pod_job_is_retried_at_once_with_attempt_refunded",
    ),
    pytest.param(
        running_job().on(pod().deleted()).infra_retries(5),
        (RETRY, True, NOW_B, False),
        id="infrastructure_death_counts_attempt_after_max_infra_retries",
    ),
    pytest.param(
        running_job().on(pod().deleted()).infra_retries(4),
        (RETRY, False, NOW_B, False),
        id="infrastructure_death_below_max_infra_retries_is_still_refunded",
    ),
    pytest.param(
        running_job().beat_age(45).node_is(node().not_ready()),
        (RETRY, False, NOW_B, False),
        id="node_lost_job_is_retried_with_attempt_refunded",
    ),
    pytest.param(
        running_job().on(pod().crashed(1)),
        (RETRY, True, RIVER_B, False),
        id="application_crash_is_retried_with_river_backoff_and_counts_attempt",
    ),
    pytest.param(
        running_job().unattributed().beat_age(45),
        (RETRY, True, RIVER_B, False),
        id="stale_job_without_pod_is_retried_with_river_backoff",
    ),
    pytest.param(
        running_job().beat_age(45),
        (RESTART, True, RIVER_B, False),
        id="unresponsive_job_restarts_its_pod",
    ),
    pytest.param(
        running_job().progress_timeout(600).progress_age(900),
        (CANCEL, True, RIVER_B, False),
        id="stuck_job_is_cancelled",
    ),
    pytest.param(
        running_job(running_for=7200).max_runtime(3600),
        (CANCEL, True, RIVER_B, False),
        id="overdue_job_is_cancelled",
    ),
    pytest.param(
        running_job(running_for=1200).progress_timeout(600).progress_age(900).cancel_requested(150),
        (RESTART, True, RIVER_B, True),
        id="stuck_job_still_running_after_cancel_plus_after_has_its_pod_restarted",
    ),
    pytest.param(
        running_job(running_for=7200).max_runtime(3600).cancel_requested(121),
        (RETRY, True, RIVER_B, True),
        id="overdue_job_still_running_after_cancel_plus_after_is_retried",
    ),
    pytest.param(
        running_job().progress_timeout(600).progress_age(900).cancel_requested(900),
        (CANCEL, True, RIVER_B, False),
        id="cancel_requested_before_this_attempt_does_not_count",
    ),
    pytest.param(
        running_job()
        .beat_age(40)
        .lifeguard_restarted()
        .on(pod().disrupted("EvictionByEvictionAPI").deleted()),
        (RETRY, True, RIVER_B, False),
        id="job_whose_pod_lifeguard_restarted_is_retried_at_once_by_the_unresponsive_rule",
    ),
    pytest.param(
        running_job()
        .lifeguard_restarted(cause=Cause.STUCK, reason="ProgressStale")
        .on(pod().deleted()),
        (RETRY, True, RIVER_B, False),
        id="job_whose_pod_lifeguard_restarted_for_stuck_is_retried_counting_the_attempt",
    ),
    pytest.param(
        running_job().beat_age(45).on(pod().terminating(grace_left=-121)),
        (RETRY, True, RIVER_B, True),
        id="pod_still_terminating_after_grace_plus_after_is_escalated_to_retry",
    ),
]


@pytest.mark.parametrize(("job", "expected"), DEFAULT_RULES)
def test_default_rule(job: JobBuilder, expected: tuple[Action, bool, Backoff, bool]) -> None:
    assert only_action(plan_for(job)) == expected


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(running_job(), id="healthy_job_gets_no_action"),
        pytest.param(running_job(running_for=10).no_beat(), id="starting_job_gets_no_action"),
        pytest.param(running_job().on(pod().terminating()), id="terminating_pod_job_waits"),
    ],
)
def test_jobs_that_are_fine_get_nothing(job: JobBuilder) -> None:
    result = plan_for(job)
    assert (result.actions, result.deferred, result.held) == ([], [], [])


# -- escalation waits ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("job", "action", "why"),
    [
        pytest.param(
            running_job().progress_timeout(600).progress_age(900).cancel_requested(30),
            CANCEL,
            "Cancel requested 30s ago; RestartPod in 1m30s if still running",
            id="cancel_already_requested_is_not_sent_again_before_escalation",
        ),
        pytest.param(
            running_job().beat_age(45).on(pod().terminating(grace_left=20)),
            RESTART,
            "the pod is terminating (grace period ends in 20s); Retry in 2m20s if still running",
            id="unresponsive_job_on_terminating_pod_is_not_evicted_again",
        ),
        pytest.param(
            running_job(running_for=1200)
            .progress_timeout(600)
            .progress_age(900)
            .cancel_requested(150)
            .on(pod().terminating(grace_left=-10)),
            RESTART,
            "escalated: the pod is still terminating 10s after its grace period",
            id="escalated_restart_already_under_way_is_not_sent_again",
        ),
    ],
)
def test_step_under_way_is_held_with_the_reason(job: JobBuilder, action: Action, why: str) -> None:
    result = plan_for(job)
    assert result.actions == []
    assert [(held.action, held.why) for held in result.held] == [(action, why)]


def test_cancel_without_escalation_is_held_once_requested() -> None:
    rules = policy().rule("overdue", action="Cancel")
    job = running_job(running_for=7200).max_runtime(3600).cancel_requested(600)
    result = plan_for(job, rules=rules)
    assert result.actions == []
    assert result.held[0].why == "Cancel requested 10m ago; no escalation configured"


# -- fallbacks and shapes ------------------------------------------------------------------
def test_restart_pod_without_a_pod_falls_back_to_retry_and_says_so() -> None:
    rules = policy().rule("stale", action="RestartPod")
    result = plan_for(running_job().unattributed().beat_age(45), rules=rules)
    action = result.actions[0]
    assert (action.action, action.pod) == (RETRY, None)
    assert action.note == "no pod to restart; retrying instead"


def test_escalated_restart_of_an_unknown_pod_falls_back_to_retry() -> None:
    job = running_job(running_for=1200).pod_unknown().progress_timeout(600).progress_age(900)
    result = plan_for(job.cancel_requested(150))
    action = result.actions[0]
    assert (action.action, action.escalated) == (RETRY, True)
    assert "no pod to restart; retrying instead" in action.note


@pytest.mark.parametrize(
    ("job", "note"),
    [
        pytest.param(
            running_job().on(pod().oom_killed()).attempt(25, max_attempts=25),
            "its attempts are used up (25 of 25): River's rule discards it",
            id="a_counted_retry_of_the_last_attempt_discards_the_job",
        ),
        pytest.param(
            running_job().on(pod().deleted()).attempt(25, max_attempts=25),
            "",
            id="a_refunded_retry_of_the_last_attempt_queues_it_again",
        ),
        pytest.param(
            running_job().on(pod().deleted()).attempt(25, max_attempts=25).infra_retries(5),
            "the attempt was refunded 5 times already (maxInfraRetries 5); this retry counts;"
            " its attempts are used up (25 of 25): River's rule discards it",
            id="a_retry_that_counts_after_max_infra_retries_discards_the_last_attempt",
        ),
        pytest.param(
            running_job(running_for=1200)
            .pod_unknown()
            .progress_timeout(600)
            .progress_age(900)
            .cancel_requested(150),
            "Cancel requested 2m30s ago and the attempt still runs (after 2m); no pod to restart;"
            " retrying instead; a cancel was requested: River's rule ends the job cancelled,"
            " never retried",
            id="a_retry_of_a_job_whose_cancel_was_requested_cancels_it",
        ),
        pytest.param(
            running_job()
            .lifeguard_restarted(cause=Cause.STUCK, reason="ProgressStale")
            .on(pod().deleted())
            .cancel_requested(150),
            "a cancel was requested: River's rule ends the job cancelled, never retried",
            id="the_retry_after_lifeguards_restart_of_a_cancelled_stuck_job_cancels_it",
        ),
    ],
)
def test_a_retry_says_when_rivers_rule_ends_the_job_instead(job: JobBuilder, note: str) -> None:
    # The retry's statement follows River: no attempt left → discarded, a cancel requested →
    # cancelled. The Event and explain say so instead of "retried".
    [action] = plan_for(job).actions
    assert action.action is RETRY
    assert action.note == note


def test_pod_with_several_unresponsive_jobs_is_evicted_once() -> None:
    result = plan_for(running_job(job_id=1).beat_age(45), running_job(job_id=2).beat_age(50))
    assert [(a.job_id, a.action) for a in result.actions] == [(1, RESTART)]
    assert [(h.job_id, h.why) for h in result.held] == [
        (2, "pod jobs/worker-1 is being restarted for job 1")
    ]


@pytest.mark.parametrize(
    ("siblings", "why"),
    [
        pytest.param(
            [running_job(job_id=2).beat_age(5)],
            "pod jobs/worker-1 still beats for job 2: its process is alive, and a restart would"
            " end that job too",
            id="one_job_still_beats",
        ),
        pytest.param(
            [running_job(job_id=n).beat_age(n) for n in (2, 3, 4, 5)],
            "pod jobs/worker-1 still beats for jobs 2, 3 and 2 more: its process is alive, and a"
            " restart would end them too",
            id="several_jobs_still_beat",
        ),
    ],
)
def test_a_pod_that_still_beats_for_another_job_is_not_restarted(
    siblings: list[JobBuilder], why: str
) -> None:
    # A stale beat next to fresh ones on one pod is no frozen process (a freeze silences every
    # job within one interval): evicting the pod would end the jobs that still beat.
    result = plan_for(running_job(job_id=1).beat_age(45), *siblings)
    assert result.actions == []
    assert [(h.job_id, h.action, h.why) for h in result.held] == [(1, RESTART, why)]


def test_beats_on_another_pod_do_not_hold_a_restart() -> None:
    result = plan_for(
        running_job(job_id=1).beat_age(45), running_job(job_id=2).on(pod("w-2")).beat_age(5)
    )
    assert [(a.job_id, a.action) for a in result.actions] == [(1, RESTART)]


WORKER_1 = PodRef("jobs", "worker-1", "uid-worker-1")


@pytest.mark.parametrize(
    ("elsewhere", "held_why"),
    [
        pytest.param(
            {WORKER_1: (BeatingJob(7, "tier-fast"),)},
            "pod jobs/worker-1 still beats for job 7 (policy tier-fast): its process is alive,"
            " and a restart would end that job too",
            id="another_policys_job_beats_on_the_pod",
        ),
        pytest.param(
            {WORKER_1: (BeatingJob(7, "tier-fast"), BeatingJob(9, "catch-all"))},
            "pod jobs/worker-1 still beats for job 9 (policy catch-all) and job 7 (policy"
            " tier-fast): its process is alive, and a restart would end them too",
            id="two_other_policies_jobs_beat_on_the_pod",
        ),
        pytest.param(
            {PodRef("jobs", "worker-1", "uid-of-a-successor"): (BeatingJob(7, "tier-fast"),)},
            None,
            id="a_successor_of_the_same_name_beats_not_this_pod",
        ),
        pytest.param(
            {PodRef("jobs", "worker-2", "uid-worker-2"): (BeatingJob(7, "tier-fast"),)},
            None,
            id="another_pod_beats",
        ),
    ],
)
def test_a_pod_that_beats_for_another_policys_job_is_not_restarted(
    elsewhere: dict[PodRef, tuple[BeatingJob, ...]], held_why: str | None
) -> None:
    # A worker runs the queues of two policies: the one whose job went stale must not end the
    # other's job that still beats, though it never scans that job's queue.
    result = plan(
        judge(running_job(job_id=1).beat_age(45)),
        policy(),
        SafetyState(),
        NOW,
        beating_elsewhere=elsewhere,
    )
    if held_why is None:
        assert [(a.job_id, a.action) for a in result.actions] == [(1, RESTART)]
    else:
        assert result.actions == []
        assert [(h.job_id, h.action, h.why) for h in result.held] == [(1, RESTART, held_why)]


def test_a_plan_tells_which_of_its_jobs_beat_on_which_pod() -> None:
    # What the policy publishes for the others (supervisor.beats): fresh beats of live pods.
    result = plan_for(
        running_job(job_id=1).beat_age(5),
        running_job(job_id=2).beat_age(45),
        running_job(job_id=3).on(pod("w-2")).beat_age(4),
        running_job(job_id=4).on(pod("w-3").deleted()).beat_age(3),
    )
    assert result.beating == {
        WORKER_1: (1,),
        PodRef("jobs", "w-2", "uid-w-2"): (3,),
    }


def test_policy_action_none_only_reports() -> None:
    rules = policy().rule("application_crash", action="None")
    result = plan_for(running_job().on(pod().crashed(1)), rules=rules)
    assert result.actions == []
    assert [(h.action, h.cause) for h in result.held] == [(Action.NONE, Cause.APPLICATION_CRASH)]


def test_discard_rule_discards() -> None:
    rules = policy().rule("application_crash", action="Discard")
    assert only_action(plan_for(running_job().on(pod().crashed(1)), rules=rules))[0] is (
        Action.DISCARD
    )


def test_planned_action_carries_the_fence_pod_node_and_verdict() -> None:
    job = running_job(kind="export", job_id=42, queue="batch").on(pod("w-9", "n3").oom_killed())
    action = plan_for(job).actions[0]
    obs = job.obs()
    assert action.attempted_at == obs.job.attempted_at
    assert (action.kind, action.queue, str(action.pod), action.node) == (
        "export",
        "batch",
        "jobs/w-9",
        "n3",
    )
    assert action.evidence_age == 3
    assert (action.cause, action.reason) == (Cause.RESOURCE_EXHAUSTED, "OOMKilled")
    assert action.message == decide(obs).message
    assert not action.dry_run


def test_actions_are_ordered_by_job_id_whatever_the_input_order() -> None:
    jobs = [running_job(job_id=n).on(pod(f"w-{n}").oom_killed()) for n in (7, 3, 5)]
    assert [a.job_id for a in plan_for(*jobs).actions] == [3, 5, 7]


def test_same_input_gives_the_same_plan() -> None:
    jobs = [*stale_jobs(3), running_job(job_id=1).on(pod().oom_killed())]
    assert plan_for(*jobs) == plan_for(*jobs)


# -- circuit breaker -----------------------------------------------------------------------
def test_circuit_opens_when_most_jobs_turn_stale_and_pauses_their_actions() -> None:
    result = plan_for(*stale_jobs(4), *healthy_jobs(2))
    assert result.actions == []
    assert len(result.held) == 4
    assert result.state.circuit_open
    assert [(e.reason, e.warning) for e in result.events] == [("CircuitOpened", True)]
    assert result.state.breaker_message.startswith("circuit breaker open: 4 of 6")
    assert "4 of 6 running jobs (67%)" in result.events[0].message


def test_a_writer_stall_opens_the_circuit_before_its_first_stale_job_is_acted_on() -> None:
    # Beats stopped together; each job's last beat fell on its own phase of the 10 s interval,
    # so one is stale (31 s) while the others have missed all but their last beat (22-29 s).
    first = running_job(job_id=1).on(pod("w-1")).beat_age(31)
    others = [running_job(job_id=n).on(pod(f"w-{n}")).beat_age(18 + n * 2) for n in (2, 3, 4, 5)]
    result = plan_for(first, *others)
    assert result.actions == []
    assert result.state.circuit_open
    assert [h.job_id for h in result.held] == [1]
    assert "5 of 5 running jobs (100%: 1 stale, 4 with all but their last beat missed)" in (
        result.events[0].message
    )
    assert result.state.breaker_message.startswith(
        "circuit breaker open: 1 of 5 running jobs are stale and 4 more have missed all but"
    )


def test_beats_within_their_interval_do_not_count_as_going_stale() -> None:
    # One frozen worker among healthy ones: the others beat on time, its restart goes.
    first = running_job(job_id=1).on(pod("w-1")).beat_age(31)
    others = [running_job(job_id=n).on(pod(f"w-{n}")).beat_age(14) for n in (2, 3, 4, 5)]
    result = plan_for(first, *others)
    assert [(a.job_id, a.action) for a in result.actions] == [(1, RESTART)]
    assert not result.state.circuit_open


@pytest.mark.parametrize(
    ("stale_after", "interval", "start"),
    [
        pytest.param(30.0, 10.0, 20.0, id="three_missed_beats_all_but_the_last"),
        pytest.param(20.0, 10.0, 15.0, id="never_before_one_and_a_half_intervals"),
        pytest.param(15.0, 10.0, None, id="no_room_between_a_healthy_beat_and_staleness"),
        pytest.param(30.0, None, None, id="no_interval_known"),
    ],
)
def test_going_stale_starts_one_interval_before_staleness(
    stale_after: float, interval: float | None, start: float | None
) -> None:
    assert going_stale_after(stale_after, interval) == start


TRUNCATED = [
    # A truncated scan read 2 healthy and 1 stale job; the rest were left unread.
    pytest.param(Unread(running=0, stale=0), False, id="everything_read_one_stale_of_three"),
    pytest.param(Unread(running=5, stale=0), False, id="unread_healthy_dilute_nothing_dangerous"),
    pytest.param(Unread(running=5, stale=5), True, id="unread_stale_jobs_open_the_circuit"),
    pytest.param(Unread(running=97, stale=2), False, id="few_unread_stale_of_many_stay_shut"),
]


@pytest.mark.parametrize(("unread", "opens"), TRUNCATED)
def test_the_breaker_counts_the_jobs_a_truncated_scan_did_not_read(
    unread: Unread, opens: bool
) -> None:
    judged = judge(*stale_jobs(1), *healthy_jobs(2))
    result = plan(judged, policy(), SafetyState(), NOW, unread)
    assert result.state.circuit_open is opens
    if opens:
        total = 3 + unread.running
        assert result.state.breaker_message.startswith(
            f"circuit breaker open: {1 + unread.stale} of {total}"
        )


def test_circuit_stays_shut_below_min_jobs() -> None:
    result = plan_for(*stale_jobs(4))
    assert len(result.actions) == 4
    assert not result.state.circuit_open
    assert result.events == []


def test_circuit_stays_shut_at_exactly_the_stale_fraction() -> None:
    result = plan_for(*stale_jobs(3), *healthy_jobs(3))
    assert not result.state.circuit_open


def test_open_circuit_still_acts_on_pod_evidence() -> None:
    oom = running_job(job_id=1).on(pod().oom_killed())
    result = plan_for(oom, *stale_jobs(5))
    assert [(a.job_id, a.cause) for a in result.actions] == [(1, Cause.RESOURCE_EXHAUSTED)]


def test_open_circuit_pauses_stuck_jobs_but_not_overdue_ones() -> None:
    stuck = running_job(job_id=1).progress_timeout(600).progress_age(900)
    overdue = running_job(job_id=2, running_for=7200).max_runtime(3600).on(pod("w-2"))
    result = plan_for(stuck, overdue, *stale_jobs(5))
    assert [a.job_id for a in result.actions] == [2]
    assert 1 in [h.job_id for h in result.held]


def test_stale_jobs_explained_by_a_lost_node_do_not_open_the_circuit() -> None:
    lost = [
        running_job(job_id=n).on(pod(f"w-{n}", "n2")).beat_age(45).node_is(node("n2").not_ready())
        for n in range(6)
    ]
    result = plan_for(*lost)
    assert not result.state.circuit_open
    assert len(result.actions) == 6


def test_circuit_closes_when_beats_return() -> None:
    result = plan_for(*healthy_jobs(6), state=SafetyState(circuit_open=True))
    assert not result.state.circuit_open
    assert [e.reason for e in result.events] == ["CircuitClosed"]


def test_open_circuit_does_not_repeat_its_event() -> None:
    result = plan_for(*stale_jobs(6), state=SafetyState(circuit_open=True))
    assert result.state.circuit_open
    assert result.events == []


# -- rate limit ----------------------------------------------------------------------------
def oom_jobs(count: int) -> list[JobBuilder]:
    return [running_job(job_id=n).on(pod(f"w-{n}").oom_killed()) for n in range(1, count + 1)]


def stuck_jobs(count: int, first_id: int = 1) -> list[JobBuilder]:
    """Jobs that beat but stopped progressing: Cancel, an action on a living process."""
    return [
        running_job(job_id=n).progress_timeout(600).progress_age(900).on(pod(f"w-{n}"))
        for n in range(first_id, first_id + count)
    ]


FULL_MINUTE = SafetyState(recent_actions=(NOW - timedelta(seconds=30),) * 3, rate_limited=True)


def test_actions_beyond_the_rate_limit_are_deferred_in_job_id_order() -> None:
    result = plan_for(*stuck_jobs(5), rules=policy().max_actions_per_minute(3))
    assert [a.job_id for a in result.actions] == [1, 2, 3]
    assert [a.job_id for a in result.deferred] == [4, 5]
    assert result.state.rate_limited
    assert len(result.state.recent_actions) == 3
    assert [e.reason for e in result.events] == ["ActionsRateLimited"]


def test_actions_of_the_last_minute_use_up_the_budget() -> None:
    earlier = SafetyState(recent_actions=(NOW - timedelta(seconds=30),) * 2)
    result = plan_for(*stuck_jobs(3), rules=policy().max_actions_per_minute(3), state=earlier)
    assert [a.job_id for a in result.actions] == [1]
    assert len(result.state.recent_actions) == 3


def test_actions_older_than_a_minute_free_the_budget() -> None:
    earlier = SafetyState(recent_actions=(NOW - timedelta(seconds=60),) * 3, rate_limited=True)
    result = plan_for(*stuck_jobs(3), rules=policy().max_actions_per_minute(3), state=earlier)
    assert len(result.actions) == 3
    assert result.state.recent_actions == (NOW,) * 3
    assert not result.state.rate_limited


def test_rate_limit_event_is_not_repeated_while_still_limited() -> None:
    limited = SafetyState(rate_limited=True)
    result = plan_for(*stuck_jobs(5), rules=policy().max_actions_per_minute(3), state=limited)
    assert len(result.deferred) == 2
    assert result.events == []


# A minute whose budget is used up: what still acts at once, and what waits for the window.
@pytest.mark.parametrize(
    ("job", "acts_at_once"),
    [
        pytest.param(running_job().on(pod().oom_killed()), True, id="oom_killed_retry_goes"),
        pytest.param(running_job().on(pod().deleted()), True, id="deleted_pod_retry_goes"),
        pytest.param(running_job().on(pod().crashed(1)), True, id="crashed_process_retry_goes"),
        pytest.param(
            running_job().beat_age(45).node_is(node().not_ready()), True, id="node_lost_retry_goes"
        ),
        pytest.param(
            running_job()
            .beat_age(40)
            .lifeguard_restarted()
            .on(pod().disrupted("EvictionByEvictionAPI").deleted()),
            True,
            id="retry_after_lifeguards_own_restart_goes",
        ),
        pytest.param(running_job().beat_age(45), False, id="unresponsive_restart_pod_waits"),
        pytest.param(
            running_job().unattributed().beat_age(45), False, id="stale_retry_by_beats_waits"
        ),
        pytest.param(
            running_job().progress_timeout(600).progress_age(900), False, id="stuck_cancel_waits"
        ),
        pytest.param(
            running_job(running_for=7200).max_runtime(3600).cancel_requested(121),
            False,
            id="overdue_retry_of_a_process_that_may_run_waits",
        ),
        pytest.param(
            running_job().beat_age(45).on(pod().terminating(grace_left=-121)),
            False,
            id="retry_of_a_pod_still_terminating_waits",
        ),
    ],
)
def test_retries_of_jobs_whose_process_is_gone_are_never_deferred(
    job: JobBuilder, acts_at_once: bool
) -> None:
    result = plan_for(job, rules=policy().max_actions_per_minute(3), state=FULL_MINUTE)
    assert (len(result.actions), len(result.deferred)) == ((1, 0) if acts_at_once else (0, 1))


def test_a_process_gone_rule_of_cancel_is_still_limited() -> None:
    rules = policy().max_actions_per_minute(3).rule("resource_exhausted", action="Cancel")
    result = plan_for(*oom_jobs(1), rules=rules, state=FULL_MINUTE)
    assert [a.action for a in result.deferred] == [CANCEL]


def test_a_burst_of_deaths_acts_at_once_and_leaves_the_minute_whole() -> None:
    result = plan_for(
        *oom_jobs(4), *stuck_jobs(4, first_id=10), rules=policy().max_actions_per_minute(3)
    )
    assert [a.job_id for a in result.actions] == [1, 2, 3, 4, 10, 11, 12]
    assert [a.job_id for a in result.deferred] == [13]
    assert len(result.state.recent_actions) == 3


# -- dry run -------------------------------------------------------------------------------
def test_dry_run_makes_the_same_decisions_and_marks_every_action() -> None:
    jobs = [
        *oom_jobs(2),
        running_job(job_id=9).beat_age(45).on(pod("w-9")),
        running_job(job_id=10).progress_timeout(600).progress_age(900).on(pod("w-10")),
    ]
    enforced = plan_for(*jobs)
    dry = plan_for(*jobs, rules=policy().dry_run())
    assert all(a.dry_run for a in dry.actions)
    assert [(a.job_id, a.action) for a in dry.actions] == [
        (a.job_id, a.action) for a in enforced.actions
    ]


def test_dry_run_counts_toward_the_rate_limit_like_enforce() -> None:
    result = plan_for(*stuck_jobs(4), rules=policy().dry_run().max_actions_per_minute(2))
    assert [a.job_id for a in result.deferred] == [3, 4]


def test_a_pod_lifeguard_restarted_is_retried_even_while_the_breaker_is_open() -> None:
    restarted = (
        running_job(job_id=1)
        .beat_age(40)
        .lifeguard_restarted()
        .on(pod().disrupted("EvictionByEvictionAPI").deleted())
    )
    result = plan_for(restarted, *stale_jobs(6), rules=policy().breaker(min_jobs=5))

    assert result.state.circuit_open
    assert [(a.job_id, a.action) for a in result.actions] == [(1, RETRY)]


def test_a_pod_lifeguard_restarted_follows_the_causes_own_refund_rule() -> None:
    rules = policy().rule("unresponsive", action="RestartPod", countAttempt=False)
    restarted = running_job().beat_age(40).lifeguard_restarted().on(pod().deleted())

    assert only_action(plan_for(restarted, rules=rules)) == (RETRY, False, RIVER_B, False)
