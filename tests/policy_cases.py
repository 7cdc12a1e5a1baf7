"""JobPolicy manifests shared by the model's unit tests and the apiserver e2e tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies"


def minimal_spec() -> dict[str, Any]:
    """The smallest valid spec (the same as examples/policies/minimal.yaml)."""
    return {
        "database": {"secretRef": {"name": "river-database"}},
        "workers": {"podSelector": {"matchLabels": {"app": "river-worker"}}},
    }


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def spec_with(patch: dict[str, Any]) -> dict[str, Any]:
    """The minimal spec with `patch` deep-merged in (an empty dict replaces)."""
    return _merged(minimal_spec(), patch)


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "lifeguard.dev/v1alpha1",
        "kind": "JobPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


@dataclass(frozen=True)
class InvalidCase:
    """A spec that must be rejected, and the field the rejection must name."""

    name: str
    patch: dict[str, Any]
    field: str
    # Whether the apiserver itself can reject it (schema or CEL); if not, validate_spec does.
    apiserver: bool = True

    def spec(self) -> dict[str, Any]:
        return spec_with(self.patch)


INVALID_CASES = [
    InvalidCase(
        "stale-after-not-longer-than-interval",
        {"heartbeat": {"interval": "10s", "staleAfter": "10s"}},
        "spec.heartbeat.staleAfter",
    ),
    InvalidCase(
        "progress-timeout-below-interval",
        {"heartbeat": {"progressTimeout": "5s"}},
        "spec.heartbeat.progressTimeout",
    ),
    InvalidCase(
        "metadata-store-without-key",
        {"heartbeat": {"store": "Metadata"}},
        "spec.heartbeat.metadataKey",
    ),
    InvalidCase(
        "metadata-key-reserved-by-river",
        {"heartbeat": {"store": "Metadata", "metadataKey": "river:beat"}},
        "spec.heartbeat.metadataKey",
    ),
    InvalidCase(
        "interval-not-a-duration",
        {"heartbeat": {"interval": "10 seconds"}},
        "spec.heartbeat.interval",
    ),
    InvalidCase("zero-interval", {"heartbeat": {"interval": "0s"}}, "spec.heartbeat.interval"),
    InvalidCase(
        "tier-match-empty",
        {"tiers": [{"match": {}, "staleAfter": "1m"}]},
        "spec.tiers[0].match",
    ),
    InvalidCase(
        "tier-sets-no-threshold",
        {"tiers": [{"match": {"queues": ["default"]}}]},
        "spec.tiers[0]",
    ),
    InvalidCase(
        "tier-stale-after-not-longer-than-interval",
        {"tiers": [{"match": {"priorities": [1]}, "staleAfter": "5s"}]},
        "spec.tiers",
    ),
    InvalidCase("max-runtime-below-stale-threshold", {"maxRuntime": "20s"}, "spec.maxRuntime"),
    InvalidCase(
        "then-without-after",
        {"actions": {"stuck": {"action": "Cancel", "then": "RestartPod"}}},
        "spec.actions.stuck.after",
    ),
    InvalidCase(
        "then-repeats-action",
        {"actions": {"overdue": {"action": "Cancel", "then": "Cancel", "after": "1m"}}},
        "spec.actions.overdue.then",
    ),
    InvalidCase(
        "priority-out-of-range",
        {"selector": {"priorities": [5]}},
        "spec.selector.priorities[0]",
    ),
    InvalidCase(
        "empty-pod-selector",
        {"workers": {"podSelector": {"matchLabels": {}}}},
        "spec.workers.podSelector",
    ),
    InvalidCase(
        "client-id-pattern-without-pod-group",
        {"workers": {"clientIdPattern": "^(?P<host>.+)_[0-9_T]+$"}},
        "spec.workers.clientIdPattern",
    ),
    InvalidCase(
        "client-id-pattern-does-not-compile",
        {"workers": {"clientIdPattern": "^(?P<pod>[a-z"}},
        "spec.workers.clientIdPattern",
        apiserver=False,
    ),
    InvalidCase("unknown-mode", {"safety": {"mode": "Yolo"}}, "spec.safety.mode"),
    InvalidCase(
        "stale-fraction-above-one",
        {"safety": {"circuitBreaker": {"staleFraction": 1.5}}},
        "spec.safety.circuitBreaker.staleFraction",
    ),
    InvalidCase(
        "misspelled-field",
        {"heartbeat": {"intervall": "10s"}},
        "spec.heartbeat.intervall",
    ),
    InvalidCase(
        "stale-after-without-beats",
        {"heartbeat": {"store": "None", "staleAfter": "1m"}},
        "spec.heartbeat.staleAfter",
    ),
    InvalidCase(
        "progress-timeout-without-beats",
        {"heartbeat": {"store": "None", "progressTimeout": "10m"}},
        "spec.heartbeat.progressTimeout",
    ),
    InvalidCase(
        "metadata-key-without-beats",
        {"heartbeat": {"store": "None", "metadataKey": "health_check_at"}},
        "spec.heartbeat.metadataKey",
    ),
    InvalidCase(
        "tier-stale-after-without-beats",
        {
            "heartbeat": {"store": "None"},
            "tiers": [{"match": {"queues": ["batch"]}, "staleAfter": "1m"}],
        },
        "spec.tiers",
    ),
    InvalidCase(
        "worker-container-not-a-name",
        {"workers": {"container": "Worker_1"}},
        "spec.workers.container",
    ),
    InvalidCase(
        "secret-name-missing",
        {"database": {"secretRef": {}}},
        "spec.database.secretRef.name",
    ),
]
