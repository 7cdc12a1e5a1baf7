"""Which policy judges a running job: exactly one, or none.

Several JobPolicies may scan one River database: a policy per team, each in its namespace, or a
catch-all next to a tiered policy in one namespace. Each would otherwise judge (and act on) every
job its selector matches. The rule, applied the same way by every policy so that at most one
claims a job:

1. The job's home is the namespace of the pod that runs it: its client ID maps to a pod prefix
   (the policy's clientIdPattern), and the inventory knows the pods with that prefix in every
   watched namespace. Pods of one name in several namespaces are told apart as within one
   namespace: a pod (live or deleted) whose containers ran when the client started. If that
   leaves more than one namespace, or none, the job is ambiguous and no policy judges it.
2. A job with a home is judged by a policy of that namespace that selects it (on the same
   database), and by no other; a namespace without such a policy leaves it alone.
3. A job without a home (no pod in any watched namespace) is judged only by a policy with
   `workers.unattributed: Judge`.
4. Several candidates (overlapping selectors): the oldest policy wins, by creation time, then
   name (then namespace, for unattributed jobs).

Pure: the shell hands in the policies it supervises (`FleetView`) and the pods it knows.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from lifeguard.model.enums import Unattributed
from lifeguard.model.observation import JobFacts, PodFacts
from lifeguard.model.selectors import JobSelector

# A policy whose creation time is unknown ranks after every dated one.
_UNDATED = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """What the ownership rule needs of one JobPolicy."""

    namespace: str
    name: str
    created: datetime | None
    selector: JobSelector
    unattributed: Unattributed = Unattributed.IGNORE
    # The database (and schema) the policy scans, as an opaque identity: policies of different
    # databases never compete for a job. "" while its Secret has not been read.
    database: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def rank(self) -> tuple[datetime, str, str]:
        """Older first: creation time, then name, then namespace."""
        return (self.created or _UNDATED, self.name, self.namespace)

    def selects(self, job: JobFacts) -> bool:
        """Whether the policy's selector matches the job; unread tags count as a match (the
        safe side: a job another policy may own is not judged here)."""
        tags = job.tags
        if tags is None and self.selector.tags is not None:
            tags = tuple(self.selector.tags)
        return self.selector.matches(job.queue, job.kind, job.priority, tags or ())


@dataclass(frozen=True, slots=True)
class FleetView:
    """The policies one operator supervises, and the namespaces whose pods it sees."""

    policies: tuple[PolicyFacts, ...] = ()
    # None: every namespace is watched.
    watched_namespaces: tuple[str, ...] | None = None

    def policy(self, key: str) -> PolicyFacts | None:
        return next((p for p in self.policies if p.key == key), None)

    def rivals_select_by_tags(self, me: PolicyFacts) -> bool:
        """Whether a policy that may own jobs `me` scans selects by tags: the scan must then
        read each job's tags for the ownership rule."""
        return any(
            p.selector.tags is not None
            and p.key != me.key
            and p.database == me.database
            and (p.namespace == me.namespace or p.unattributed is Unattributed.JUDGE)
            for p in self.policies
        )

    def describe_watched(self) -> str:
        if self.watched_namespaces is None:
            return "every namespace is watched"
        return "watched: " + ", ".join(self.watched_namespaces)


# Container times have whole seconds, and the client starts a moment after its container.
_START_SLACK = timedelta(seconds=2)


def could_run_client(pod: PodFacts, client_started: datetime | None) -> bool:
    """Whether a client that started then can have run in this pod: one of its containers ran
    at that moment (a client cannot start before its pod, nor after its container ended, nor
    after the pod was deleted). So a Job's failed pod and the pod that replaced it, sharing a
    client prefix, each keep their own clients."""
    if client_started is None:
        return True
    if pod.gone and pod.deletion_timestamp is not None and pod.deletion_timestamp < client_started:
        return False
    for container in pod.containers:
        runs: list[tuple[datetime | None, datetime | None]] = []
        if container.running_since is not None:
            runs.append((container.running_since, None))
        for ended in (container.terminated, container.last_terminated):
            if ended is not None:
                runs.append((ended.started_at, ended.finished_at))
        for began, finished in runs:
            if began is None or began > client_started + _START_SLACK:
                continue
            if finished is None or finished + _START_SLACK >= client_started:
                return True
    return False


@dataclass(frozen=True, slots=True)
class Home:
    """Where the pod that runs a job lives, as far as the pods known tell."""

    # The pod prefix of the client ID; None when the ID matches no pod pattern.
    prefix: str | None
    # The namespace of that pod; None when no pod (or more than one namespace) fits.
    namespace: str | None = None
    # Namespaces that each hold a pod that may run the client: no one can tell which.
    ambiguous: tuple[str, ...] = ()


def home_of(
    prefix: str | None,
    client_started: datetime | None,
    pods: Iterable[PodFacts],
    restarted_in: str | None = None,
) -> Home:
    """The home of a job from the pods (live and deleted, every namespace) with its prefix.

    `restarted_in`: the namespace of the pod Lifeguard restarted for this attempt (its record
    says so), which ran the client whether or not the pod is still known: an operator that
    restarted since the eviction knows no pod, and the policy that acted must still retry the
    job, not leave it unattributed."""
    if prefix is None:
        return Home(prefix=None)
    candidates = list(pods)
    namespaces = {pod.namespace for pod in candidates}
    if restarted_in is not None:
        namespaces.add(restarted_in)
    if len(namespaces) <= 1:
        return Home(prefix, namespace=next(iter(namespaces), None))
    # A deleted pod that ran when the client started is as plausible as a live one: its
    # namespace's jobs do not pass to a namesake elsewhere when it dies (judged on the
    # namesake, the dead pod's silent job would get a healthy pod restarted).
    plausible = {pod.namespace for pod in candidates if could_run_client(pod, client_started)}
    if restarted_in is not None:
        plausible.add(restarted_in)
    if len(plausible) == 1:
        return Home(prefix, namespace=plausible.pop())
    return Home(prefix, ambiguous=tuple(sorted(plausible or namespaces)))


