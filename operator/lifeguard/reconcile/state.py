"""ReconcileState: what one policy's reconcile remembers from one cycle to the next.

Owns the memory between cycles: the status book, the planner's safety state, the one
"announced once per attempt" memory, the verdicts already counted, the running jobs (for
run-time metrics when they stop), when the status was last patched, how many cycles ran, and
the kinds already reported without beats.
Replaced, never changed in place: `reconcile` returns a new state.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from lifeguard.model.conditions import CIRCUIT_OPEN, ConditionStatus, find_condition
from lifeguard.model.enums import Action, Cause
from lifeguard.plan import SafetyState
from lifeguard.reconcile.status import StatusBook

# One decision on one attempt of one job: announced (status, Event, log) at most once.
Announced = tuple[int, datetime, Action]
# One verdict on one attempt of one job: counted in the verdicts metric at most once.
SeenVerdict = tuple[int, datetime, Cause]


@dataclass(frozen=True, slots=True)
class ReconcileState:
    book: StatusBook = field(default_factory=lambda: StatusBook(generation=None))
    safety: SafetyState = field(default_factory=SafetyState)
    announced: frozenset[Announced] = frozenset()
    seen_verdicts: frozenset[SeenVerdict] = frozenset()
    # Running jobs of the last scan: id -> (kind, seconds running), for the duration metric.
    running: Mapping[int, tuple[str, float]] = field(default_factory=dict)
    # The monotonic reading of the last successful status patch; None: never patched.
    last_patch: float | None = None
    cycles: int = 0
    # When the last apiserver outage reported on this policy began (monotonic).
    outage_reported: float | None = None
    # The kinds whose missing beats the last HeartbeatsMissing Event named: a kind that joins
    # them deserves an Event of its own.
    beats_missing_kinds: frozenset[str] = frozenset()


def configured(
    state: ReconcileState, generation: int | None, status: Mapping[str, Any] | None
) -> ReconcileState:
    """A new spec generation; the first one resumes from the status on the object."""
    book = state.book.copy()
    safety = state.safety
    if book.generation is None:
        book = StatusBook.resume(dict(status or {}), generation)
        # A breaker the status says is open was announced (CircuitOpened) by whoever wrote it:
        # this replica (after a failover or a restart) goes on from there, so an open circuit
        # is not announced twice and one that closed meanwhile is announced as closed.
        breaker = find_condition(book.conditions, CIRCUIT_OPEN)
        if breaker is not None and breaker.status == ConditionStatus.TRUE:
            safety = replace(safety, circuit_open=True, breaker_message=breaker.message)
    book.generation = generation
    return replace(state, book=book, safety=safety)


def patched(state: ReconcileState, status: dict[str, Any], at: float) -> ReconcileState:
    """The status patch was written at monotonic reading `at`."""
    book = state.book.copy()
    book.patched(status)
    return replace(state, book=book, last_patch=at)
