"""No policy is supervised before every cache holds its initial listing; the fleet view."""

import kubernetes

from lifeguard.cluster.inventory import Inventory
from lifeguard.cluster.kube import KubeClient
from lifeguard.metrics import Metrics
from lifeguard.supervisor.caches import informers
from lifeguard.supervisor.fleet import KOPF_INDEXES, Fleet
from lifeguard.supervisor.policy import PolicyRef


def standby_fleet() -> Fleet:
    # A standby starts no supervisor and writes nothing: no apiserver needed.
    kube = KubeClient(kubernetes.client.ApiClient())
    return Fleet(kube=kube, inventory=Inventory(), metrics=Metrics(), leading=False)


async def test_caches_are_synced_once_kopfs_indexes_and_every_informer_listed() -> None:
    fleet = standby_fleet()
    followers = informers(fleet, ["team-a", "team-b"])
    assert sorted(f.what for f in followers) == [
        "batch/v1 Jobs in team-a",
        "batch/v1 Jobs in team-b",
        "pods in team-a",
        "pods in team-b",
    ]
    await fleet.listed(KOPF_INDEXES)
    for informer in followers:
        assert not fleet.caches_synced
        await fleet.listed(informer.what)
    assert fleet.caches_synced


async def test_a_listing_again_after_the_sync_changes_nothing() -> None:
    fleet = standby_fleet()
    [pods, jobs] = informers(fleet, None)
    assert (pods.what, jobs.what) == ("pods in every namespace", "batch/v1 Jobs in every namespace")
    for what in (pods.what, KOPF_INDEXES, jobs.what, pods.what):
        await fleet.listed(what)
    assert fleet.caches_synced
    fleet.expect_listing("pods in team-c")  # an informer started late does not unsync
    assert fleet.caches_synced


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
