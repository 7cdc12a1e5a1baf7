"""The informers that feed the fleet's inventory with pods and batch/v1 Jobs.

One informer per kind for every namespace, or per watched namespace when the operator is
limited to some. A pod's terminal change or deletion also takes the fast path: the policies of
its namespace look at its jobs at once instead of at their next scan.
"""

from collections.abc import Sequence

from lifeguard.cluster.facts import is_terminal_change
from lifeguard.cluster.informer import JOBS, PODS, Informer, Sink
from lifeguard.model.observation import OwnerJobFacts, PodFacts
from lifeguard.supervisor.fleet import Fleet


def informers(
    fleet: Fleet, namespaces: Sequence[str] | None, pod_selector: str = ""
) -> list[Informer[PodFacts] | Informer[OwnerJobFacts]]:
    """The informers for `namespaces` (None: every namespace); the fleet's scans wait for the
    first listing of each."""
    inventory = fleet.inventory
    scopes: Sequence[str | None] = list(namespaces) if namespaces is not None else [None]
    found: list[Informer[PodFacts] | Informer[OwnerJobFacts]] = []
    for namespace in scopes:
        pods = Informer(
            fleet.kube,
            PODS,
            _pod_sink(fleet),
            namespace=namespace,
            label_selector=pod_selector,
        )
        jobs = Informer(
            fleet.kube,
            JOBS,
            Sink(
                put=inventory.put_job,
                drop=inventory.drop_job,
                vanished=inventory.vanished_jobs,
                listed=fleet.listed,
            ),
            namespace=namespace,
        )
        found += [pods, jobs]
    for informer in found:
        fleet.expect_listing(informer.what)
    return found


def _pod_sink(fleet: Fleet) -> Sink[PodFacts]:
    inventory = fleet.inventory

    def put(pod: PodFacts) -> None:
        inventory.put_pod(pod)
        if is_terminal_change(pod):
            fleet.pod_ended(pod)

    def drop(pod: PodFacts) -> None:
        inventory.drop_pod(pod)
        fleet.pod_ended(pod)

    return Sink(put=put, drop=drop, vanished=inventory.vanished_pods, listed=fleet.listed)
