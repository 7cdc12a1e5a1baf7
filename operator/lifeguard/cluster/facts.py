"""Kubernetes objects (as plain dicts, the way kopf and the API deliver them) to verdict facts.

Only what verdicts read is kept, so the operator's pod cache stays small with many pods.
"""

import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lifeguard.model.observation import (
    DEFAULT_CONTAINER_ANNOTATION,
    ContainerFacts,
    NodeFacts,
    OwnerJobFacts,
    PodFacts,
    TerminatedFacts,
)

Body = Mapping[str, Any]


def _shared(value: object) -> str:
    """One string object for a value many pods repeat (namespace, node, phase, label keys and
    common label values): each decoded pod body brings its own copies, and with 10k pods
    the copies alone take megabytes in the inventory. Interned strings are freed when unused."""
    return sys.intern(str(value))


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp from the API ("2026-11-27T08:00:00Z"), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _terminated(state: Mapping[str, Any] | None) -> TerminatedFacts | None:
    term = (state or {}).get("terminated")
    if not term:
        return None
    return TerminatedFacts(
        exit_code=int(term.get("exitCode", 0) or 0),
        reason=term.get("reason"),
        signal=term.get("signal"),
        started_at=parse_time(term.get("startedAt")),
        finished_at=parse_time(term.get("finishedAt")),
    )


def container_facts(status: Mapping[str, Any], *, sidecar: bool = False) -> ContainerFacts:
    state = status.get("state") or {}
    running = state.get("running")
    waiting = state.get("waiting")
    return ContainerFacts(
        name=_shared(status.get("name", "")),
        restart_count=int(status.get("restartCount", 0) or 0),
        running_since=parse_time(running.get("startedAt")) if running else None,
        terminated=_terminated(state),
        waiting_reason=waiting.get("reason") if waiting else None,
        last_terminated=_terminated(status.get("lastState")),
        sidecar=sidecar,
    )


def _native_sidecars(spec: Mapping[str, Any]) -> set[str]:
    """Init containers with restartPolicy Always run next to the main containers for the pod's
    whole life (Kubernetes' native sidecars); the other init containers finish before the
    worker starts and cannot end a job."""
    return {
        str(c.get("name"))
        for c in spec.get("initContainers") or []
        if c.get("restartPolicy") == "Always"
    }


def _containers(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[ContainerFacts, ...]:
    main = [container_facts(c) for c in status.get("containerStatuses") or []]
    sidecars = _native_sidecars(spec)
    if not sidecars:
        return tuple(main)
    native = [
        container_facts(c, sidecar=True)
        for c in status.get("initContainerStatuses") or []
        if c.get("name") in sidecars
    ]
    return (*main, *native)


def _default_container(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> str | None:
    """The pod's only container, else the one kubectl's default-container annotation names,
    else the first (the order `kubectl logs` and `kubectl exec` use)."""
    names = [str(c.get("name", "")) for c in spec.get("containers") or []]
    if not names:
        return None
    annotated = (metadata.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    chosen = annotated if len(names) > 1 and annotated in names else names[0]
    return _shared(chosen)


def _controller_job(metadata: Mapping[str, Any]) -> str | None:
    for owner in metadata.get("ownerReferences") or []:
        if (
            owner.get("controller")
            and owner.get("kind") == "Job"
            and str(owner.get("apiVersion", "")).startswith("batch/")
        ):
            return str(owner.get("name", "")) or None
    return None


def _disruption_target(conditions: list[Mapping[str, Any]]) -> str | None:
    # Kubernetes sets DisruptionTarget=True with a reason saying who disrupts the pod
    # (EvictionByEvictionAPI, DeletionByTaintManager, PreemptionByScheduler, DeletionByPodGC,
    # TerminationByKubelet) before it deletes it.
    for condition in conditions:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            return str(condition.get("reason") or "DisruptionTarget")
    return None


def pod_facts(body: Body, *, gone: bool = False) -> PodFacts:
    """Facts of one pod; `gone` marks the final state of a pod deleted from the API."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    labels = metadata.get("labels") or {}
    return PodFacts(
        namespace=_shared(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        node_name=_shared(node) if (node := spec.get("nodeName")) is not None else None,
        phase=_shared(status.get("phase") or "Pending"),
        reason=status.get("reason"),
        message=status.get("message"),
        disruption_target=_disruption_target(status.get("conditions") or []),
        deletion_timestamp=parse_time(metadata.get("deletionTimestamp")),
        containers=_containers(spec, status),
        gone=gone,
        labels=tuple(sorted((_shared(k), _shared(v)) for k, v in labels.items())),
        default_container=_default_container(metadata, spec),
        owner_job=_controller_job(metadata),
    )


# The Job conditions that say it failed: FailureTarget comes first (the controller then
# terminates the pods), Failed once they are gone.
_FAILED_CONDITIONS = ("FailureTarget", "Failed")


def _ignores_disruptions(spec: Mapping[str, Any]) -> bool:
    rules = (spec.get("podFailurePolicy") or {}).get("rules") or []
    return any(
        rule.get("action") == "Ignore"
        and any(
            p.get("type") == "DisruptionTarget" and p.get("status", "True") == "True"
            for p in rule.get("onPodConditions") or []
        )
        for rule in rules
    )


def job_facts(body: Body, *, gone: bool = False) -> OwnerJobFacts:
    """Facts of one batch/v1 Job; `gone` marks the final state of a deleted Job."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    conditions = (body.get("status") or {}).get("conditions") or []
    failed = next(
        (
            c
            for kind in _FAILED_CONDITIONS
            for c in conditions
            if c.get("type") == kind and c.get("status") == "True"
        ),
        None,
    )
    deadline, backoff = spec.get("activeDeadlineSeconds"), spec.get("backoffLimit")
    return OwnerJobFacts(
        namespace=_shared(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        suspended=bool(spec.get("suspend")),
        failed_reason=failed.get("reason") if failed else None,
        failed_message=failed.get("message") if failed else None,
        active_deadline_seconds=int(deadline) if deadline is not None else None,
        backoff_limit=int(backoff) if backoff is not None else None,
        ignores_disruptions=_ignores_disruptions(spec),
        deletion_timestamp=parse_time(metadata.get("deletionTimestamp")),
        gone=gone,
    )


def node_facts(body: Body) -> NodeFacts:
    """A node's Ready condition; Unknown (lost leases) counts as not ready."""
    name = str((body.get("metadata") or {}).get("name", ""))
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            status = condition.get("status")
            return NodeFacts(
                name=name,
                ready=status == "True",
                ready_since=parse_time(condition.get("lastTransitionTime")),
                reason=condition.get("reason"),
            )
    return NodeFacts(name=name, ready=None)


def is_terminal_change(facts: PodFacts) -> bool:
    """Whether a pod event may end a job: worth a fast-path look at its jobs at once."""
    if facts.gone or facts.phase in ("Failed", "Succeeded") or facts.disruption_target:
        return True
    return any(c.terminated is not None or c.restart_count > 0 for c in facts.containers)
