"""What one cycle says of the policy as a whole: its conditions, and the Events their changes
deserve.

Ready, DatabaseConnected, NodesObserved, Overlapping and CircuitOpen, and the Event of an
apiserver outage that ended. Each is set from the Snapshot and the cycle's outcome, not from any
one job. Where a change deserves an Event (Ready turning False, the database lost or found
again, an overlap appearing) it goes out when the condition changes, never at every scan.
HeartbeatsMissing is set where the jobs are judged (judge.py), because it decides how they are.
"""

from datetime import datetime

from lifeguard.model.conditions import (
    CIRCUIT_OPEN,
    DATABASE_CONNECTED,
    NODES_OBSERVED,
    OVERLAPPING,
    READY,
    find_condition,
)
from lifeguard.model.conditions import ConditionStatus as S
from lifeguard.model.enums import Mode
from lifeguard.model.ownership import describe_overlaps
from lifeguard.model.policy import JobPolicySpec
from lifeguard.plan import SafetyState
from lifeguard.reconcile.claim import Claimed
from lifeguard.reconcile.cycle import Cycle
from lifeguard.reconcile.effects import Event, LogLine, gauge, inc
from lifeguard.reconcile.snapshot import Connected, DatabaseFailed, NoDatabase, Scanned


def not_ready(cycle: Cycle, reason: str, message: str) -> None:
    changed = cycle.book.condition(READY, S.FALSE, reason, message, cycle.snapshot.wall)
    if changed or cycle.state.cycles == 0:
        cycle.events.append(Event("Warning", reason, message))


def note_nodes(cycle: Cycle) -> None:
    inventory, now = cycle.snapshot.inventory, cycle.snapshot.wall
    if not inventory.nodes_observed:
        cycle.book.condition(
            NODES_OBSERVED,
            S.FALSE,
            "NodeReadForbidden",
            "The operator may not read nodes: node loss is detected from heartbeats alone.",
            now,
        )
    elif inventory.leases_blind:
        # Its own view is stale: a Lease that looks old may just not have been read.
        cycle.book.condition(
            NODES_OBSERVED,
            S.FALSE,
            "LeasesUnread",
            "The operator has not listed node Leases lately (is the apiserver reachable?):"
            " a silent kubelet is no evidence of node loss until it can look again.",
            now,
        )
    else:
        seen = find_condition(cycle.book.conditions, NODES_OBSERVED)
        if seen is not None and seen.reason == "LeasesUnread":
            cycle.book.condition(
                NODES_OBSERVED, S.TRUE, "LeasesRead", "Node Leases are listed again.", now
            )


def note_apiserver_outage(cycle: Cycle) -> None:
    """An apiserver outage that ended is said once on each policy, in an Event (the status
    could not be written while it lasted); a policy that starts later is not told."""
    outage = cycle.snapshot.apiserver_outage
    if outage is None or outage.started == cycle.outage_reported:
        return
    if cycle.state.cycles > 0:
        cycle.events.append(
            Event(
                "Warning",
                "ApiserverUnreachable",
                f"The apiserver was unreachable for {outage.seconds:.0f}s ({outage.error})."
                " Database scans and writes went on; pod restarts waited and Events of that"
                " time were dropped (the operator's log has every decision).",
            )
        )
    cycle.outage_reported = outage.started


# -- the database ----------------------------------------------------------------------------
def no_database(cycle: Cycle, outcome: NoDatabase) -> None:
    not_ready(cycle, outcome.reason, outcome.message)
    cycle.book.condition(
        DATABASE_CONNECTED,
        S.UNKNOWN,
        outcome.reason,
        "No database URL to connect to.",
        cycle.snapshot.wall,
    )
    cycle.book.unscanned()


def database_failed(cycle: Cycle, outcome: DatabaseFailed) -> None:
    cycle.metrics.append(inc("database_errors"))
    before = find_condition(cycle.book.conditions, DATABASE_CONNECTED)
    # Said once, then again only when the failure changes: not at every scan.
    if before is None or before.status != S.FALSE or before.message != outcome.message:
        cycle.logs.append(LogLine("warning", outcome.message))
    if cycle.book.condition(
        DATABASE_CONNECTED, S.FALSE, outcome.reason, outcome.message, cycle.snapshot.wall
    ):
        cycle.events.append(Event("Warning", outcome.event_reason, outcome.message))
    not_ready(cycle, "DatabaseUnavailable", outcome.message)
    cycle.book.unscanned()


def database_connected(cycle: Cycle, connected: Connected) -> None:
    scan, book = connected.scan, cycle.book
    before = find_condition(book.conditions, DATABASE_CONNECTED)
    if book.condition(
        DATABASE_CONNECTED, S.TRUE, "Connected", f"Scanning {connected.target}.", scan.now
    ):
        if before is not None and before.status == S.FALSE:
            cycle.events.append(
                Event("Normal", "DatabaseReconnected", f"Connected to {connected.target} again.")
            )
            cycle.logs.append(LogLine("info", f"connected to {connected.target} again"))
        else:
            cycle.events.append(
                Event("Normal", "DatabaseConnected", f"Connected to {connected.target}.")
            )


# -- after a scan ----------------------------------------------------------------------------
def overlapping(cycle: Cycle, claimed: Claimed, judged: int, now: datetime) -> None:
    """Overlapping: older policies judge some of the jobs this one selects. An Event when
    it turns True (once, not at every scan); None without a fleet (nothing to overlap)."""
    if cycle.snapshot.fleet is None:
        return
    book = cycle.book
    before = next((c.status for c in book.conditions if c.type == OVERLAPPING), None)
    if claimed.overlaps:
        message = describe_overlaps(claimed.overlaps, judged)
        book.condition(OVERLAPPING, S.TRUE, "OlderPolicySelects", message, now)
        if before is not S.TRUE:
            cycle.events.append(Event("Warning", "PoliciesOverlap", message))
    else:
        book.condition(
            OVERLAPPING,
            S.FALSE,
            "NoOverlap",
            "No older policy selects the jobs this policy judges.",
            now,
        )


def circuit_open(cycle: Cycle, safety: SafetyState, now: datetime) -> None:
    breaker_open = safety.circuit_open
    cycle.book.condition(
        CIRCUIT_OPEN,
        S.TRUE if breaker_open else S.FALSE,
        "TooManyStale" if breaker_open else "Closed",
        safety.breaker_message if breaker_open else "Heartbeat-based actions are allowed.",
        now,
    )
    cycle.metrics.append(gauge("circuit_open", 1 if breaker_open else 0))


def scanning(cycle: Cycle, spec: JobPolicySpec, scan: Scanned, judged: int, others: int) -> None:
    """Ready after a scan: how many jobs the policy watches, in which mode, and how many it
    leaves to other policies or unread."""
    mode = "dry run" if spec.safety.mode is Mode.DRY_RUN else "enforcing"
    elsewhere = (
        f"; {others} more it selects are judged by other policies or none"
        " (lifeguard explain says why)"
        if others
        else ""
    )
    if scan.truncated:
        watching = (
            f"Watching {judged} running jobs, read {len(scan.jobs)} of"
            f" {scan.running or 'more'}: scan.maxJobs ({spec.scan.max_jobs}) leaves the"
            " newest unread (the circuit breaker counts them all)"
        )
    else:
        watching = f"Watching {judged} running jobs"
    cycle.book.condition(READY, S.TRUE, "Scanning", f"{watching}, {mode}{elsewhere}.", scan.now)
