"""The demo's judge (`problems`) and summary on hand-built outcomes: a good run passes, each way
a run can go wrong is named."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from demo.expected import problems
from demo.output import Narrator
from demo.report import summary
from demo.scenario import Injection, Outcome
from demo.timeline import Decision

Json = dict[str, Any]
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def decision(job_id: int, verdict: str, action: str, after: float) -> Decision:
    cause, reason = verdict.split("/")
    return Decision(T0 + timedelta(seconds=after), job_id, "k", "pod", cause, reason, action, True)


def row(state: str, attempt: int, errors: Sequence[str] = (), **metadata: Any) -> Json:
    return {
        "state": state,
        "attempt": attempt,
        "errors": [{"error": e} for e in errors],
        "metadata": metadata,
        "attempted_by": ["pod_1"],
    }


def good_outcome() -> Outcome:
    injections = [
        Injection("OOM kill", 1, "eat", "importer", T0, T0),
        Injection("Node failure", 2, "sleep", "billing", T0, T0),
        Injection("Frozen process", 3, "freeze", "mailer", T0, T0),
        Injection("Stuck job", 4, "stall", "indexer", T0, T0),
    ]
    injections[0].actions = [decision(1, "ResourceExhausted/OOMKilled", "Retry", 1)]
    injections[1].actions = [
        decision(2, "Unresponsive/BeatStale", "RestartPod", 4),
        decision(2, "InfrastructureDeath/NodeLost", "Retry", 17),
    ]
    injections[2].actions = [
        decision(3, "Unresponsive/BeatStale", "RestartPod", 4),
        decision(3, "Unresponsive/BeatStale", "Retry", 7),
    ]
    injections[3].actions = [decision(4, "Stuck/ProgressStale", "Cancel", 5)]
    rows = {
        1: row("completed", 2, ["lifeguard: ResourceExhausted/OOMKilled: pod importer"]),
        2: row("completed", 1, ["lifeguard: InfrastructureDeath/NodeLost: pod billing"]),
        3: row("completed", 2, ["lifeguard: Unresponsive/BeatStale: pod mailer"]),
        4: row(
            "cancelled",
            1,
            ["lifeguard: Stuck/ProgressStale: pod indexer; Lifeguard cancelled the job"],
            cancel_attempted_at="2026-01-01T12:00:05Z",
        ),
        5: row("completed", 1),
        6: row("completed", 1),
    }
    decisions = [d for i in injections for d in i.actions]
    return Outcome(injections, healthy=[5], short=[6], rows=rows, decisions=decisions)


def test_a_run_that_went_as_told_has_no_problems() -> None:
    assert problems(good_outcome()) == []


def _healthy_job_retried(outcome: Outcome) -> None:
    outcome.rows[5] = row("completed", 2, ["lifeguard: Unresponsive/BeatStale: pod reports"])


def _healthy_job_decided(outcome: Outcome) -> None:
    outcome.decisions.append(decision(5, "Unresponsive/BeatStale", "RestartPod", 3))


def _oom_taken_for_a_crash(outcome: Outcome) -> None:
    outcome.injections[0].actions = [decision(1, "ApplicationCrash/ExitCode", "Retry", 1)]


def _node_failure_never_node_lost(outcome: Outcome) -> None:
    outcome.injections[1].actions = outcome.injections[1].actions[:1]


def _node_attempt_not_refunded(outcome: Outcome) -> None:
    outcome.rows[2]["attempt"] = 2


def _stuck_job_retried_instead_of_cancelled(outcome: Outcome) -> None:
    outcome.rows[4] = row("completed", 2, ["lifeguard: Stuck/ProgressStale: pod indexer"])


def _no_action_seen(outcome: Outcome) -> None:
    outcome.injections[2].actions = []


@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        (_healthy_job_retried, "healthy job 5"),
        (_healthy_job_decided, "healthy job 5: Lifeguard decided"),
        (_oom_taken_for_a_crash, "job 1 (OOM kill): Lifeguard's actions Retry (ApplicationCrash"),
        (_node_failure_never_node_lost, "job 2 (Node failure): released by None"),
        (_node_attempt_not_refunded, "job 2 (Node failure): completed in attempt 2"),
        (_stuck_job_retried_instead_of_cancelled, "job 4 (Stuck job): completed in attempt 2"),
        (_no_action_seen, "job 3 (Frozen process): Lifeguard's actions nothing seen"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:] or None,
)
def test_each_way_a_run_goes_wrong_is_named(spoil: Callable[[Outcome], None], named: str) -> None:
    outcome = good_outcome()
    spoil(outcome)

    found = problems(outcome)

    assert any(problem.startswith(named) for problem in found), found


def test_summary_gives_each_failure_its_time_out_of_running_and_rivers_rescue_time() -> None:
    out = Narrator(stream=io.StringIO())

    summary(out, good_outcome())

    text = "\n".join(out.lines)
    assert "job out of running 17s after the failure" in text  # the node: NodeLost's retry
    assert "job out of running 1s after the failure" in text
    assert text.count("River alone: rescued ~") == 4
    rescue = (T0 + timedelta(hours=1, seconds=30)).astimezone().strftime("%H:%M:%S")
    assert f"rescued ~{rescue}, 1h after it started" in text
    assert "within ~17s would have rescued the healthy jobs 5" in text
