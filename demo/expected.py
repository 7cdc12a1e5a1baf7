"""What the demo must show: the verdicts, actions and final rows each injected failure must get
from Lifeguard, and the healthy jobs left untouched. `problems` names every difference, so
`make demo` and tests/e2e/test_demo.py judge a run the same way."""

from __future__ import annotations

from dataclasses import dataclass

from demo.scenario import Outcome
from devenv.scenario import lifeguard_errors, untouched


@dataclass(frozen=True)
class Expected:
    """What a failure must get from Lifeguard, and where its job must end."""

    first: tuple[str, ...]  # verdict prefixes Lifeguard's first applied action may have
    release: str  # verdict prefix of the action that takes the job out of running
    error: str | None  # prefix of Lifeguard's entry in River's errors (None: no entry)
    state: str
    attempt: int


EXPECTED = {
    # Counted: a memory hog may fail again, and River's max_attempts must bound it.
    "OOM kill": Expected(
        ("ResourceExhausted/OOMKilled",),
        "ResourceExhausted/OOMKilled",
        "lifeguard: ResourceExhausted/OOMKilled",
        "completed",
        2,
    ),
    # The beats stop before the node turns NotReady, so a pod restart (which a dead kubelet
    # never carries out) usually comes first, then NodeLost. The attempt is refunded: the rerun
    # on the standby worker is attempt 1 again.
    "Node failure": Expected(
        ("Unresponsive/BeatStale", "InfrastructureDeath/NodeLost"),
        "InfrastructureDeath/NodeLost",
        "lifeguard: InfrastructureDeath/NodeLost",
        "completed",
        1,
    ),
    # Lifeguard's own restart keeps the cause it acted on; a frozen process is the worker's
    # fault, so the retry counts the attempt.
    "Frozen process": Expected(
        ("Unresponsive/BeatStale",),
        "Unresponsive/BeatStale",
        "lifeguard: Unresponsive/BeatStale",
        "completed",
        2,
    ),
    # A cancel names its cause in River's errors too; River's JobCancel ends the attempt.
    "Stuck job": Expected(
        ("Stuck/ProgressStale",),
        "Stuck/ProgressStale",
        "lifeguard: Stuck/ProgressStale",
        "cancelled",
        1,
    ),
}


def problems(outcome: Outcome) -> list[str]:
    """What differs from the expected story; empty when the demo went as it should."""
    found: list[str] = []
    for injection in outcome.injections:
        expected = EXPECTED[injection.title]
        row = outcome.rows[injection.job_id]
        name = f"job {injection.job_id} ({injection.title})"
        first, release = injection.first, injection.release
        if first is None or not first.verdict.startswith(expected.first):
            found.append(f"{name}: Lifeguard's actions {injection.story()}")
        elif release is None or not release.verdict.startswith(expected.release):
            found.append(f"{name}: released by {release}, expected {expected.release}")
        errors = lifeguard_errors(row)
        if expected.error is not None and not any(e.startswith(expected.error) for e in errors):
            found.append(f"{name}: no River error starting {expected.error!r}: {errors}")
        if expected.error is None and errors:
            found.append(f"{name}: unexpected entries in River's errors {errors}")
        if (row["state"], row["attempt"]) != (expected.state, expected.attempt):
            found.append(
                f"{name}: {row['state']} in attempt {row['attempt']}, expected"
                f" {expected.state} in attempt {expected.attempt}"
            )
        if expected.state == "cancelled" and "cancel_attempted_at" not in (row["metadata"] or {}):
            found.append(f"{name}: cancelled without River's cancel_attempted_at")
    for job_id in outcome.healthy + outcome.short:
        row = outcome.rows[job_id]
        if (row["state"], row["attempt"]) != ("completed", 1) or not untouched(row):
            found.append(
                f"healthy job {job_id}: {row['state']} in attempt {row['attempt']},"
                f" errors {row['errors']}, metadata {row['metadata']}"
            )
        if any(d.job_id == job_id for d in outcome.decisions):
            found.append(f"healthy job {job_id}: Lifeguard decided something about it")
    return found
