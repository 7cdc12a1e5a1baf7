"""The end-to-end tests' scenario helpers; they live in devenv.scenario so the demo shares them."""

from devenv.scenario import (
    CRD,
    POLICY_PATH,
    WORKER_LABELS,
    Scenario,
    fast_policy_spec,
    install_crd,
    lifeguard_errors,
    migrate_heartbeats,
    new_world,
    policy_manifest_yaml,
    untouched,
    wait_for,
)

__all__ = [
    "CRD",
    "POLICY_PATH",
    "WORKER_LABELS",
    "Scenario",
    "fast_policy_spec",
    "install_crd",
    "lifeguard_errors",
    "migrate_heartbeats",
    "new_world",
    "policy_manifest_yaml",
    "untouched",
    "wait_for",
]
