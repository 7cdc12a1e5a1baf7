"""The other policies `lifeguard explain` must know to tell which jobs the policy judges.

The operator knows every policy it supervises; explain reads what its user may: the JobPolicies
of the policy's namespace (overlaps) with the databases their Secrets name, and the pods of
every namespace when it may list them (which namespace a job's pod lives in). A user who may
list pods of their own namespace only sees jobs of other namespaces' pods as unattributed.

The other policies of the namespace are also scanned and judged once, as the operator's
supervisors do, for the jobs they see beating: a pod that beats for another policy's job is not
restarted (supervisor/beats.py), and explain says so too. A policy whose Secret explain cannot
read counts with no beating jobs.
"""

from collections.abc import Callable
from typing import Any

from lifeguard.cluster.facts import parse_time
from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import ClusterError, KubeClient
from lifeguard.model.ownership import FleetView, PolicyFacts
from lifeguard.plan import BeatingJob, PodRef
from lifeguard.reconcile import ReconcileState, reconcile
from lifeguard.supervisor.beats import BeatBoard
from lifeguard.supervisor.connection import DatabaseSource
from lifeguard.supervisor.gather import KindStatistics, gather
from lifeguard.supervisor.policy import PolicyRef, SpecError, parse_spec
from lifeguard.supervisor.pools import database_identity


async def namespace_policies(kube: KubeClient, namespace: str) -> list[tuple[dict[str, Any], str]]:
    """The namespace's policies, each with the database identity its Secret names ("" when
    the Secret cannot be read: such a policy competes with none)."""
    found = []
    for item in await kube.list_policies(namespace):
        try:
            spec = parse_spec(item.get("spec") or {})
        except SpecError:
            continue
        ref = spec.database.secret_ref
        try:
            dsn = await kube.read_secret_value(namespace, ref.name, ref.key)
        except ClusterError:
            identity = ""
        else:
            identity = database_identity(dsn, spec.database.schema_)
        found.append((item, identity))
    return found


def fleet_source(
    policies: list[tuple[dict[str, Any], str]],
    me: str,
    my_database: Callable[[], str],
    watched: tuple[str, ...] | None,
) -> Callable[[], FleetView]:
    """A fleet view of these policies; `me` ("namespace/name") gets the database it connected
    to (known only once the gather connected)."""

    def view() -> FleetView:
        facts = []
        for item, identity in policies:
            meta = item.get("metadata") or {}
            spec = parse_spec(item.get("spec") or {})
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            facts.append(
                PolicyFacts(
                    namespace=str(meta.get("namespace")),
                    name=str(meta.get("name")),
                    created=parse_time(meta.get("creationTimestamp")),
                    selector=spec.selector,
                    unattributed=spec.workers.unattributed,
                    database=my_database() if key == me else identity,
                )
            )
        return FleetView(tuple(facts), watched_namespaces=watched)

    return view


async def beats_of_the_others(
    kube: KubeClient,
    policies: list[tuple[dict[str, Any], str]],
    me: str,
    inventory: Inventory,
    watched: tuple[str, ...] | None,
) -> dict[PodRef, tuple[BeatingJob, ...]]:
    """The jobs the namespace's other policies see beating now, by pod: each one gathered and
    judged once with its own Secret, as its supervisor would."""
    board = BeatBoard()
    for item, identity in policies:
        meta = item.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        key = f"{namespace}/{name}"
        if key == me or not identity:
            continue
        spec = parse_spec(item.get("spec") or {})
        source = DatabaseSource(kube, namespace)
        try:
            snapshot, _ = await gather(
                PolicyRef(namespace, name, str(meta.get("uid", ""))),
                spec,
                inventory,
                source.database,
                KindStatistics(),
                fleet_source=fleet_source(policies, key, _constant(identity), watched),
            )
        finally:
            await source.close()
        _, effects = reconcile(snapshot, ReconcileState(), spec)
        if effects.plan is not None:
            board.publish(key, name, effects.plan.beating, now=0.0, scan_interval=0.0)
    return board.elsewhere(me, now=0.0)


def _constant(identity: str) -> Callable[[], str]:
    return lambda: identity
