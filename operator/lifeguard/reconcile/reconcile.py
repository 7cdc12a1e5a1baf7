"""One policy's cycle as two pure steps: `reconcile` decides, `feed_outcomes` reports.

Owns the sequence of a cycle: the policy's conditions (conditions.py), the per-job decisions
and the plan (judge.py), the metric updates of a scan (scan_metrics.py), all gathered on one
working copy (cycle.py); and whether the status is written. The shell gathers a Snapshot, calls
`reconcile`, writes `effects.actions`, passes their outcomes to `feed_outcomes`, and carries
out the Effects that returns. `lifeguard explain` calls `reconcile` on a snapshot gathered the
same way and prints what it decided.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from lifeguard.model.conditions import INVALID_SPEC
from lifeguard.model.policy import JobPolicySpec
from lifeguard.reconcile.announce import announce
from lifeguard.reconcile.conditions import (
    circuit_open,
    database_connected,
    database_failed,
    no_database,
    not_ready,
    note_apiserver_outage,
    note_nodes,
    overlapping,
    scanning,
)
from lifeguard.reconcile.cycle import Cycle
from lifeguard.reconcile.effects import Effects, Outcome
from lifeguard.reconcile.judge import judge
from lifeguard.reconcile.scan_metrics import count_scan
from lifeguard.reconcile.snapshot import Connected, DatabaseFailed, NoDatabase, Snapshot
from lifeguard.reconcile.state import ReconcileState

# A status write at least this often, so lastScanTime shows the operator is alive.
STATUS_REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class InvalidSpec:
    """The policy's spec cannot be used; the message names the fields."""

    message: str


def reconcile(
    snapshot: Snapshot, state: ReconcileState, spec: JobPolicySpec | InvalidSpec
) -> tuple[ReconcileState, Effects]:
    """Decides one cycle: the actions to write now, and everything said before they are."""
    cycle = Cycle(snapshot, state)
    cycle.book.ensure_conditions(snapshot.wall)
    if isinstance(spec, InvalidSpec):
        not_ready(cycle, INVALID_SPEC, spec.message or "no spec")
    else:
        _database(cycle, spec)
    note_nodes(cycle)
    note_apiserver_outage(cycle)
    return cycle.result()


def feed_outcomes(
    snapshot: Snapshot, state: ReconcileState, effects: Effects, outcomes: Sequence[Outcome]
) -> tuple[ReconcileState, Effects]:
    """The cycle's report: decisions recorded once per attempt, Events, metrics, the status.

    `effects` is what `reconcile` returned for this snapshot; the result carries its Events,
    metrics and logs too, followed by those of the outcomes, and the status patch (if any).
    """
    book = state.book.copy()
    events, metrics, logs = list(effects.events), list(effects.metrics), list(effects.logs)
    announced = state.announced
    scan = snapshot.scan
    if effects.plan is not None and scan is not None:
        running = {obs.job.id for obs, _ in effects.judged}
        said = announce(
            effects.plan,
            outcomes,
            book,
            now=scan.now,
            running=running,
            announced=announced,
            policy_name=snapshot.policy,
        )
        announced = frozenset(said.announced)
        events += said.events
        metrics += said.metrics
        logs += said.logs
    status = book.changes()
    due = (
        state.last_patch is None or snapshot.monotonic - state.last_patch >= STATUS_REFRESH_SECONDS
    )
    if status is None and due:
        status = book.render()
    state = replace(state, book=book, announced=announced, cycles=state.cycles + 1)
    return state, replace(
        effects, events=tuple(events), metrics=tuple(metrics), logs=tuple(logs), status=status
    )


def _database(cycle: Cycle, spec: JobPolicySpec) -> None:
    outcome = cycle.snapshot.database
    if isinstance(outcome, NoDatabase):
        no_database(cycle, outcome)
    elif isinstance(outcome, DatabaseFailed):
        database_failed(cycle, outcome)
    elif isinstance(outcome, Connected):
        _scanned(cycle, spec, outcome)


def _scanned(cycle: Cycle, spec: JobPolicySpec, connected: Connected) -> None:
    """A scan: the policy's own jobs judged and planned, then what its conditions say of them."""
    scan, book = connected.scan, cycle.book
    database_connected(cycle, connected)
    if cycle.snapshot.kind_stats is not None:
        book.kind_stats = list(cycle.snapshot.kind_stats)
    judgment = judge(cycle, spec, scan)
    judged, plan, claimed = judgment.judged, judgment.plan, judgment.claimed
    count_scan(cycle, judged)
    cycle.effects = Effects(
        actions=tuple(a for a in plan.actions if not a.dry_run),
        judged=tuple(judged),
        plan=plan,
        not_judged=claimed.not_judged,
    )
    overlapping(cycle, claimed, len(judged), scan.now)
    circuit_open(cycle, plan.state, scan.now)
    scanning(cycle, spec, scan, len(judged), len(claimed.not_judged))
    book.scanned([verdict.cause for _, verdict in judged], scan.now)
