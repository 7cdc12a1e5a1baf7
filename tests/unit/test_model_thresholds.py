"""Which limits apply to a job: first matching tier, field by field over the policy's own."""

from __future__ import annotations

import pytest

from lifeguard.model.observation import Thresholds
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.thresholds import resolve_thresholds
from policy_cases import spec_with

TIERED = JobPolicySpec.model_validate(
    spec_with(
        {
            "heartbeat": {"interval": "5s", "missedBeats": 6, "progressTimeout": "10m"},
            "maxRuntime": "1h",
            "tiers": [
                {"match": {"priorities": [1]}, "staleAfter": "15s", "maxRuntime": "5m"},
                {
                    "match": {"kinds": ["nightly_report"], "queues": ["batch"]},
                    "progressTimeout": "30m",
                    "maxRuntime": "6h",
                },
            ],
        }
    )
)


@pytest.mark.parametrize(
    ("queue", "kind", "priority", "expected"),
    [
        # No tier matches: the policy's own settings.
        ("default", "email", 2, Thresholds(30.0, 60.0, 600.0, 3600.0, beat_interval=5.0)),
        # Priority 1: tight tier; progress timeout falls back to the heartbeat's.
        ("default", "email", 1, Thresholds(15.0, 60.0, 600.0, 300.0, beat_interval=5.0)),
        # Both lists of the batch tier must match; stale threshold falls back.
        ("batch", "nightly_report", 3, Thresholds(30.0, 60.0, 1800.0, 21600.0, beat_interval=5.0)),
        ("default", "nightly_report", 3, Thresholds(30.0, 60.0, 600.0, 3600.0, beat_interval=5.0)),
        # First match wins: a priority 1 batch job gets the tight tier.
        ("batch", "nightly_report", 1, Thresholds(15.0, 60.0, 600.0, 300.0, beat_interval=5.0)),
    ],
)
def test_first_matching_tier_wins_and_unset_fields_fall_back(
    queue: str, kind: str, priority: int, expected: Thresholds
) -> None:
    assert resolve_thresholds(TIERED, queue, kind, priority) == expected


def test_without_tiers_or_limits_only_beats_are_judged() -> None:
    spec = JobPolicySpec.model_validate(spec_with({}))

    assert resolve_thresholds(spec, "default", "email", 1) == Thresholds(
        stale_after=30.0,
        startup_grace=60.0,
        progress_timeout=None,
        max_runtime=None,
        beat_interval=10.0,
    )
