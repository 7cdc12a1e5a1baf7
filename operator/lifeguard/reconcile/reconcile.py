"""One policy's cycle as two pure steps: `reconcile` decides, `feed_outcomes` reports.

Owns the sequence of decisions and the conditions: verdicts, the plan, the Ready,
DatabaseConnected, CircuitOpen and NodesObserved conditions (and the Events their changes
deserve), the metric updates of a scan, and whether the status is written. The shell gathers a
Snapshot, calls `reconcile`, writes `effects.actions`, passes their outcomes to
`feed_outcomes`, and carries out the Effects that returns. `lifeguard explain` calls
`reconcile` on a snapshot gathered the same way and prints what it decided.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from lifeguard import plan as planning
from lifeguard.model.conditions import (
    CIRCUIT_OPEN,
    DATABASE_CONNECTED,
    HEARTBEATS_MISSING,
    INVALID_SPEC,
    NODES_OBSERVED,
    OVERLAPPING,
    READY,
    find_condition,
)
from lifeguard.model.conditions import ConditionStatus as S
from lifeguard.model.enums import Cause, Mode
from lifeguard.model.observation import Observation
from lifeguard.model.ownership import describe_overlaps
from lifeguard.model.policy import JobPolicySpec
from lifeguard.reconcile.announce import announce
from lifeguard.reconcile.claim import Claimed, claim
from lifeguard.reconcile.effects import (
    Effects,
    Event,
    LogLine,
    Metric,
    Outcome,
    gauge,
    inc,
    observe,
)
from lifeguard.reconcile.observe import ClientIds
from lifeguard.reconcile.observe import observe as observe_jobs
from lifeguard.reconcile.snapshot import (
    Connected,
    DatabaseFailed,
    NoDatabase,
    Snapshot,
)
from lifeguard.reconcile.state import ReconcileState, SeenVerdict
from lifeguard.reconcile.status import StatusBook
from lifeguard.verdict import decide
from lifeguard.verdict.fleet import beats_missing, judged_without_beats, restarted_for_others
from lifeguard.verdict.nodes import with_node_beats

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
    cycle = _Cycle(snapshot, state)
    cycle.book.ensure_conditions(snapshot.wall)
    if isinstance(spec, InvalidSpec):
        cycle.not_ready(INVALID_SPEC, spec.message or "no spec")
    else:
        cycle.database(spec)
    cycle.note_nodes()
    cycle.note_apiserver_outage()
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


class _Cycle:
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

    # -- conditions ------------------------------------------------------------------------
    def not_ready(self, reason: str, message: str) -> None:
        changed = self.book.condition(READY, S.FALSE, reason, message, self.snapshot.wall)
        if changed or self.state.cycles == 0:
            self.events.append(Event("Warning", reason, message))

    def note_nodes(self) -> None:
        inventory, now = self.snapshot.inventory, self.snapshot.wall
        if not inventory.nodes_observed:
            self.book.condition(
                NODES_OBSERVED,
                S.FALSE,
                "NodeReadForbidden",
                "The operator may not read nodes: node loss is detected from heartbeats alone.",
                now,
            )
        elif inventory.leases_blind:
            # Its own view is stale: a Lease that looks old may just not have been read.
            self.book.condition(
                NODES_OBSERVED,
                S.FALSE,
                "LeasesUnread",
                "The operator has not listed node Leases lately (is the apiserver reachable?):"
                " a silent kubelet is no evidence of node loss until it can look again.",
                now,
            )
        else:
            seen = find_condition(self.book.conditions, NODES_OBSERVED)
            if seen is not None and seen.reason == "LeasesUnread":
                self.book.condition(
                    NODES_OBSERVED, S.TRUE, "LeasesRead", "Node Leases are listed again.", now
                )

    def note_apiserver_outage(self) -> None:
        """An apiserver outage that ended is said once on each policy, in an Event (the status
        could not be written while it lasted); a policy that starts later is not told."""
        outage = self.snapshot.apiserver_outage
        if outage is None or outage.started == self.outage_reported:
            return
        if self.state.cycles > 0:
            self.events.append(
                Event(
                    "Warning",
                    "ApiserverUnreachable",
                    f"The apiserver was unreachable for {outage.seconds:.0f}s ({outage.error})."
                    " Database scans and writes went on; pod restarts waited and Events of that"
                    " time were dropped (the operator's log has every decision).",
                )
            )
        self.outage_reported = outage.started

    # -- the database ----------------------------------------------------------------------
    def database(self, spec: JobPolicySpec) -> None:
        outcome = self.snapshot.database
        if isinstance(outcome, NoDatabase):
            self.not_ready(outcome.reason, outcome.message)
            self.book.condition(
                DATABASE_CONNECTED,
                S.UNKNOWN,
                outcome.reason,
                "No database URL to connect to.",
                self.snapshot.wall,
            )
            self.book.unscanned()
        elif isinstance(outcome, DatabaseFailed):
            self.metrics.append(inc("database_errors"))
            before = find_condition(self.book.conditions, DATABASE_CONNECTED)
            # Said once, then again only when the failure changes: not at every scan.
            if before is None or before.status != S.FALSE or before.message != outcome.message:
                self.logs.append(LogLine("warning", outcome.message))
            if self.book.condition(
                DATABASE_CONNECTED, S.FALSE, outcome.reason, outcome.message, self.snapshot.wall
            ):
                self.events.append(Event("Warning", outcome.event_reason, outcome.message))
            self.not_ready("DatabaseUnavailable", outcome.message)
            self.book.unscanned()
        elif isinstance(outcome, Connected):
            self.scanned(spec, outcome)

    def scanned(self, spec: JobPolicySpec, connected: Connected) -> None:
        scan, book = connected.scan, self.book
        before = find_condition(book.conditions, DATABASE_CONNECTED)
        if book.condition(
            DATABASE_CONNECTED, S.TRUE, "Connected", f"Scanning {connected.target}.", scan.now
        ):
            if before is not None and before.status == S.FALSE:
                self.events.append(
                    Event(
                        "Normal", "DatabaseReconnected", f"Connected to {connected.target} again."
                    )
                )
                self.logs.append(LogLine("info", f"connected to {connected.target} again"))
            else:
                self.events.append(
                    Event("Normal", "DatabaseConnected", f"Connected to {connected.target}.")
                )
        if self.snapshot.kind_stats is not None:
            book.kind_stats = list(self.snapshot.kind_stats)

        client_ids = ClientIds.of(spec)
        claimed = claim(scan.jobs, self.snapshot, client_ids)
        observations = observe_jobs(
            claimed.owned,
            scan.now,
            spec,
            self.snapshot.inventory,
            adaptive_limits=self.snapshot.adaptive_limits,
            client_ids=client_ids,
            node_beats=False,
        )
        observations = self.heartbeats(spec, observations, scan.now)
        silent_kinds = self.beats_missing_kinds
        if not scan.truncated:
            # Each job with what the beats of the others on its node say, once the kinds whose
            # jobs never beat are known (they are silent by design, no sign of death or life).
            # A truncated scan may have left jobs unread on any node, some of them beating:
            # each job is then judged as one whose neighbours are unknown (verdict.nodes asks
            # more of the Lease).
            observations = with_node_beats(observations)
        judged = restarted_for_others([(obs, decide(obs)) for obs in observations])
        unread = planning.Unread(
            running=max(0, (scan.running or len(scan.jobs)) - len(scan.jobs)),
            # Jobs of a kind that never beats are silent by design, as the jobs read of that
            # kind say (HeartbeatsMissing): no sign of a heartbeat outage.
            stale=sum(
                count
                for kind, count in scan.unread_stale_by_kind.items()
                if kind not in silent_kinds
            ),
        )
        plan = planning.plan(judged, spec, self.safety, scan.now, unread)
        self.safety = plan.state
        self.observe(judged)
        self.effects = Effects(
            actions=tuple(a for a in plan.actions if not a.dry_run),
            judged=tuple(judged),
            plan=plan,
            not_judged=claimed.not_judged,
        )
        self.overlapping(claimed, len(judged), scan.now)

        breaker_open = plan.state.circuit_open
        book.condition(
            CIRCUIT_OPEN,
            S.TRUE if breaker_open else S.FALSE,
            "TooManyStale" if breaker_open else "Closed",
            plan.state.breaker_message if breaker_open else "Heartbeat-based actions are allowed.",
            scan.now,
        )
        self.metrics.append(gauge("circuit_open", 1 if breaker_open else 0))
        mode = "dry run" if spec.safety.mode is Mode.DRY_RUN else "enforcing"
        others = len(claimed.not_judged)
        elsewhere = (
            f"; {others} more it selects are judged by other policies or none"
            " (lifeguard explain says why)"
            if others
            else ""
        )
        if scan.truncated:
            watching = (
                f"Watching {len(judged)} running jobs, read {len(scan.jobs)} of"
                f" {scan.running or 'more'}: scan.maxJobs ({spec.scan.max_jobs}) leaves the"
                " newest unread (the circuit breaker counts them all)"
            )
        else:
            watching = f"Watching {len(judged)} running jobs"
        book.condition(READY, S.TRUE, "Scanning", f"{watching}, {mode}{elsewhere}.", scan.now)
        book.scanned([verdict.cause for _, verdict in judged], scan.now)

    def overlapping(self, claimed: Claimed, judged: int, now: datetime) -> None:
        """Overlapping: older policies judge some of the jobs this one selects. An Event when
        it turns True (once, not at every scan); None without a fleet (nothing to overlap)."""
        if self.snapshot.fleet is None:
            return
        book = self.book
        before = next((c.status for c in book.conditions if c.type == OVERLAPPING), None)
        if claimed.overlaps:
            message = describe_overlaps(claimed.overlaps, judged)
            book.condition(OVERLAPPING, S.TRUE, "OlderPolicySelects", message, now)
            if before is not S.TRUE:
                self.events.append(Event("Warning", "PoliciesOverlap", message))
        else:
            book.condition(
                OVERLAPPING,
                S.FALSE,
                "NoOverlap",
                "No older policy selects the jobs this policy judges.",
                now,
            )

    def heartbeats(
        self, spec: JobPolicySpec, observations: list[Observation], now: datetime
    ) -> list[Observation]:
        """The HeartbeatsMissing condition, and the observations judged accordingly: when no
        running job of a kind beats, that kind's workers lack the middleware (they are not all
        frozen), so its jobs are judged as a policy without beats judges them. An Event when
        the condition turns True, and when a kind joins those it names."""
        book = self.book
        if not spec.heartbeat.beats:
            book.condition(
                HEARTBEATS_MISSING,
                S.FALSE,
                "NotExpected",
                "heartbeat.store is None: jobs are judged by pod evidence and run time.",
                now,
            )
            return observations
        missing = beats_missing(observations)
        if missing is not None:
            before = find_condition(book.conditions, HEARTBEATS_MISSING)
            book.condition(HEARTBEATS_MISSING, S.TRUE, "NoBeats", missing.message, now)
            newly_true = before is None or before.status is not S.TRUE
            # After an operator restart the kinds of a condition already True were said before.
            joined = self.state.cycles > 0 and not missing.kinds <= self.beats_missing_kinds
            if newly_true or joined:
                self.events.append(Event("Warning", "HeartbeatsMissing", missing.message))
            self.beats_missing_kinds = missing.kinds
            return judged_without_beats(observations, missing.kinds)
        self.beats_missing_kinds = frozenset()
        if any(obs.job.beat_age is not None for obs in observations):
            book.condition(
                HEARTBEATS_MISSING, S.FALSE, "Beating", "Running jobs write heartbeats.", now
            )
        elif not any(c.type == HEARTBEATS_MISSING for c in book.conditions):
            book.condition(
                HEARTBEATS_MISSING,
                S.UNKNOWN,
                "NoJobsToJudge",
                "No running job has been past its startup grace yet.",
                now,
            )
        return observations

    # -- metrics of a scan -----------------------------------------------------------------
    def observe(self, judged: list[planning.Judged]) -> None:
        """Gauges and histograms of one scan; verdicts counted once per attempt and cause."""
        counts = dict.fromkeys((c.value for c in Cause), 0)
        seen: set[SeenVerdict] = set()
        running: dict[int, tuple[str, float]] = {}
        beat_ages: list[float] = []
        # New verdicts by (cause, reason): one counter update each, however many jobs.
        new_verdicts: Counter[tuple[str, str]] = Counter()
        for obs, verdict in judged:
            counts[verdict.cause.value] += 1
            key = (obs.job.id, obs.job.attempted_at, verdict.cause)
            seen.add(key)
            if key not in self.seen_verdicts:
                new_verdicts[verdict.cause.value, verdict.reason] += 1
            if obs.job.beat_age is not None:
                beat_ages.append(obs.job.beat_age)
            running[obs.job.id] = (obs.job.kind, obs.job.running_for)
        for (cause, reason), count in sorted(new_verdicts.items()):
            self.metrics.append(inc("verdicts", cause, reason, by=count))
        if beat_ages:
            self.metrics.append(observe("heartbeat_age", tuple(beat_ages)))
        for cause, count in counts.items():
            self.metrics.append(gauge("running_jobs", count, cause))
        for job_id, (kind, running_for) in self.running.items():
            if job_id not in running:
                self.metrics.append(observe("job_duration", (running_for,), kind, per_policy=False))
        self.seen_verdicts, self.running = frozenset(seen), running
