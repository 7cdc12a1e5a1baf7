"""The demo's ending: the River rows of the affected jobs, and what River alone would have done.

River's rescuer knows only `attempted_at`: it rescues every job running longer than
RescueStuckJobsAfter (1 h by default), checked every RescuerInterval (30 s by default). So a job
whose pod died sits `running` until attempted_at + 1 h, and a runtime ceiling low enough to
catch failures quickly also rescues healthy jobs that simply run longer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from demo.output import Narrator
from demo.scenario import Injection, Outcome
from devenv.scenario import lifeguard_errors

Json = dict[str, Any]
RESCUE_STUCK_JOBS_AFTER = timedelta(hours=1)
RESCUER_INTERVAL = timedelta(seconds=30)

# What each failure looks like to someone without Lifeguard, until River's rescuer comes.
WITHOUT_LIFEGUARD = {
    "OOM kill": "the row says running; under a Deployment the container restarts and the pod"
    " looks fine again",
    "Node failure": "the row says running; the pod is evicted minutes later, the row stays",
    "Frozen process": "the row says running; the pod is Running and Ready, the process frozen",
    "Stuck job": "the row says running; the pod is Running, the process alive and beating,"
    " the logic goes nowhere",
}


def clock(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


def workers(row: Json) -> str:
    # River's default client ID is "<hostname>_<start time>"; the hostname is the pod's name.
    pods = [client.split("_", 1)[0] for client in row["attempted_by"] or []]
    return ",".join(pods) or "-"


def river_rows(out: Narrator, outcome: Outcome) -> None:
    """The affected and the healthy jobs' rows, as River UI would show them."""
    header = ["ID", "KIND", "STATE", "ATTEMPT", "RAN ON", "ERRORS (LIFEGUARD'S)"]
    table = [header]
    ids = [i.job_id for i in outcome.injections] + outcome.healthy
    for job_id in ids:
        row = outcome.rows[job_id]
        reasons = lifeguard_errors(row)
        table.append(
            [
                str(job_id),
                outcome.kinds.get(job_id, "?"),
                row["state"],
                str(row["attempt"]),
                workers(row),
                reasons[-1] if reasons else "-",
            ]
        )
    out.table(table)
    cancelled = [i for i in outcome.injections if outcome.rows[i.job_id]["state"] == "cancelled"]
    for injection in cancelled:
        metadata = outcome.rows[injection.job_id]["metadata"] or {}
        if "cancel_attempted_at" in metadata:
            out.say(
                f"job {injection.job_id}: cancelled through River (metadata cancel_attempted_at"
                f" {metadata['cancel_attempted_at']}, river_control notified)"
            )


def summary(out: Narrator, outcome: Outcome) -> None:
    """Lifeguard's actions per failure, against River's rescuer with its default."""
    for injection in outcome.injections:
        released = injection.seconds_after_failure(injection.release)
        release = injection.release
        out.say(f"job {injection.job_id} {injection.kind}, {injection.title}:")
        out.say(f"  Lifeguard:   {injection.story()}")
        if release is not None and released is not None:
            out.say(f"               job out of running {_seconds(released)} after the failure")
        out.say(
            f"  River alone: rescued ~{clock(rescued_by_river(injection))}, 1h after it started;"
            f" until then {WITHOUT_LIFEGUARD[injection.title]}"
        )
    frozen_or_stuck = [
        str(i.job_id) for i in outcome.injections if i.title in ("Frozen process", "Stuck job")
    ]
    out.say("")
    out.say(
        f"River's rescuer alone acts on all four only after an hour, and alike: jobs"
        f" {' and '.join(frozen_or_stuck)} hold a worker slot for that hour while their pods"
        f" look healthy; it cannot cancel stuck logic, restart a frozen process, or refund the"
        f" attempt a dead node cost."
    )
    slowest = max(
        (injection.seconds_after_failure(injection.release) or 0.0)
        for injection in outcome.injections
    )
    healthy = " and ".join(str(j) for j in outcome.healthy)
    out.say(
        f"Lowering RescueStuckJobsAfter to catch these within ~{slowest:.0f}s would have"
        f" rescued the healthy jobs {healthy} ({outcome.healthy_seconds:.0f}s long) mid-run and"
        f" run them twice. Lifeguard left them alone: {_healthy_result(outcome)}."
    )


def rescued_by_river(injection: Injection) -> datetime:
    """The latest moment River's rescuer would have rescued the failed attempt."""
    return injection.attempted_at + RESCUE_STUCK_JOBS_AFTER + RESCUER_INTERVAL


def _seconds(seconds: float) -> str:
    # Pod and node times have a resolution of one second.
    return "under a second" if seconds < 1 else f"{seconds:.0f}s"


def _healthy_result(outcome: Outcome) -> str:
    parts = []
    for job_id in outcome.healthy:
        row = outcome.rows[job_id]
        touched = "untouched" if not lifeguard_errors(row) else "TOUCHED"
        parts.append(f"{job_id} {row['state']} in attempt {row['attempt']}, {touched}")
    return "; ".join(parts)
