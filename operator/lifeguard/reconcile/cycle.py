"""The working copy of one `reconcile`: a new status book, the state's memories, and the
Events, metrics and log lines gathered so far.

The steps of a cycle (the policy's conditions in conditions.py, the per-job decisions in
judge.py, the metrics of a scan in scan_metrics.py) each add to one `Cycle`, in the order
reconcile.py calls them; `result` then freezes it into the new `ReconcileState` and the
`Effects`. The state it was made from is never changed.
"""

from dataclasses import replace

from lifeguard.reconcile.effects import Effects, Event, LogLine, Metric
from lifeguard.reconcile.snapshot import Snapshot
from lifeguard.reconcile.state import ReconcileState
from lifeguard.reconcile.status import StatusBook


class Cycle:
    """The working copy of one reconcile: a new book and the effects gathered so far."""

    def __init__(self, snapshot: Snapshot, state: ReconcileState) -> None:
        self.snapshot = snapshot
        self.state = state
        self.book: StatusBook = state.book.copy()
        self.safety = state.safety
        self.seen_verdicts = state.seen_verdicts
        self.running = state.running
        self.outage_reported = state.outage_reported
        self.beats_missing_kinds = state.beats_missing_kinds
        self.events: list[Event] = []
        self.metrics: list[Metric] = []
        self.logs: list[LogLine] = []
        self.effects = Effects()

    def result(self) -> tuple[ReconcileState, Effects]:
        state = replace(
            self.state,
            book=self.book,
            safety=self.safety,
            seen_verdicts=self.seen_verdicts,
            running=self.running,
            outage_reported=self.outage_reported,
            beats_missing_kinds=self.beats_missing_kinds,
        )
        return state, replace(
            self.effects,
            events=tuple(self.events),
            metrics=tuple(self.metrics),
            logs=tuple(self.logs),
        )
