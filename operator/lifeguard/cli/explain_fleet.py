"""The other policies `lifeguard explain` must know to tell which jobs the policy judges.

The operator knows every policy it supervises; explain reads what its user may: the JobPolicies
of the policy's namespace (overlaps) with the databases their Secrets name, and the pods of
every namespace when it may list them (which namespace a job's pod lives in). A user who may
list pods of their own namespace only sees jobs of other namespaces' pods as unattributed.
"""

from collections.abc import Callable
from typing import Any

from lifeguard.cluster.facts import parse_time
from lifeguard.cluster.kube import ClusterError, KubeClient
from lifeguard.model.ownership import FleetView, PolicyFacts
from lifeguard.supervisor.policy import SpecError, parse_spec
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
