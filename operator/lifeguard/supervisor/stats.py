"""Per-kind run-time statistics for the status and the adaptive limits of kinds without beats.

Adaptive limit = factor x the run time at the policy's quantile, once a kind has at least
minSamples completed jobs in the window. River keeps finished jobs until its cleaner removes
them (completed: 24 h by default), so the effective window is at most that retention.
"""

import itertools
from collections.abc import Sequence

from lifeguard.model.limits import AdaptiveSpec
from lifeguard.model.status import MAX_KIND_STATS, KindStat
from lifeguard.river.durations import KindDurations


def quantile_seconds(stats: KindDurations, quantile: float) -> float:
    """The run time at `quantile`, interpolated between the percentiles the database returns."""
    points = [(0.5, stats.p50), (0.95, stats.p95), (0.99, stats.p99)]
    if quantile <= points[0][0]:
        return stats.p50
    for (q_low, low), (q_high, high) in itertools.pairwise(points):
        if quantile <= q_high:
            return low + (high - low) * (quantile - q_low) / (q_high - q_low)
    return stats.p99


def adaptive_limits(stats: Sequence[KindDurations], spec: AdaptiveSpec) -> dict[str, float]:
    if not spec.enabled:
        return {}
    return {
        s.kind: spec.factor * quantile_seconds(s, spec.quantile)
        for s in stats
        if s.samples >= spec.min_samples
    }


def kind_stats(stats: Sequence[KindDurations], limits: dict[str, float]) -> list[KindStat]:
    """The busiest kinds (most samples) for the status, bounded."""
    busiest = sorted(stats, key=lambda s: (-s.samples, s.kind))[:MAX_KIND_STATS]
    return [
        KindStat(
            kind=s.kind,
            samples=s.samples,
            p50_seconds=round(s.p50, 3),
            p95_seconds=round(s.p95, 3),
            p99_seconds=round(s.p99, 3),
            adaptive_limit_seconds=round(limits[s.kind], 3) if s.kind in limits else None,
        )
        for s in busiest
    ]
