"""kopf wiring only: JobPolicy lifecycle to the fleet, node watch events to the caches, and the
pod and Job informers started.

Nodes belong to users; Lifeguard watches them with event handlers only, which kopf runs without
writing annotations or finalizers onto them. Its own JobPolicies get kopf's progress annotations
under lifeguard.dev and no finalizer. Pods and batch/v1 Jobs are not kopf's: Lifeguard's own
informers list and watch them (cluster/informer.py says why: kopf's per-object workers hold
every pod's whole body during its initial listing, and index thousands of pods in minutes).

A deleted JobPolicy stops at once: an event handler sees the watch's DELETED event (or a
deletionTimestamp, when someone else's finalizer holds the object) and stops its supervisor
before anything else is done for it. Not a finalizer, on purpose: deleting a policy is how a
user stops Lifeguard during an incident, and a finalizer would make that deletion (and the
deletion of its namespace) hang whenever the operator is down or uninstalled, which is exactly
when nothing needs stopping. A policy deleted while the operator is down is simply not listed
when it starts, so nothing ever acts for it; one whose namespace is deleted is deleted by the
namespace controller and stops the same way.

No policy is supervised before the caches hold their initial listings: just after a restart, an
empty cache would judge a job Stale (no pod) or NodeLost (no node). Nodes reach theirs through
an index handler (kopf runs an operator's index handlers for every object of the watches'
initial listings before it runs any other handler), pods and Jobs through their informers' first
listings. Until all are complete each policy's Ready condition says CachesSyncing (from the
JobPolicies' own index handler, which runs during the listing too, or when the policy arrives).

Handlers are coroutines: kopf runs plain functions in threads, and the caches and supervisors
live on the event loop.
"""

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from lifeguard.cluster.facts import parse_time
from lifeguard.cluster.leader import LeaderElector
from lifeguard.cluster.leases import follow_node_leases
from lifeguard.model.policy import GROUP, PLURAL, VERSION
from lifeguard.supervisor.background import keep_running
from lifeguard.supervisor.caches import informers
from lifeguard.supervisor.fleet import KOPF_INDEXES, Fleet
from lifeguard.supervisor.policy import PolicyRef

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "lifeguard.dev"


@dataclass(frozen=True, slots=True)
class WatchOptions:
    # Server-side label selector for pods, so large clusters do not stream every pod.
    pod_selector: str = ""
    # The namespaces whose pods and Jobs are followed; None: every namespace.
    namespaces: tuple[str, ...] | None = None
    # Whether nodes are watched (needs RBAC to list/watch nodes).
    nodes: bool = True


def build_registry(
    fleet: Fleet, options: WatchOptions, elector: LeaderElector | None = None
) -> kopf.OperatorRegistry:
    """Every replica runs these handlers: a standby's caches stay as warm as the leader's.
    Only the fleet's supervisors act, and they run on the leader alone."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(*, settings: kopf.OperatorSettings, **_: Any) -> None:
        # Only what is named is watched: no cluster-wide CRD or namespace listing needed.
        settings.scanning.disabled = True
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix=ANNOTATION_PREFIX
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
        )
        settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
        # Lifeguard posts its own, specific Events; kopf's handler chatter is noise.
        settings.posting.level = logging.WARNING
        # kopf keeps a worker task per object for `idle_timeout` (5 s by default) after its
        # last event, and that worker holds the event's whole body: while many objects change
        # at once (nodes, policies), the bodies of the last 5 s would all stay alive. Half a
        # second still serves an object's back-to-back events with one worker; the wait for a
        # patch's consistency is unaffected (kopf waits the longer of the two).
        settings.queueing.idle_timeout = 0.5
        settings.watching.server_timeout = 270
        settings.watching.client_timeout = 300

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A registry of our own carries no default login: use the kubeconfig or the pod's
        # ServiceAccount, the same credentials as the rest of the operator.
        return kopf.login_via_client(**kwargs)

    background: list[asyncio.Task[None]] = []
    # Built now, so that the fleet knows which listings its scans wait for.
    followers = informers(fleet, options.namespaces, options.pod_selector)

    @kopf.on.startup(registry=registry)
    async def follow_pods_and_jobs(**_: Any) -> None:
        for informer in followers:
            task = asyncio.create_task(keep_running(f"following {informer.what}", informer.run))
            background.append(task)

    if options.nodes:

        @kopf.on.startup(registry=registry)
        async def follow_leases(**_: Any) -> None:
            follow = functools.partial(follow_node_leases, fleet.kube, fleet.inventory)
            background.append(asyncio.create_task(keep_running("the node-Lease follower", follow)))

    if elector is not None:

        @kopf.on.startup(registry=registry)
        async def campaign(**_: Any) -> None:
            elector.start()

    @kopf.on.cleanup(registry=registry)
    async def shutdown(**_: Any) -> None:
        for task in background:
            task.cancel()
        if elector is not None:
            # Stops the supervisors (a batch under way is abandoned), then empties the Lease's
            # holder so that a standby takes over within a retry period.
            await elector.release()
        await fleet.stop_all()

    _watch_policies(registry, fleet)
    if options.nodes:
        _watch_nodes(registry, fleet)
    return registry


def _watch_policies(registry: kopf.OperatorRegistry, fleet: Fleet) -> None:
    @kopf.index(GROUP, VERSION, PLURAL, registry=registry)
    async def policy_listed(
        *,
        namespace: str | None,
        name: str,
        uid: str,
        meta: kopf.Meta,
        status: kopf.Status,
        **_: Any,
    ) -> None:
        if not fleet.caches_synced and not meta.get("deletionTimestamp"):
            ref = PolicyRef(namespace or "", name, uid)
            await fleet.note_syncing(ref, dict(status), meta.get("generation"))

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def policy_changed(
        *,
        namespace: str | None,
        name: str,
        uid: str,
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        **_: Any,
    ) -> None:
        if meta.get("deletionTimestamp"):
            return  # being deleted: policy_event stops it, nothing may start it again
        await fleet.listed(KOPF_INDEXES)  # kopf runs this only once every index is populated
        await fleet.apply(
            PolicyRef(namespace or "", name, uid),
            dict(spec),
            meta.get("generation"),
            dict(status),
            created=parse_time(meta.get("creationTimestamp")),
        )

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def policy_event(
        *, type: str | None, namespace: str | None, name: str, uid: str, meta: kopf.Meta, **_: Any
    ) -> None:
        # kopf runs an object's event handlers before its change handlers, so a deletion
        # stops the supervisor before any other handler of that event could touch it.
        await fleet.listed(KOPF_INDEXES)
        if type == "DELETED" or meta.get("deletionTimestamp"):
            await fleet.remove(namespace or "", name, uid=uid)


def _watch_nodes(registry: kopf.OperatorRegistry, fleet: Fleet) -> None:
    @kopf.index("v1", "nodes", registry=registry)
    async def node_listed(*, body: kopf.Body, **_: Any) -> None:
        fleet.inventory.upsert_node(body)

    @kopf.on.event("v1", "nodes", registry=registry)
    async def node_event(*, type: str | None, name: str, **_: Any) -> None:
        await fleet.listed(KOPF_INDEXES)
        if type == "DELETED":
            fleet.inventory.delete_node(name)
