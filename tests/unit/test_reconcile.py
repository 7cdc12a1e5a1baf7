"""The shell's decisions as tables: conditions, Events, metrics, status and the outcomes step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from builders import (
    SnapshotBuilder,
    node,
    owner_job,
    pod,
    policy_spec,
    running_job,
    snapshot,
)

from lifeguard.model.conditions import (
    CIRCUIT_OPEN,
    DATABASE_CONNECTED,
    HEARTBEATS_MISSING,
    NODES_OBSERVED,
    READY,
    ConditionStatus,
    find_condition,
)
from lifeguard.model.enums import Action, Cause
from lifeguard.model.policy import JobPolicySpec
from lifeguard.reconcile import (
    Connected,
    Effects,
    InvalidSpec,
    Metric,
    Outcome,
    ReconcileState,
    Result,
    Snapshot,
    configured,
    feed_outcomes,
    patched,
    reconcile,
)

T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
SPEC = policy_spec()
DRY_RUN = policy_spec(safety={"mode": "DryRun"})

Results = Result | Sequence[Result]


def cycle(
    world: SnapshotBuilder,
    state: ReconcileState | None = None,
    spec: JobPolicySpec | InvalidSpec = SPEC,
    results: Results = Result.APPLIED,
) -> tuple[ReconcileState, Effects]:
    """One operator cycle: reconcile, every write comes out as `results`, feed the outcomes."""
    snap = world.snap()
    state, effects = reconcile(snap, state or ReconcileState(), spec)
    if isinstance(results, Result):
        results = [results] * len(effects.actions)
    outcomes = [Outcome(a, r) for a, r in zip(effects.actions, results, strict=True)]
    state, effects = feed_outcomes(snap, state, effects, outcomes)
    if effects.status is not None:
        state = patched(state, effects.status, snap.monotonic)
    return state, effects


def cycles(
    world: SnapshotBuilder,
    count: int,
    spec: JobPolicySpec = SPEC,
    results: Results = Result.APPLIED,
) -> list[Effects]:
    state, seen = ReconcileState(), []
    for n in range(count):
        state, effects = cycle(world.later(n), state, spec, results)
        seen.append(effects)
    return seen


def conditions(state: ReconcileState) -> dict[str, tuple[ConditionStatus, str]]:
    return {c.type: (c.status, c.reason) for c in state.book.conditions}


def reasons(effects: Effects) -> list[str]:
    return [e.reason for e in effects.events]


def metric(effects: Effects, name: str, *labels: str) -> list[Metric]:
    return [m for m in effects.metrics if m.name == name and m.labels[: len(labels)] == labels]


DEAD = running_job(job_id=1).on(pod("w-1").oom_killed())
HEALTHY = running_job(job_id=2).on(pod("w-2"))


# -- conditions -----------------------------------------------------------------------------
CONDITIONS = [
    pytest.param(
        snapshot(HEALTHY),
        SPEC,
        {
            READY: (T, "Scanning"),
            DATABASE_CONNECTED: (T, "Connected"),
            CIRCUIT_OPEN: (F, "Closed"),
            HEARTBEATS_MISSING: (F, "Beating"),
        },
        id="a_scan_makes_the_policy_ready_connected_and_closed",
    ),
    pytest.param(
        snapshot(HEALTHY).no_secret("SecretNotFound", "spec.database.secretRef: no Secret."),
        SPEC,
        {
            READY: (F, "SecretNotFound"),
            DATABASE_CONNECTED: (U, "SecretNotFound"),
            CIRCUIT_OPEN: (U, "Pending"),
        },
        id="no_secret_is_not_ready_and_connection_unknown",
    ),
    pytest.param(
        snapshot(HEALTHY).unreachable(),
        SPEC,
        {
            READY: (F, "DatabaseUnavailable"),
            DATABASE_CONNECTED: (F, "Unreachable"),
            CIRCUIT_OPEN: (U, "Pending"),
        },
        id="an_unreachable_database_is_not_ready_and_not_connected",
    ),
    pytest.param(
        snapshot(HEALTHY),
        InvalidSpec("spec.workers.clientIdPattern: not a regular expression"),
        {
            READY: (F, "InvalidSpec"),
            DATABASE_CONNECTED: (U, "Pending"),
            CIRCUIT_OPEN: (U, "Pending"),
        },
        id="an_invalid_spec_is_not_ready_with_reason_invalid_spec",
    ),
    pytest.param(
        snapshot(HEALTHY).without_nodes(),
        SPEC,
        {
            READY: (T, "Scanning"),
            DATABASE_CONNECTED: (T, "Connected"),
            CIRCUIT_OPEN: (F, "Closed"),
            NODES_OBSERVED: (F, "NodeReadForbidden"),
            HEARTBEATS_MISSING: (F, "Beating"),
        },
        id="nodes_not_readable_says_so_in_nodes_observed",
    ),
]


@pytest.mark.parametrize(("world", "spec", "expected"), CONDITIONS)
def test_conditions_of_one_cycle(
    world: SnapshotBuilder,
    spec: JobPolicySpec | InvalidSpec,
    expected: dict[str, tuple[ConditionStatus, str]],
) -> None:
    state, effects = cycle(world, spec=spec)
    assert conditions(state) == expected
    assert effects.status is not None, "the first cycle always writes the status"


def test_not_ready_is_announced_on_the_first_cycle_and_when_it_changes_only() -> None:
    spec = InvalidSpec("spec.workers.clientIdPattern: not a regular expression")
    state, first = cycle(snapshot(), spec=spec)
    _, second = cycle(snapshot().later(5), state, spec=spec)
    assert reasons(first) == ["InvalidSpec"]
    assert "spec.workers.clientIdPattern" in first.events[0].message
    assert reasons(second) == []


def test_a_database_outage_is_an_event_once_and_an_error_metric_every_cycle() -> None:
    world = snapshot(HEALTHY)
    state, up = cycle(world)
    state, down = cycle(world.unreachable().later(5), state)
    state, still_down = cycle(world.unreachable().later(10), state)
    _, back = cycle(world.later(15), state)
    assert "DatabaseUnreachable" in reasons(down) and "DatabaseUnavailable" in reasons(down)
    assert reasons(still_down) == []
    assert len(metric(down, "database_errors")) == len(metric(still_down, "database_errors")) == 1
    assert reasons(back) == ["DatabaseReconnected"]
    assert metric(up, "database_errors") == []


def test_the_first_connection_is_announced_without_again() -> None:
    _, first = cycle(snapshot(HEALTHY))
    assert reasons(first) == ["DatabaseConnected"]
    assert "again" not in first.events[0].message


DATABASE_FAILURES = [
    pytest.param("AuthenticationFailed", "DatabaseAuthenticationFailed", id="authentication"),
    pytest.param("Unreachable", "DatabaseUnreachable", id="unreachable_host"),
    pytest.param("Timeout", "DatabaseTimeout", id="timeout"),
    pytest.param("SchemaNotFound", "RiverTablesMissing", id="missing_river_tables"),
    pytest.param("HeartbeatTableMissing", "HeartbeatTableMissing", id="missing_heartbeat_table"),
]


@pytest.mark.parametrize(("reason", "event_reason"), DATABASE_FAILURES)
def test_a_database_failure_names_its_cause_in_condition_and_event(
    reason: str, event_reason: str
) -> None:
    state, _ = cycle(snapshot(HEALTHY))
    state, down = cycle(
        snapshot(HEALTHY).database_failed(reason, event_reason, "why").later(5), state
    )
    assert conditions(state)[DATABASE_CONNECTED] == (F, reason)
    assert event_reason in reasons(down)


def test_while_the_database_is_unusable_counts_are_cleared_and_the_warning_said_once() -> None:
    world = snapshot(HEALTHY)
    state, _ = cycle(world)
    assert state.book.jobs is not None and state.book.jobs.running == 1
    warnings = []
    for n, message in enumerate(("refused", "refused", "refused", "timeout expired"), start=1):
        state, effects = cycle(world.unreachable(message).later(5 * n), state)
        warnings.append([line.message for line in effects.logs if line.level == "warning"])
        assert state.book.jobs is None
        assert effects.status is None or effects.status["jobs"] is None
    assert warnings == [["refused"], [], [], ["timeout expired"]]
    state, back = cycle(world.later(30), state)
    assert state.book.jobs is not None and state.book.jobs.running == 1
    assert any(line.level == "info" and "again" in line.message for line in back.logs)


NODE_VIEWS = [
    pytest.param(snapshot(HEALTHY), None, id="a_fresh_view_sets_nothing"),
    pytest.param(snapshot(HEALTHY).blind_to_leases(), (F, "LeasesUnread"), id="blind_is_false"),
]


@pytest.mark.parametrize(("world", "expected"), NODE_VIEWS)
def test_nodes_observed_says_when_the_operator_cannot_see_leases(
    world: SnapshotBuilder, expected: tuple[ConditionStatus, str] | None
) -> None:
    state, _ = cycle(world)
    assert conditions(state).get(NODES_OBSERVED) == expected


def test_nodes_observed_turns_true_when_leases_are_listed_again() -> None:
    state, _ = cycle(snapshot(HEALTHY).blind_to_leases())
    state, _ = cycle(snapshot(HEALTHY).later(5), state)
    assert conditions(state)[NODES_OBSERVED] == (T, "LeasesRead")


def test_blind_lease_view_is_no_evidence_of_node_loss() -> None:
    frozen = running_job(job_id=7).beat_age(120).on(pod("w-7").on("n1"))
    lost = snapshot(frozen).job()  # the same job, node n1's kubelet silent for 5 minutes
    lost = replace(lost, nodes=(node("n1").lease_silent_for(300).facts,))
    _, seen = cycle(lost)
    _, blind = cycle(lost.blind_to_leases())
    [(_, verdict_seen)] = seen.judged
    [(_, verdict_blind)] = blind.judged
    assert verdict_seen.reason == "NodeLost"
    assert verdict_blind.reason != "NodeLost"


def test_an_apiserver_outage_is_said_once_per_policy_when_it_ended() -> None:
    world = snapshot(HEALTHY)
    state, _ = cycle(world)
    state, after = cycle(world.after_apiserver_outage(900.0, 42.0).later(5), state)
    state, again = cycle(world.after_apiserver_outage(900.0, 42.0).later(10), state)
    assert reasons(after) == ["ApiserverUnreachable"] and "42s" in after.events[0].message
    assert reasons(again) == []
    # A policy whose supervisor started after the outage is not told about it.
    _, new_policy = cycle(world.after_apiserver_outage(900.0, 42.0))
    assert "ApiserverUnreachable" not in reasons(new_policy)


def test_a_scan_counts_jobs_by_verdict_in_status_and_gauges() -> None:
    state, effects = cycle(snapshot(HEALTHY, DEAD))
    jobs = state.book.jobs
    assert (jobs.running, jobs.healthy, jobs.resource_exhausted) == (2, 1, 1)
    gauges = {m.labels[0]: m.value for m in metric(effects, "running_jobs")}
    assert gauges["Healthy"] == gauges["ResourceExhausted"] == 1
    assert gauges["Stuck"] == 0


# -- de-duplication -------------------------------------------------------------------------
def test_a_verdict_is_counted_once_per_attempt_however_many_scans_see_it() -> None:
    also_healthy = running_job(job_id=3).on(pod("w-3"))
    first, second, third = cycles(snapshot(HEALTHY, also_healthy), 3)
    assert [m.value for m in metric(first, "verdicts", "Healthy")] == [2]
    assert metric(second, "verdicts") == metric(third, "verdicts") == []


def test_a_dry_run_decision_is_announced_once_and_never_written() -> None:
    effects = cycles(snapshot(DEAD), 3, spec=DRY_RUN)
    assert all(e.actions == () for e in effects)
    assert [reasons(e) for e in effects][1:] == [[], []]
    assert [r for r in reasons(effects[0]) if r.startswith("DryRun")] == ["DryRunJobRetried"]
    assert [
        len(metric(e, "actions", "Retry", "ResourceExhausted", "dry_run")) for e in effects
    ] == [
        1,
        0,
        0,
    ]


def test_a_dry_run_decision_is_one_recent_action_and_one_suppressed_total() -> None:
    state = ReconcileState()
    for n in range(3):
        state, _ = cycle(snapshot(DEAD).later(n), state, spec=DRY_RUN)
    assert [a.job_id for a in state.book.recent_actions] == [1]
    assert state.book.recent_actions[0].applied is False
    assert state.book.totals.suppressed == 1 and state.book.totals.rescued == 0


def test_an_applied_action_is_recorded_with_its_event_and_rescue_time() -> None:
    state, effects = cycle(snapshot(DEAD))
    assert [a.action for a in effects.actions] == [Action.RETRY]
    assert effects.writes == effects.actions and effects.evictions == ()
    assert "JobRetried" in reasons(effects)
    assert state.book.totals.retried == 1 and state.book.recent_actions[0].applied
    assert len(metric(effects, "rescue_seconds")) == 1
    assert len(metric(effects, "actions", "Retry", "ResourceExhausted", "applied")) == 1


def test_a_failed_action_is_retried_next_scan_and_announced_once() -> None:
    world = snapshot(DEAD)
    state, failed = cycle(world, results=Result.FAILED)
    state, failed_again = cycle(world.later(5), state, results=Result.FAILED)
    state, applied = cycle(world.later(10), state, results=Result.APPLIED)
    # Written at every scan until it applies ...
    assert [len(e.actions) for e in (failed, failed_again, applied)] == [1, 1, 1]
    # ... counted at every attempt ...
    assert len(metric(failed, "actions", "Retry", "ResourceExhausted", "failed")) == 1
    assert len(metric(failed_again, "actions", "Retry", "ResourceExhausted", "failed")) == 1
    assert [line.level for line in failed_again.logs] == ["warning"]
    # ... but recorded once while it fails, and once more when it applies.
    assert "JobRetried" not in reasons(failed) + reasons(failed_again)
    assert "JobRetried" in reasons(applied)
    assert [a.applied for a in state.book.recent_actions] == [True, False]


def test_the_announced_memory_forgets_jobs_no_longer_running() -> None:
    state, _ = cycle(snapshot(DEAD), spec=DRY_RUN)
    assert {key[0] for key in state.announced} == {1}
    state, _ = cycle(snapshot(HEALTHY).later(5), state, spec=DRY_RUN)
    assert state.announced == frozenset()


def test_a_job_that_stopped_running_is_observed_in_the_duration_metric_once() -> None:
    state, _ = cycle(snapshot(HEALTHY, DEAD))
    state, ended = cycle(snapshot(HEALTHY).later(5), state)
    _, nothing = cycle(snapshot(HEALTHY).later(10), state)
    assert [m.labels for m in metric(ended, "job_duration")] == [("report",)]
    assert metric(nothing, "job_duration") == []


# -- deferred and held ----------------------------------------------------------------------
def test_actions_over_the_rate_limit_are_deferred_counted_and_said_once() -> None:
    spec = policy_spec(safety={"maxActionsPerMinute": 1})
    # Unresponsive: a pod restart, an action on a process that may still run.
    silent = [running_job(job_id=n).on(pod(f"w-{n}")).beat_age(600) for n in (1, 2, 3)]
    state, effects = cycle(snapshot(*silent), spec=spec)
    assert [a.job_id for a in effects.actions] == [1]
    assert len(metric(effects, "actions", "RestartPod", "Unresponsive", "deferred")) == 2
    assert reasons(effects).count("ActionsRateLimited") == 1
    warnings = [line.message for line in effects.logs if line.level == "warning"]
    assert [w.split(":")[0] for w in warnings] == ["ActionsRateLimited"]
    assert [a.job_id for a in state.book.recent_actions] == [1]
    _, later = cycle(snapshot(*silent[1:]).later(5), state, spec=spec)
    assert later.actions == () and "ActionsRateLimited" not in reasons(later)
    assert [line for line in later.logs if line.level == "warning"] == []


def test_dead_jobs_over_the_rate_limit_are_retried_at_once() -> None:
    spec = policy_spec(safety={"maxActionsPerMinute": 1})
    dead = [running_job(job_id=n).on(pod(f"w-{n}").oom_killed()) for n in (1, 2, 3)]
    state, effects = cycle(snapshot(*dead), spec=spec)
    assert [a.job_id for a in effects.actions] == [1, 2, 3]
    assert "ActionsRateLimited" not in reasons(effects)
    assert sorted(a.job_id for a in state.book.recent_actions) == [1, 2, 3]
    assert state.safety.recent_actions == ()


def test_an_open_circuit_holds_heartbeat_actions_and_says_so_in_status_and_metrics() -> None:
    spec = policy_spec(safety={"circuitBreaker": {"staleFraction": 0.5, "minJobs": 2}})
    silent = [running_job(job_id=n).on(pod(f"w-{n}")).beat_age(600) for n in (1, 2, 3)]
    state, effects = cycle(snapshot(*silent), spec=spec)
    assert effects.actions == ()
    assert effects.plan is not None and {h.job_id for h in effects.plan.held} == {1, 2, 3}
    assert conditions(state)[CIRCUIT_OPEN] == (T, "TooManyStale")
    assert [m.value for m in metric(effects, "circuit_open")] == [1]
    assert "CircuitOpened" in reasons(effects)
    assert state.book.recent_actions == []


def test_an_operator_that_resumes_an_open_circuit_does_not_announce_it_again() -> None:
    # A failover (or an operator restart) while the breaker is open: the new replica resumes
    # from the status, which says the circuit is open; its first scan finds it still open.
    spec = policy_spec(safety={"circuitBreaker": {"staleFraction": 0.5, "minJobs": 2}})
    silent = [running_job(job_id=n).on(pod(f"w-{n}")).beat_age(600) for n in (1, 2, 3)]
    state, _ = cycle(snapshot(*silent), spec=spec)
    resumed = configured(ReconcileState(), 1, state.book.render())

    still_open, effects = cycle(snapshot(*silent).later(5), resumed, spec=spec)
    _, recovered = cycle(snapshot(HEALTHY).later(5), resumed, spec=spec)

    assert "CircuitOpened" not in reasons(effects)
    assert conditions(still_open)[CIRCUIT_OPEN] == (T, "TooManyStale")
    assert "CircuitClosed" in reasons(recovered)


# -- evictions fenced by the pod's uid ----------------------------------------------------
UNRESPONSIVE = running_job(job_id=1).on(pod("w-1")).beat_age(600)


def test_a_restart_names_the_pod_instance_it_decided_on() -> None:
    _, effects = cycle(snapshot(UNRESPONSIVE))
    (restart,) = effects.actions
    assert effects.evictions == (restart,) and effects.writes == ()
    assert restart.action is Action.RESTART_POD
    assert restart.pod is not None and restart.pod.uid == "uid-w-1"
    pod_events = [e for e in effects.events if e.pod is not None]
    assert [(e.reason, e.pod.uid if e.pod else None) for e in pod_events] == [
        ("PodRestarted", "uid-w-1")
    ]


def test_an_eviction_fenced_by_a_replaced_pod_is_not_applied_and_decided_again() -> None:
    world = snapshot(UNRESPONSIVE)
    state, fenced = cycle(world, results=Result.FENCED)
    assert "PodRestarted" not in reasons(fenced)
    assert len(metric(fenced, "actions", "RestartPod", "Unresponsive", "fenced")) == 1
    assert state.book.totals.pods_restarted == 0
    assert [a.applied for a in state.book.recent_actions] == [False]
    _, next_scan = cycle(world.later(5), state)
    assert [a.action for a in next_scan.actions] == [Action.RESTART_POD]


# -- the status -----------------------------------------------------------------------------
def test_the_status_is_written_when_it_changes_and_at_least_once_a_minute() -> None:
    world = snapshot(HEALTHY)
    state, first = cycle(world)
    state, same = cycle(world.later(5), state)
    state, minute = cycle(world.later(65), state)
    _, changed = cycle(snapshot(HEALTHY, DEAD).later(70), state)
    assert first.status is not None
    assert same.status is None
    assert minute.status is not None
    assert changed.status is not None and changed.status["jobs"]["running"] == 2


def test_reconcile_leaves_the_state_it_was_given_untouched() -> None:
    state, _ = cycle(snapshot(HEALTHY))
    before = (list(state.book.conditions), state.book.jobs, state.announced, state.safety)
    reconcile(snapshot(DEAD).later(5).snap(), state, SPEC)
    after = (list(state.book.conditions), state.book.jobs, state.announced, state.safety)
    assert before == after


def test_the_observation_uses_the_frozen_view_of_node_and_lease() -> None:
    lost = running_job(job_id=1).on(pod("w-1").on("n2")).node_is(node("n2").lease_silent_for(120))
    state, effects = cycle(snapshot(lost.beat_age(90)))
    assert effects.judged[0][0].node is not None
    assert effects.judged[0][0].node.lease_age == 120
    assert find_condition(state.book.conditions, READY) is not None


# -- workers without beats ------------------------------------------------------------------
SILENT = running_job(job_id=3, running_for=90).no_beat().on(pod("w-3"))
SILENT_DEAD = running_job(job_id=4, running_for=90).no_beat().on(pod("w-4").oom_killed())


def test_a_policy_whose_jobs_never_beat_holds_restarts_and_says_why() -> None:
    state, effects = cycle(snapshot(SILENT, SILENT_DEAD))

    status, reason = conditions(state)[HEARTBEATS_MISSING]
    assert (status, reason) == (T, "NoBeats")
    message = find_condition(state.book.conditions, HEARTBEATS_MISSING)
    assert message is not None and "heartbeat.store: None" in message.message
    assert "HeartbeatsMissing" in reasons(effects)
    # No pod is restarted for a missing beat; the OOM kill still acts.
    assert [(a.job_id, a.action) for a in effects.actions] == [(4, Action.RETRY)]


def test_one_beating_job_means_the_others_are_judged_by_their_beats() -> None:
    state, effects = cycle(snapshot(SILENT, HEALTHY))

    assert conditions(state)[HEARTBEATS_MISSING] == (F, "Beating")
    assert [(a.job_id, a.action) for a in effects.actions] == [(3, Action.RESTART_POD)]


EXPORT_SILENT = running_job("export", job_id=5, running_for=90).no_beat().on(pod("w-5"))
IMPORT_SILENT = running_job("import", job_id=6, running_for=90).no_beat().on(pod("w-6"))


def test_a_kind_without_beats_is_named_and_held_while_a_kind_that_beats_is_judged_by_beats() -> (
    None
):
    # report beats (HEALTHY), so its silent job 3 is Unresponsive; export never beats.
    state, effects = cycle(snapshot(HEALTHY, SILENT, EXPORT_SILENT))

    assert conditions(state)[HEARTBEATS_MISSING] == (T, "NoBeats")
    message = find_condition(state.book.conditions, HEARTBEATS_MISSING)
    assert message is not None and "export (1 running)" in message.message
    assert "report" not in message.message
    assert [e.message for e in effects.events if e.reason == "HeartbeatsMissing"] == [
        message.message
    ]
    # The export job's healthy pod is not restarted; the report job's pod is.
    assert [(a.job_id, a.action) for a in effects.actions] == [(3, Action.RESTART_POD)]


def test_a_kind_that_joins_the_silent_ones_gets_an_event_and_an_unchanged_set_none() -> None:
    state, first = cycle(snapshot(HEALTHY, EXPORT_SILENT))
    state, joined = cycle(snapshot(HEALTHY, EXPORT_SILENT, IMPORT_SILENT).later(5), state)
    state, same = cycle(snapshot(HEALTHY, EXPORT_SILENT, IMPORT_SILENT).later(10), state)
    state, fewer = cycle(snapshot(HEALTHY, IMPORT_SILENT).later(15), state)

    assert [reasons(e).count("HeartbeatsMissing") for e in (first, joined, same, fewer)] == [
        1,
        1,
        0,
        0,
    ]
    [event] = [e for e in joined.events if e.reason == "HeartbeatsMissing"]
    assert "export (1 running), import (1 running)" in event.message


def test_an_operator_restart_does_not_repeat_the_event_of_a_condition_already_true() -> None:
    state, _ = cycle(snapshot(HEALTHY, EXPORT_SILENT))
    restarted = ReconcileState(book=state.book.copy())

    _, effects = cycle(snapshot(HEALTHY, EXPORT_SILENT).later(5), restarted)

    assert "HeartbeatsMissing" not in reasons(effects)


def test_a_policy_without_beats_expects_none_and_judges_by_run_time() -> None:
    spec = policy_spec(heartbeat={"store": "None"}, maxRuntime="60s")
    state, effects = cycle(snapshot(SILENT), spec=spec)

    assert conditions(state)[HEARTBEATS_MISSING] == (F, "NotExpected")
    [action] = effects.actions
    assert (action.job_id, action.cause, action.action) == (3, Cause.OVERDUE, Action.CANCEL)


def test_adaptive_limits_reach_the_jobs_of_workers_without_beats() -> None:
    spec = policy_spec(heartbeat={"store": "None"})
    world = snapshot(SILENT).adaptive({"report": 30.0})
    _, effects = cycle(world, spec=spec)

    [action] = effects.actions
    assert (action.cause, action.reason) == (Cause.OVERDUE, "AdaptiveLimitExceeded")


def test_the_worker_container_of_the_policy_decides_and_a_jobs_deadline_is_named() -> None:
    crashed = running_job(job_id=5).on(pod("w-5").exited(1, phase="Running").with_sidecar("proxy"))
    names_proxy = policy_spec(
        workers={"podSelector": {"matchLabels": {"app": "worker"}}, "container": "proxy"}
    )
    _, named = cycle(snapshot(crashed), spec=names_proxy)
    _, default = cycle(snapshot(crashed))

    assert [a.action for a in named.actions] == []
    assert [(a.cause, a.action) for a in default.actions] == [
        (Cause.APPLICATION_CRASH, Action.RETRY)
    ]
    deadline = (
        running_job(job_id=6)
        .on(pod("w-6").killed(15).deleted())
        .owned_by(owner_job("w").deadline_exceeded())
    )
    _, effects = cycle(snapshot(deadline))
    assert [(a.cause, a.reason) for a in effects.actions] == [
        (Cause.INFRASTRUCTURE_DEATH, "DeadlineExceeded")
    ]


def test_a_truncated_scan_says_how_many_it_left_unread_in_ready() -> None:
    world = snapshot(HEALTHY)
    snap = world.snap()
    assert isinstance(snap.database, Connected)
    scanned = replace(snap.database.scan, truncated=True, running=12_000)
    truncated = replace(snap, database=replace(snap.database, scan=scanned))
    state, _ = reconcile(truncated, ReconcileState(), policy_spec(scan={"maxJobs": 1}))
    ready = find_condition(state.book.conditions, READY)
    assert ready is not None and ready.status == T
    assert "Watching 1 running jobs, read 1 of 12000: scan.maxJobs (1)" in ready.message


def truncated_scan(world: SnapshotBuilder, running: int = 12_000) -> Snapshot:
    """The world as a scan that read its jobs and left `running` - len(jobs) newer ones unread."""
    snap = world.snap()
    assert isinstance(snap.database, Connected)
    scanned = replace(snap.database.scan, truncated=True, running=running)
    return replace(snap, database=replace(snap.database, scan=scanned))


def test_a_truncated_scan_does_not_say_every_job_on_a_node_went_quiet() -> None:
    # Node n1's kubelet is late and the one job read there went quiet. A complete scan knows
    # it was the node's only job: lost. A truncated scan left newer jobs unread, and some of
    # them may run on n1 and beat (a slow kubelet, a frozen worker): it takes a silent kubelet
    # and a stale beat, as for a job whose neighbours are unknown.
    quiet = running_job(job_id=7).beat_age(45).on(pod("w-7").on("n1"))
    world = replace(snapshot(quiet), nodes=(node("n1").lease_silent_for(25).facts,))
    spec = policy_spec(scan={"maxJobs": 1})

    _, complete = reconcile(world.snap(), ReconcileState(), spec)
    _, partial = reconcile(truncated_scan(world), ReconcileState(), spec)

    assert [v.reason for _, v in complete.judged] == ["NodeLost"]
    assert [(v.cause, v.reason) for _, v in partial.judged] == [(Cause.UNRESPONSIVE, "BeatStale")]
    silent = replace(world, nodes=(node("n1").lease_silent_for(35).facts,))
    _, partial = reconcile(truncated_scan(silent), ReconcileState(), spec)
    assert [v.reason for _, v in partial.judged] == ["NodeLost"]


def test_jobs_of_a_kind_without_beats_are_no_neighbours_for_node_loss() -> None:
    # n1's kubelet is late; its report job went quiet, and export jobs never beat (their workers
    # lack the middleware): the node is judged by the report job alone, and the export job
    # that has just started is no sign of life either.
    quiet = running_job(job_id=1).beat_age(45).on(pod("w-1").on("n1"))
    export_old = running_job("export", job_id=2, running_for=600).no_beat().on(pod("w-2").on("n1"))
    export_new = running_job("export", job_id=3, running_for=5).no_beat().on(pod("w-3").on("n1"))
    world = snapshot(quiet, export_old, export_new)
    world = replace(world, nodes=(node("n1").lease_silent_for(25).facts,))

    state, effects = cycle(world)

    assert conditions(state)[HEARTBEATS_MISSING] == (T, "NoBeats")
    [(_, verdict), *_] = effects.judged
    assert (verdict.cause, verdict.reason) == (Cause.INFRASTRUCTURE_DEATH, "NodeLost")
    assert "its worker has not beaten for over 20s" in verdict.message


def test_a_job_whose_pod_lifeguard_restarted_for_another_job_names_that_restart() -> None:
    # Job 1 froze and Lifeguard restarted its pod w-1, which also ran job 2: job 2 died of the
    # restart, not of its own doing, and its story says so; its attempt is refunded (evicted).
    evicted = pod("w-1").killed(15).disrupted("EvictionByEvictionAPI").deleted()
    frozen = (
        running_job(job_id=1).beat_age(45).lifeguard_restarted("w-1", pod_uid="uid-w-1").on(evicted)
    )
    neighbour = running_job(job_id=2).on(evicted)

    _, effects = cycle(snapshot(frozen, neighbour))

    verdicts = {obs.job.id: v for obs, v in effects.judged}
    assert (verdicts[1].cause, verdicts[1].own_action) == (Cause.UNRESPONSIVE, Action.RESTART_POD)
    assert (verdicts[2].cause, verdicts[2].reason) == (Cause.INFRASTRUCTURE_DEATH, "Evicted")
    note = "Lifeguard restarted pod w-1 for job 1 (Unresponsive/BeatStale)"
    assert verdicts[2].message.endswith(f"; {note}")
    assert note in verdicts[2].notes
    retries = {a.job_id: a.count_attempt for a in effects.actions}
    assert retries == {1: True, 2: False}


def test_unread_jobs_of_a_kind_that_never_beats_do_not_open_the_circuit() -> None:
    # A truncated scan read the report job (beating) and export jobs that never beat
    # (HeartbeatsMissing); of the 20 unread jobs, 18 export jobs are "stale" only because they
    # never beat, 1 report job is stale. The breaker counts the report job, not the exports.
    export = running_job("export", job_id=5, running_for=600).no_beat().on(pod("w-5"))
    world = snapshot(HEALTHY, export)
    snap = world.snap()
    assert isinstance(snap.database, Connected)
    scanned = replace(
        snap.database.scan,
        truncated=True,
        running=22,
        unread_stale_by_kind={"export": 18, "report": 1},
    )
    truncated = replace(snap, database=replace(snap.database, scan=scanned))
    spec = policy_spec(scan={"maxJobs": 2})

    state, effects = reconcile(truncated, ReconcileState(), spec)

    assert conditions(state)[HEARTBEATS_MISSING] == (T, "NoBeats")
    assert not state.safety.circuit_open
    assert "CircuitOpened" not in reasons(effects)
    # A kind the scan did not read at all may beat: its unread stale jobs count.
    unknown = replace(scanned, unread_stale_by_kind={"import": 18, "report": 1})
    state, _ = reconcile(
        replace(truncated, database=replace(snap.database, scan=unknown)), ReconcileState(), spec
    )
    assert state.safety.circuit_open