class Claim(StrEnum):
    """Why a policy does, or does not, judge a job it scanned."""

    OWNED = "Owned"
    OTHER_NAMESPACE = "OtherNamespace"
    OLDER_POLICY = "OlderPolicy"
    UNATTRIBUTED = "Unattributed"
    AMBIGUOUS = "AmbiguousPod"
    # The policy is not in the fleet view (not registered yet): it judges nothing.
    UNREGISTERED = "Unregistered"


@dataclass(frozen=True, slots=True)
class Ownership:
    claim: Claim
    # The policy ("namespace/name") that judges the job instead, when one does.
    owner: str | None = None
    home: Home = Home(None)
    # Which namespaces are watched, for the message of an unattributed job.
    watched: str = ""

    @property
    def owned(self) -> bool:
        return self.claim is Claim.OWNED

    @property
    def message(self) -> str:
        """A sentence for `explain` (built on demand: a scan may skip 10k jobs)."""
        home, owner = self.home, self.owner
        by_owner = f"; {owner} judges it" if owner else "; no policy there selects it"
        if self.claim is Claim.OWNED:
            return "This policy judges the job."
        if self.claim is Claim.AMBIGUOUS:
            return (
                f"Pods named {home.prefix} in namespaces {', '.join(home.ambiguous)} may each"
                " run its client (the client's start does not tell them apart); no policy"
                " judges it."
            )
        if self.claim is Claim.OTHER_NAMESPACE:
            return f"Its client runs in pod {home.prefix} of namespace {home.namespace}{by_owner}."
        if self.claim is Claim.UNATTRIBUTED:
            client = f"pod {home.prefix}" if home.prefix else "no pod name"
            judged = f"; {owner} judges it" if owner else ""
            return (
                f"Its client ID maps to {client} in no watched namespace ({self.watched})"
                f" and workers.unattributed is Ignore{judged}."
            )
        if self.claim is Claim.OLDER_POLICY:
            return f"The older policy {owner} also selects it and judges it."
        return "This policy is not among the supervised policies yet; it judges nothing."


OWNED = Ownership(Claim.OWNED)

# A job a policy scanned but does not judge, and why.
NotJudged = tuple[JobFacts, Ownership]


@dataclass
class Judges:
    """The ownership rule over one FleetView, indexed once per cycle (a scan has 10k jobs)."""

    fleet: FleetView
    _by_namespace: dict[tuple[str, str], list[PolicyFacts]] = field(init=False)
    _unattributed: dict[str, list[PolicyFacts]] = field(init=False)
    _keys: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self._by_namespace = {}
        self._unattributed = {}
        for policy in sorted(self.fleet.policies, key=lambda p: p.rank):
            self._by_namespace.setdefault((policy.namespace, policy.database), []).append(policy)
            if policy.unattributed is Unattributed.JUDGE:
                self._unattributed.setdefault(policy.database, []).append(policy)
        self._keys = {policy.key for policy in self.fleet.policies}

    def judge(self, job: JobFacts, home: Home, database: str) -> PolicyFacts | None:
        """The one policy that judges the job, None when no policy may."""
        if home.namespace is not None:
            candidates = self._by_namespace.get((home.namespace, database), [])
        elif home.ambiguous:
            return None
        else:
            candidates = self._unattributed.get(database, [])
        return next((policy for policy in candidates if policy.selects(job)), None)

    def ownership(self, job: JobFacts, home: Home, me: PolicyFacts) -> Ownership:
        """Whether `me`, which scanned the job (so its selector matches), judges it."""
        if me.key not in self._keys:
            return Ownership(Claim.UNREGISTERED, home=home)
        judge = self.judge(job, home, me.database)
        if judge is not None and judge.key == me.key:
            return OWNED
        owner = judge.key if judge is not None else None
        if home.ambiguous:
            return Ownership(Claim.AMBIGUOUS, home=home)
        if home.namespace is not None and home.namespace != me.namespace:
            return Ownership(Claim.OTHER_NAMESPACE, owner, home)
        if home.namespace is None and me.unattributed is Unattributed.IGNORE:
            return Ownership(Claim.UNATTRIBUTED, owner, home, self.fleet.describe_watched())
        if judge is None:
            # The spec changed between the scan and the fleet view (the job is no longer
            # selected): no other policy claims it, and the scan says this one selects it.
            return OWNED
        return Ownership(Claim.OLDER_POLICY, owner, home)


def overlaps(ownerships: Iterable[Ownership]) -> Mapping[str, int]:
    """Jobs an older policy judges instead of this one, by that policy: the Overlapping
    condition's content."""
    counts: dict[str, int] = {}
    for ownership in ownerships:
        if ownership.claim is Claim.OLDER_POLICY and ownership.owner is not None:
            counts[ownership.owner] = counts.get(ownership.owner, 0) + 1
    return dict(sorted(counts.items()))


def describe_overlaps(counts: Mapping[str, int], policy_jobs: int) -> str:
    """A sentence for the Overlapping condition and its Event."""
    parts = [f"{owner} ({count} running {_jobs(count)})" for owner, count in counts.items()]
    return (
        f"Older policies also select jobs this policy selects and judge them: {', '.join(parts)}."
        f" This policy judges {policy_jobs} running {_jobs(policy_jobs)}."
    )


def _jobs(count: int) -> str:
    return "job" if count == 1 else "jobs"
