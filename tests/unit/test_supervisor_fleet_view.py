"""The fleet's view of every policy, as the ownership rule reads it each cycle."""

import kubernetes

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import KubeClient
from lifeguard.metrics import Metrics
from lifeguard.supervisor.fleet import Fleet
from lifeguard.supervisor.policy import PolicyRef


def standby_fleet() -> Fleet:
    # A standby starts no supervisor and writes nothing: no apiserver needed.
    kube = KubeClient(kubernetes.client.ApiClient())
    return Fleet(kube=kube, inventory=Inventory(), metrics=Metrics(), leading=False)


async def test_the_fleet_view_is_built_again_only_when_a_policy_changes() -> None:
    fleet = standby_fleet()
    spec = {
        "database": {"secretRef": {"name": "river-db"}},
        "workers": {"podSelector": {"matchLabels": {"app": "worker"}}},
    }
    await fleet.apply(PolicyRef("team-a", "catch-all", "uid-1"), spec, 1, None)
    first = fleet.view()
    assert fleet.view() is first  # every cycle asks; nothing changed
    tiered = {**spec, "selector": {"queues": ["q1"]}}
    await fleet.apply(PolicyRef("team-a", "tier-1", "uid-2"), tiered, 1, None)
    second = fleet.view()
    assert [p.name for p in second.policies] == ["catch-all", "tier-1"]
    await fleet.remove("team-a", "catch-all")
    assert [p.name for p in fleet.view().policies] == ["tier-1"]
