"""The shell's decisions as pure code: Snapshot + ReconcileState + spec -> new state + Effects.

Imports no I/O library (import-linter's pure-core contract): the supervisor gathers the
Snapshot and carries out the Effects; `lifeguard explain` prints them.
"""

from lifeguard.reconcile.effects import Effects, Event, LogLine, Metric, Outcome, Result
from lifeguard.reconcile.observe import ClientIds, observe
from lifeguard.reconcile.reconcile import InvalidSpec, feed_outcomes, reconcile
from lifeguard.reconcile.snapshot import (
    ApiserverOutage,
    Connected,
    DatabaseFailed,
    DatabaseOutcome,
    InventoryView,
    NoDatabase,
    Scanned,
    Snapshot,
)
from lifeguard.reconcile.state import ReconcileState, configured, patched
from lifeguard.reconcile.status import StatusBook

__all__ = [
    "ApiserverOutage",
    "ClientIds",
    "Connected",
    "DatabaseFailed",
    "DatabaseOutcome",
    "Effects",
    "Event",
    "InvalidSpec",
    "InventoryView",
    "LogLine",
    "Metric",
    "NoDatabase",
    "Outcome",
    "ReconcileState",
    "Result",
    "Scanned",
    "Snapshot",
    "StatusBook",
    "configured",
    "feed_outcomes",
    "observe",
    "patched",
    "reconcile",
]
