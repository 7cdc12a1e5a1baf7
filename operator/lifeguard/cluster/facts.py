"""Kubernetes objects (as plain dicts, the way kopf and the API deliver them) to verdict facts.

Only what verdicts read is kept, so the operator's pod cache stays small with many pods.
"""

import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lifeguard.model.observation import ContainerFacts, NodeFacts, PodFacts, TerminatedFacts

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


def container_facts(status: Mapping[str, Any]) -> ContainerFacts:
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
    )


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
        containers=tuple(container_facts(c) for c in status.get("containerStatuses") or []),
        gone=gone,
        labels=tuple(sorted((_shared(k), _shared(v)) for k, v in labels.items())),
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
