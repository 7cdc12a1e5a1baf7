"""kopf wiring only: JobPolicy lifecycle to the fleet, pod, Job and node watch events to the
caches.

Pods, Jobs and nodes belong to users; Lifeguard watches them with event handlers only, which kopf
runs without writing annotations or finalizers onto them. Its own JobPolicies get kopf's
progress annotations under lifeguard.dev and no finalizer.

A deleted JobPolicy stops at once: an event handler sees the watch's DELETED event (or a
deletionTimestamp, when someone else's finalizer holds the object) and stops its supervisor
before anything else is done for it. Not a finalizer, on purpose: deleting a policy is how a
user stops Lifeguard during an incident, and a finalizer would make that deletion (and the
deletion of its namespace) hang whenever the operator is down or uninstalled, which is exactly
when nothing needs stopping. A policy deleted while the operator is down is simply not listed
when it starts, so nothing ever acts for it; one whose namespace is deleted is deleted by the
namespace controller and stops the same way.

Pods, batch/v1 Jobs and nodes reach the caches through index handlers. kopf runs an operator's
index handlers for every object of the watches' initial listings before it runs any other
handler, so a policy's supervisor (started by its resume handler) never scans with a partial
picture: just after a restart, an empty cache would judge a job Stale (no pod) or NodeLost (no
node). Until then each policy's Ready condition says CachesSyncing (from the JobPolicies' own
index handler, which runs during the listing too).

Handlers are coroutines: kopf runs plain functions in threads, and the caches and supervisors
live on the event loop.
"""

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from lifeguard.cluster.facts import is_terminal_change, parse_time
from lifeguard.cluster.leader import LeaderElector
from lifeguard.cluster.leases import follow_node_leases
from lifeguard.model.policy import GROUP, PLURAL, VERSION
from lifeguard.supervisor.background import keep_running
from lifeguard.supervisor.fleet import Fleet
from lifeguard.supervisor.policy import PolicyRef

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "lifeguard.dev"


@dataclass(frozen=True, slots=True)
class WatchOptions:
    # Server-side label selector for pods, so large clusters do not stream every pod.
    pod_selector: str = ""
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
        # last event, and that worker holds the event's whole body. While thousands of pods
        # arrive, the bodies of the last 5 s all stay alive, and the process keeps that
        # high-water mark: ~10 MB of resident memory with 10k new pods (bench scale figure).
        # Half a second still serves an object's back-to-back events with one worker; the
        # wait for a patch's consistency is unaffected (kopf waits the longer of the two).
        settings.queueing.idle_timeout = 0.5
        settings.watching.server_timeout = 270
        settings.watching.client_timeout = 300
        if options.pod_selector:
            settings.watching.label_selectors["v1", "pods"] = options.pod_selector

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A registry of our own carries no default login: use the kubeconfig or the pod's
        # ServiceAccount, the same credentials as the rest of the operator.
        return kopf.login_via_client(**kwargs)

    background: list[asyncio.Task[None]] = []

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
    _watch_pods_and_nodes(registry, fleet, options)
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
        fleet.mark_synced()  # kopf runs this only once every index is populated
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
        fleet.mark_synced()
        if type == "DELETED" or meta.get("deletionTimestamp"):
            await fleet.remove(namespace or "", name, uid=uid)


def _watch_pods_and_nodes(
    registry: kopf.OperatorRegistry, fleet: Fleet, options: WatchOptions
) -> None:
    @kopf.index("v1", "pods", registry=registry)
    async def pod_listed(*, body: kopf.Body, **_: Any) -> None:
        # Every pod event but deletions comes here first (kopf calls no index handler on
        # DELETED); returning None keeps kopf's own index empty.
        fleet.inventory.upsert_pod(body)

    @kopf.on.event("v1", "pods", registry=registry)
    async def pod_event(
        *, type: str | None, namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> None:
        fleet.mark_synced()
        if type == "DELETED":
            facts = fleet.inventory.delete_pod(body)
        else:
            found = fleet.inventory.pod(namespace or "", name)
            if found is None:
                return
            facts = found
        if is_terminal_change(facts):
            fleet.pod_ended(facts)

    # batch/v1 Jobs of the watched namespaces, for the causes that end a Job's pods
    # (suspension, activeDeadlineSeconds, deletion, backoffLimit). A watch rather than a read
    # of a pod's Job when a verdict needs it: a deletion or suspension is known at once (the
    # scan that sees the pod's tombstone already knows why, no API call in the scan), a
    # deleted Job can still be told apart (a read would only find nothing), and the cache is
    # a few small facts per Job. Pod events still drive the fast path: the Job controller
    # deletes the pods, and their deletion wakes the supervisors.
    @kopf.index("batch", "v1", "jobs", registry=registry)
    async def job_listed(*, body: kopf.Body, **_: Any) -> None:
        fleet.inventory.upsert_job(body)  # indexed like pods: complete before the first scan

    @kopf.on.event("batch", "v1", "jobs", registry=registry)
    async def job_event(*, type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            fleet.inventory.delete_job(body)

    if options.nodes:

        @kopf.index("v1", "nodes", registry=registry)
        async def node_listed(*, body: kopf.Body, **_: Any) -> None:
            fleet.inventory.upsert_node(body)

        @kopf.on.event("v1", "nodes", registry=registry)
        async def node_event(*, type: str | None, name: str, **_: Any) -> None:
            fleet.mark_synced()
            if type == "DELETED":
                fleet.inventory.delete_node(name)
