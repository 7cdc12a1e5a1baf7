"""The per-job decision of one scan: the policy's own jobs, each with its verdict, and the plan.

The scan is split by owner (claim.py), each job the policy judges is observed from the frozen
view (observe.py), the kinds whose jobs never beat are found (the HeartbeatsMissing condition,
set here because it changes how those jobs are judged), each job learns what the beats of its
node's other jobs say, `verdict.decide` judges it, and `plan.plan` maps the verdicts to actions
under the policy's safety state. What the policy's conditions then say of the result is in
conditions.py.
"""

from dataclasses import dataclass
from datetime import datetime

from lifeguard import plan as planning
from lifeguard.model.conditions import HEARTBEATS_MISSING, find_condition
from lifeguard.model.conditions import ConditionStatus as S
from lifeguard.model.observation import Observation
from lifeguard.model.policy import JobPolicySpec
from lifeguard.reconcile.claim import Claimed, claim
from lifeguard.reconcile.cycle import Cycle
from lifeguard.reconcile.effects import Event
from lifeguard.reconcile.observe import ClientIds
from lifeguard.reconcile.observe import observe as observe_jobs
from lifeguard.reconcile.snapshot import Scanned
from lifeguard.verdict import decide
from lifeguard.verdict.fleet import beats_missing, judged_without_beats, restarted_for_others
from lifeguard.verdict.nodes import with_node_beats


@dataclass(frozen=True, slots=True)
class Judgment:
    """A scan judged: the split by owner, the policy's own jobs with their verdicts, the plan."""

    claimed: Claimed
    judged: list[planning.Judged]
    plan: planning.Plan


def judge(cycle: Cycle, spec: JobPolicySpec, scan: Scanned) -> Judgment:
    """Judges and plans the policy's own jobs of `scan`; the plan's safety state becomes the
    cycle's."""
    client_ids = ClientIds.of(spec)
    claimed = claim(scan.jobs, cycle.snapshot, client_ids)
    observations = observe_jobs(
        claimed.owned,
        scan.now,
        spec,
        cycle.snapshot.inventory,
        adaptive_limits=cycle.snapshot.adaptive_limits,
        client_ids=client_ids,
        node_beats=False,
    )
    observations = heartbeats(cycle, spec, observations, scan.now)
    silent_kinds = cycle.beats_missing_kinds
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
            count for kind, count in scan.unread_stale_by_kind.items() if kind not in silent_kinds
        ),
    )
    plan = planning.plan(
        judged,
        spec,
        cycle.safety,
        scan.now,
        unread,
        beating_elsewhere=cycle.snapshot.beating_elsewhere,
    )
    cycle.safety = plan.state
    return Judgment(claimed, judged, plan)


def heartbeats(
    cycle: Cycle, spec: JobPolicySpec, observations: list[Observation], now: datetime
) -> list[Observation]:
    """The HeartbeatsMissing condition, and the observations judged accordingly: when no
    running job of a kind beats, that kind's workers lack the middleware (they are not all
    frozen), so its jobs are judged as a policy without beats judges them. An Event when
    the condition turns True, and when a kind joins those it names."""
    book = cycle.book
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
        joined = cycle.state.cycles > 0 and not missing.kinds <= cycle.beats_missing_kinds
        if newly_true or joined:
            cycle.events.append(Event("Warning", "HeartbeatsMissing", missing.message))
        cycle.beats_missing_kinds = missing.kinds
        return judged_without_beats(observations, missing.kinds)
    cycle.beats_missing_kinds = frozenset()
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
