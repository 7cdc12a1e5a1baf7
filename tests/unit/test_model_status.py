"""Status: conditions per the API conventions, bounded lists, counts and totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lifeguard.model.conditions import (
    READY,
    Condition,
    ConditionStatus,
    find_condition,
    set_condition,
)
from lifeguard.model.enums import Action, Cause
from lifeguard.model.status import (
    MAX_RECENT_ACTIONS,
    ActionTotals,
    JobCounts,
    JobPolicyStatus,
    RecentAction,
    with_recent_action,
)

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def ready(conditions: list[Condition], status: str, reason: str, at: datetime) -> list[Condition]:
    return set_condition(
        conditions,
        type=READY,
        status=status,
        reason=reason,
        message=f"{reason} at {at}",
        now=at,
        observed_generation=2,
    )


def test_first_sight_sets_the_condition_with_now_as_transition_time() -> None:
    conditions = ready([], "Unknown", "Starting", T0)

    assert conditions == [
        Condition(
            type=READY,
            status=ConditionStatus.UNKNOWN,
            observed_generation=2,
            last_transition_time=T0,
            reason="Starting",
            message=f"Starting at {T0}",
        )
    ]


def test_transition_time_is_kept_while_the_status_does_not_change() -> None:
    first = ready([], "True", "Scanning", T0)
    later = ready(first, "True", "ScanCompleted", T0 + timedelta(minutes=5))

    assert later[0].last_transition_time == T0
    assert later[0].reason == "ScanCompleted"


def test_transition_time_moves_when_the_status_changes() -> None:
    first = ready([], "True", "Scanning", T0)
    later = ready(first, "False", "InvalidSpec", T0 + timedelta(minutes=5, microseconds=7))

    assert later[0].last_transition_time == T0 + timedelta(minutes=5)
    assert later[0].status is ConditionStatus.FALSE


def test_other_conditions_keep_their_place() -> None:
    conditions = set_condition(
        ready([], "True", "Scanning", T0),
        type="DatabaseConnected",
        status="True",
        reason="Connected",
        message="",
        now=T0,
        observed_generation=1,
    )
    conditions = ready(conditions, "False", "SecretNotFound", T0)

    assert [c.type for c in conditions] == [READY, "DatabaseConnected"]
    assert find_condition(conditions, "CircuitOpen") is None


def test_conditions_serialize_as_kubernetes_times() -> None:
    status = JobPolicyStatus(conditions=ready([], "True", "Scanning", T0), last_scan_time=T0)
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)

    assert wire["conditions"][0]["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    assert wire["lastScanTime"] == "2025-01-01T12:00:00Z"
    assert wire["conditions"][0]["observedGeneration"] == 2
    assert JobPolicyStatus.model_validate(wire) == status


def test_job_counts_tally_the_verdicts_of_a_scan() -> None:
    counts = JobCounts.of([Cause.HEALTHY, Cause.HEALTHY, Cause.STUCK, Cause.INFRASTRUCTURE_DEATH])

    assert counts.model_dump(by_alias=True, exclude_defaults=True) == {
        "running": 4,
        "healthy": 2,
        "stuck": 1,
        "infrastructureDeath": 1,
    }


def test_totals_count_applied_actions_as_rescues_and_the_rest_as_suppressed() -> None:
    totals = (
        ActionTotals()
        .add(Action.RETRY, applied=True)
        .add(Action.RESTART_POD, applied=True)
        .add(Action.CANCEL, applied=False)
        .add(Action.NONE, applied=True)
    )

    assert totals == ActionTotals(rescued=2, retried=1, pods_restarted=1, suppressed=1)


def test_recent_actions_keep_the_newest_ten() -> None:
    recent: list[RecentAction] = []
    for job_id in range(1, 14):
        action = RecentAction(
            time=T0,
            job_id=job_id,
            kind="email",
            cause=Cause.STALE,
            reason="BeatStale",
            action=Action.RETRY,
            applied=True,
        )
        recent = with_recent_action(recent, action)

    assert len(recent) == MAX_RECENT_ACTIONS
    assert [a.job_id for a in recent[:2]] == [13, 12]
