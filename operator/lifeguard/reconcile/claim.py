"""Which of a scan's jobs this policy judges: the ownership rule applied to one Snapshot.

Owns the split of a scan into the policy's own jobs (judged, counted, planned, fed to the
breaker) and the rest (judged by another policy or by none), with the overlap summary the
Overlapping condition reports. Pure: the fleet view and every namespace's pods of the jobs'
client prefixes were frozen into the Snapshot by the shell.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lifeguard.model.observation import JobFacts
from lifeguard.model.own_action import parse_own_action
from lifeguard.model.ownership import Judges, NotJudged, home_of, overlaps
from lifeguard.reconcile.observe import ClientIds
from lifeguard.reconcile.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Claimed:
    """A scan split by owner."""

    owned: tuple[JobFacts, ...]
    # The jobs the policy scanned but does not judge, and why.
    not_judged: tuple[NotJudged, ...] = ()
    # Jobs an older policy judges instead, by that policy.
    overlaps: Mapping[str, int] = field(default_factory=dict)


def claim(jobs: Sequence[JobFacts], snapshot: Snapshot, client_ids: ClientIds) -> Claimed:
    """The policy's own jobs; every job when the Snapshot carries no fleet view."""
    fleet, me = snapshot.fleet, snapshot.me
    if fleet is None or me is None:
        return Claimed(tuple(jobs))
    judges = Judges(fleet)
    view = snapshot.inventory
    owned: list[JobFacts] = []
    not_judged: list[NotJudged] = []
    for job in jobs:
        prefix = client_ids.prefix(job.client_id)
        if prefix is None:
            home = home_of(None, None, ())
        else:
            pods = view.pods_anywhere(prefix)
            restarted_in = _restarted_in(job, prefix)
            # The client's start tells same-named pods of two namespaces apart; reading it
            # costs more than the rest, so only then.
            several = len(pods) + (restarted_in is not None) > 1
            mapped = client_ids.map(job.client_id) if several else None
            home = home_of(prefix, mapped[1] if mapped else None, pods, restarted_in)
        ownership = judges.ownership(job, home, me)
        if ownership.owned:
            owned.append(job)
        else:
            not_judged.append((job, ownership))
    return Claimed(
        tuple(owned), tuple(not_judged), overlaps(ownership for _, ownership in not_judged)
    )


def _restarted_in(job: JobFacts, prefix: str) -> str | None:
    """The namespace of the pod with this prefix that Lifeguard restarted for the attempt."""
    own = parse_own_action(job.own_action) if job.own_action else None
    return own.restarted_namespace(prefix) if own is not None else None
