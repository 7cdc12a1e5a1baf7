"""Carries out a cycle's report: Events, metric updates, log lines and the status patch.

Decides nothing: `reconcile` chose every Event, metric and status; a failure to post one is
logged and never stops the loop.
"""

import logging
from typing import Any

from lifeguard.cluster.kube import ApiserverUnreachable, ClusterError, KubeClient, ObjectRef
from lifeguard.metrics import Metrics
from lifeguard.reconcile import Effects, Event, Metric
from lifeguard.supervisor.policy import PolicyRef

log = logging.getLogger(__name__)

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING}


async def post_events(ref: PolicyRef, effects: Effects, kube: KubeClient) -> None:
    for event in effects.events:
        try:
            await kube.post_event(_about(ref, event), event.type, event.reason, event.message)
        except ApiserverUnreachable:
            pass  # the outage is logged once by the client; the decision by write_logs
        except ClusterError as exc:
            log.warning("policy %s: %s", ref, exc)


def _about(ref: PolicyRef, event: Event) -> ObjectRef:
    if event.pod is None:
        return ref.object_ref()
    return ObjectRef("v1", "Pod", event.pod.namespace, event.pod.name, event.pod.uid)


def record_metrics(ref: PolicyRef, effects: Effects, metrics: Metrics) -> None:
    policy = str(ref)
    for update in effects.metrics:
        _record(update, metrics, policy)


def _record(update: Metric, metrics: Metrics, policy: str) -> None:
    labels = update.labels
    if update.name == "job_duration":
        labels = tuple(metrics.kind_label(label) for label in labels)
    if update.per_policy:
        labels = (policy, *labels)
    metric: Any = getattr(metrics, update.name).labels(*labels)
    if update.op == "inc":
        metric.inc(update.value)
    elif update.op == "set":
        metric.set(update.value)
    else:
        for sample in update.samples:
            metric.observe(sample)


def write_logs(ref: PolicyRef, effects: Effects) -> None:
    policy = str(ref)
    for line in effects.logs:
        extra = {"policy": policy, **dict(line.extra)}
        log.log(_LEVELS[line.level], "policy %s: %s", policy, line.message, extra=extra)


async def patch_status(ref: PolicyRef, status: dict[str, Any], kube: KubeClient) -> bool:
    """True when the status was written."""
    try:
        await kube.patch_policy_status(ref.namespace, ref.name, status)
    except ApiserverUnreachable:
        return False  # logged once by the client; written again once it answers
    except ClusterError as exc:
        log.warning("policy %s: %s", ref, exc)
        return False
    return True
