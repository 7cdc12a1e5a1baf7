"""The ownership rule: every running job is judged by exactly one policy, or by none."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from tests.unit.builders import CLIENT_STARTED, POD_STARTED, ago, pod, running_job

from lifeguard.model.enums import Unattributed
from lifeguard.model.observation import PodFacts
from lifeguard.model.ownership import (
    Claim,
    FleetView,
    Home,
    Judges,
    PolicyFacts,
    describe_overlaps,
    home_of,
    overlaps,
)
from lifeguard.model.selectors import JobSelector

DB = "db-1"
OTHER_DB = "db-2"


def policy(
    key: str,
    *,
    age_days: float = 1,
    queues: list[str] | None = None,
    tags: list[str] | None = None,
    unattributed: Unattributed = Unattributed.IGNORE,
    database: str = DB,
) -> PolicyFacts:
    namespace, name = key.split("/")
    return PolicyFacts(
        namespace=namespace,
        name=name,
        created=ago(age_days * 86400),
        selector=JobSelector(queues=queues, tags=tags),
        unattributed=unattributed,
        database=database,
    )


def pod_in(namespace: str, name: str = "worker-1", *, started_ago: float | None = None) -> PodFacts:
    facts = replace(pod(name).facts, namespace=namespace)
    if started_ago is None:
        return facts
    containers = tuple(replace(c, running_since=ago(started_ago)) for c in facts.containers)
    return replace(facts, containers=containers)


JOB = running_job().job
IN_A = Home("worker-1", namespace="a")
IN_B = Home("worker-1", namespace="b")
NO_POD = Home("worker-1")
NO_POD_PATTERN = Home(None)
AMBIGUOUS = Home("worker-1", ambiguous=("a", "b"))

A_OLD = policy("a/catch-all", age_days=10)
A_NEW = policy("a/tiered", age_days=1)
A_QUEUE = policy("a/reports", age_days=20, queues=["reports"])
B = policy("b/team", age_days=30)
A_OTHER_DB = policy("a/elsewhere", age_days=40, database=OTHER_DB)
JUDGE_OLD = policy("c/outside", age_days=50, unattributed=Unattributed.JUDGE)
JUDGE_NEW = policy("d/outside", age_days=5, unattributed=Unattributed.JUDGE)


@pytest.mark.parametrize(
    ("policies", "me", "home", "claim", "owner"),
    [
        # One policy per namespace: a job is its pod's namespace's.
        ((A_NEW, B), A_NEW, IN_A, Claim.OWNED, None),
        ((A_NEW, B), B, IN_A, Claim.OTHER_NAMESPACE, "a/tiered"),
        # The pod's namespace has no policy: nobody else judges it.
        ((B,), B, IN_A, Claim.OTHER_NAMESPACE, None),
        # Overlap in one namespace: the older policy wins, the younger names it.
        ((A_OLD, A_NEW), A_NEW, IN_A, Claim.OLDER_POLICY, "a/catch-all"),
        ((A_OLD, A_NEW), A_OLD, IN_A, Claim.OWNED, None),
        # An older policy that does not select the job does not take it.
        ((A_QUEUE, A_NEW), A_NEW, IN_A, Claim.OWNED, None),
        # A policy on another database never competes.
        ((A_OTHER_DB, A_NEW), A_NEW, IN_A, Claim.OWNED, None),
        # No pod anywhere: Ignore (the default) leaves it alone, Judge takes it.
        ((A_NEW,), A_NEW, NO_POD, Claim.UNATTRIBUTED, None),
        ((A_NEW, JUDGE_OLD), A_NEW, NO_POD, Claim.UNATTRIBUTED, "c/outside"),
        ((A_NEW, JUDGE_OLD), JUDGE_OLD, NO_POD, Claim.OWNED, None),
        ((JUDGE_OLD,), JUDGE_OLD, NO_POD_PATTERN, Claim.OWNED, None),
        # Two policies take unattributed jobs: the older of them, across namespaces.
        ((JUDGE_OLD, JUDGE_NEW), JUDGE_NEW, NO_POD, Claim.OLDER_POLICY, "c/outside"),
        # A Judge policy never takes a job whose pod lives in another namespace.
        ((JUDGE_OLD, A_NEW), JUDGE_OLD, IN_A, Claim.OTHER_NAMESPACE, "a/tiered"),
        # Pods in two namespaces that the client's start cannot tell apart: nobody judges.
        ((A_NEW, B), A_NEW, AMBIGUOUS, Claim.AMBIGUOUS, None),
        ((JUDGE_OLD,), JUDGE_OLD, AMBIGUOUS, Claim.AMBIGUOUS, None),
        # Not registered with the fleet yet: judge nothing.
        ((B,), A_NEW, IN_A, Claim.UNREGISTERED, None),
    ],
)
def test_ownership_rule(
    policies: tuple[PolicyFacts, ...],
    me: PolicyFacts,
    home: Home,
    claim: Claim,
    owner: str | None,
) -> None:
    found = Judges(FleetView(policies)).ownership(JOB, home, me)

    assert (found.claim, found.owner) == (claim, owner)
    assert found.message


@pytest.mark.parametrize("unattributed", list(Unattributed))
def test_every_job_has_at_most_one_owner_among_policies_of_one_database(
    unattributed: Unattributed,
) -> None:
    policies = (A_OLD, A_NEW, A_QUEUE, B, replace(JUDGE_OLD, unattributed=unattributed), JUDGE_NEW)
    judges = Judges(FleetView(policies))
    jobs = [JOB, replace(JOB, queue="reports")]
    for job in jobs:
        for home in (IN_A, IN_B, NO_POD, AMBIGUOUS, Home("worker-1", namespace="c")):
            owners = [p.key for p in policies if judges.ownership(job, home, p).owned]
            assert len(owners) <= 1, (job.queue, home, owners)


def test_creation_time_ties_are_broken_by_name() -> None:
    created = POD_STARTED
    first = replace(policy("a/alpha"), created=created)
    second = replace(policy("a/beta"), created=created)

    found = Judges(FleetView((second, first))).ownership(JOB, IN_A, second)

    assert (found.claim, found.owner) == (Claim.OLDER_POLICY, "a/alpha")


def test_unknown_creation_time_ranks_last() -> None:
    undated = replace(policy("a/aaa"), created=None)

    found = Judges(FleetView((undated, A_NEW))).ownership(JOB, IN_A, undated)

    assert (found.claim, found.owner) == (Claim.OLDER_POLICY, "a/tiered")


@pytest.mark.parametrize(
    ("job_tags", "claim"),
    [
        # The older policy selects by a tag the job carries: it owns the job.
        (("billing",), Claim.OLDER_POLICY),
        # ... a tag the job does not carry: the younger one judges it.
        (("search",), Claim.OWNED),
        # Tags not read: the younger policy assumes the older may own it (never two judges).
        (None, Claim.OLDER_POLICY),
    ],
)
def test_a_rival_tag_selector_is_matched_against_the_jobs_tags(
    job_tags: tuple[str, ...] | None, claim: Claim
) -> None:
    tagged = policy("a/billing", age_days=90, tags=["billing"])
    job = replace(JOB, tags=job_tags)

    assert Judges(FleetView((tagged, A_NEW))).ownership(job, IN_A, A_NEW).claim is claim


@pytest.mark.parametrize(
    ("pods", "started", "home"),
    [
        ([], CLIENT_STARTED, Home("worker-1")),
        ([pod_in("a")], CLIENT_STARTED, IN_A),
        # A deleted pod (tombstone) is still a home: its jobs are its namespace's.
        ([replace(pod_in("a"), gone=True)], CLIENT_STARTED, IN_A),
        # Two namespaces, one pod started after the client: the other runs it.
        ([pod_in("a"), pod_in("b", started_ago=60)], ago(3600), IN_A),
        ([pod_in("a", started_ago=60), pod_in("b")], ago(3600), IN_B),
        # Both started before the client: cannot tell.
        ([pod_in("a"), pod_in("b")], CLIENT_STARTED, AMBIGUOUS),
        # No start time in the client ID (custom pattern): cannot tell.
        ([pod_in("a"), pod_in("b", started_ago=60)], None, AMBIGUOUS),
        # The live pod of one namespace against a deleted one of the other that ran when the
        # client started: either may have run it. Giving it to the live pod would judge the
        # dead pod's job on a healthy pod (its beats stopped: restart the healthy pod);
        # giving it to the dead one would retry a job the live pod may still run.
        ([pod_in("a"), replace(pod_in("b"), gone=True)], CLIENT_STARTED, AMBIGUOUS),
        # ... one deleted before the client started cannot have run it.
        (
            [pod_in("a"), replace(pod_in("b"), gone=True, deletion_timestamp=ago(9000))],
            ago(3600),
            IN_A,
        ),
        # ... and a live pod started after the client cannot have run it: the dead one did.
        ([pod_in("a", started_ago=60), replace(pod_in("b"), gone=True)], ago(3600), IN_B),
        # Both started after the client: neither can run it, still nobody can tell.
        (
            [pod_in("a", started_ago=60), pod_in("b", started_ago=60)],
            ago(3600),
            AMBIGUOUS,
        ),
    ],
)
def test_home_is_the_namespace_of_the_pod_that_may_run_the_client(
    pods: list[PodFacts], started: datetime | None, home: Home
) -> None:
    assert home_of("worker-1", started, pods) == home


def test_a_client_id_without_a_pod_has_no_home() -> None:
    assert home_of(None, CLIENT_STARTED, [pod_in("a")]) == Home(None)


def test_overlaps_count_jobs_by_the_older_policy_that_judges_them() -> None:
    judges = Judges(FleetView((A_OLD, A_QUEUE, A_NEW)))
    jobs = [JOB, replace(JOB, id=2), replace(JOB, id=3, queue="reports")]

    counts = overlaps(judges.ownership(job, IN_A, A_NEW) for job in jobs)

    assert counts == {"a/catch-all": 2, "a/reports": 1}
    assert describe_overlaps(counts, 0) == (
        "Older policies also select jobs this policy selects and judge them:"
        " a/catch-all (2 running jobs), a/reports (1 running job)."
        " This policy judges 0 running jobs."
    )


def test_message_of_an_unattributed_job_names_the_watched_namespaces() -> None:
    fleet = FleetView((A_NEW,), watched_namespaces=("a", "b"))

    found = Judges(fleet).ownership(JOB, NO_POD, A_NEW)

    assert "watched: a, b" in found.message
    assert "workers.unattributed is Ignore" in found.message
