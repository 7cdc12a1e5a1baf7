"""Phrases shared by verdict messages: where a job runs and how long ago something happened."""

from datetime import datetime

from lifeguard.model.duration import format_duration
from lifeguard.model.observation import Observation, PodFacts


def ago(now: datetime, then: datetime | None) -> str:
    """ " 3s ago" (leading space), "" when the time is unknown; clocks may disagree slightly."""
    if then is None:
        return ""
    seconds = (now - then).total_seconds()
    if seconds < 1:
        return " just now"
    return f" {format_duration(seconds)} ago"


def seconds(value: float) -> str:
    """A duration for messages; never negative (the clocks of nodes and database may differ)."""
    return format_duration(max(0.0, value))


def where(obs: Observation, pod: PodFacts | None) -> str:
    """'pod worker-7f on node n2', or the client ID when no pod is attributable."""
    if pod is not None:
        node = pod.node_name or (obs.node.name if obs.node else None)
        return f"pod {pod.name} on node {node}" if node else f"pod {pod.name}"
    if obs.pod_name is not None:
        return f"pod {obs.pod_name}"
    return f"client {obs.job.client_id}" if obs.job.client_id else "an unknown client"
