"""Judgments about a policy's running jobs together, before each job is judged alone.

Workers without the heartbeat middleware are the first thing a new user has: Lifeguard is
installed before the workers change. Their jobs never beat, and judged one by one each would
be Unresponsive after its startup grace and its healthy pod restarted. Seen together the
pattern is plain: no running job of a kind has ever beaten. Then the beats, not the workers,
are missing: the policy says so (condition HeartbeatsMissing, naming the kinds) and the jobs of
those kinds are judged as if the policy said `heartbeat.store: None` (pod evidence and run time
only). It is judged per kind because the middleware can be installed per worker (River's
WorkerWithMiddleware): one kind beating says nothing about another, and the jobs of a kind that
beats are still judged by their beats.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from lifeguard.model.enums import Action, Cause
from lifeguard.model.observation import Observation
from lifeguard.model.own_action import parse_own_action
from lifeguard.verdict.text import seconds
from lifeguard.verdict.types import Verdict

MIDDLEWARE = "github.com/river-lifeguard/lifeguard/heartbeat"
# A condition message names at most this many kinds, then says how many more.
MAX_KINDS_NAMED = 5


@dataclass(frozen=True, slots=True)
class MissingBeats:
    """The kinds whose running jobs have never beaten, and what the policy says of them."""

    kinds: frozenset[str]
    message: str


def beats_missing(observations: Sequence[Observation]) -> MissingBeats | None:
    """The kinds none of whose running jobs has a beat, at least one of them on a known pod past
    its startup grace; None when there is no such kind (or the policy expects no beats)."""
    if not observations or not all(o.beats_expected for o in observations):
        return None
    by_kind: dict[str, list[Observation]] = {}
    for o in observations:
        by_kind.setdefault(o.job.kind, []).append(o)
    silent: dict[str, tuple[int, list[Observation]]] = {}
    for kind, jobs in by_kind.items():
        if any(o.job.beat_age is not None for o in jobs):
            continue
        past_grace = [
            o for o in jobs if o.pod is not None and o.job.running_for >= o.thresholds.startup_grace
        ]
        if past_grace:
            silent[kind] = (len(jobs), past_grace)
    if not silent:
        return None
    return MissingBeats(frozenset(silent), _message(silent, every_kind=len(silent) == len(by_kind)))


def _message(silent: dict[str, tuple[int, list[Observation]]], *, every_kind: bool) -> str:
    kinds = sorted(silent)
    named = ", ".join(f"{kind} ({silent[kind][0]} running)" for kind in kinds[:MAX_KINDS_NAMED])
    if len(kinds) > MAX_KINDS_NAMED:
        named += f" and {len(kinds) - MAX_KINDS_NAMED} more"
    past = [o for _, jobs in silent.values() for o in jobs]
    grace = min(o.thresholds.startup_grace for o in past)
    jobs = "job" if len(past) == 1 else "jobs"
    these = "this kind" if len(kinds) == 1 else "these kinds"
    prefix = (
        f"No running job has a heartbeat; kind{'' if len(kinds) == 1 else 's'} {named}"
        if every_kind
        else f"Running jobs of {these} never beat: {named}"
    )
    remedy = (
        " or set heartbeat.store: None if they write no beats."
        if every_kind
        else " or judge them by a policy of their own (selector.kinds) with heartbeat.store:"
        " None if they write no beats; other kinds beat and are judged by their beats."
    )
    return (
        f"{prefix}; {len(past)} {jobs} past startupGrace ({seconds(grace)}). Heartbeat-based"
        f" actions are held for {these} (no pod is restarted for a missing beat) and their jobs"
        f" are judged by pod evidence and run time. Add the heartbeat middleware ({MIDDLEWARE})"
        f" to the workers of {these},{remedy}"
    )


def judged_without_beats(
    observations: Sequence[Observation], kinds: Collection[str] | None = None
) -> list[Observation]:
    """The observations as a policy without beats sees them (store None): all of them, or
    those of `kinds`."""
    return [
        replace(o, beats_expected=False) if kinds is None or o.job.kind in kinds else o
        for o in observations
    ]


# The verdicts of a job whose pod died under it (evicted, deleted, its process stopped).
_DIED_WITH_ITS_POD = (Cause.INFRASTRUCTURE_DEATH, Cause.APPLICATION_CRASH)


def restarted_for_others(
    judged: Sequence[tuple[Observation, Verdict]],
) -> list[tuple[Observation, Verdict]]:
    """The verdicts, where a job died because Lifeguard restarted its pod for another job of
    that pod naming the restart: "...; reason Evicted (EvictionByEvictionAPI); Lifeguard
    restarted pod w-1 for job 17 (Unresponsive/BeatStale)". The cause stays (the job did not
    cause its death: its rule refunds an eviction); only the job Lifeguard acted for keeps the
    cause it acted on (verdict.rules.own_restart)."""
    restarts: dict[tuple[str, str, str], str] = {}
    for obs, verdict in judged:
        own = parse_own_action(obs.job.own_action) if obs.job.own_action else None
        restarted = obs.pod
        if verdict.own_action is Action.RESTART_POD and own is not None and restarted is not None:
            restarts.setdefault(
                (restarted.namespace, restarted.name, restarted.uid),
                f"Lifeguard restarted pod {restarted.name} for job {obs.job.id}"
                f" ({own.cause.value}/{own.reason})",
            )
    if not restarts:
        return list(judged)
    result = []
    for obs, verdict in judged:
        pod = obs.pod
        note = restarts.get((pod.namespace, pod.name, pod.uid)) if pod is not None else None
        if (
            note is None
            or verdict.own_action is not None
            or verdict.cause not in _DIED_WITH_ITS_POD
        ):
            result.append((obs, verdict))
            continue
        told = replace(verdict, message=f"{verdict.message}; {note}", notes=(*verdict.notes, note))
        result.append((obs, told))
    return result
