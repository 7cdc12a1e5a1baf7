"""Which limits apply to a job: the first matching tier, field by field over the policy's own."""

from lifeguard.model.duration import parse_duration
from lifeguard.model.limits import Tier
from lifeguard.model.observation import Thresholds
from lifeguard.model.policy import JobPolicySpec


def _seconds(text: str | None) -> float | None:
    return None if text is None else parse_duration(text)


def matching_tier(spec: JobPolicySpec, queue: str, kind: str, priority: int) -> Tier | None:
    """The first tier whose match fits the job (order in the spec decides)."""
    return next((tier for tier in spec.tiers if tier.match.matches(queue, kind, priority)), None)


def resolve_thresholds(spec: JobPolicySpec, queue: str, kind: str, priority: int) -> Thresholds:
    """The job's limits in seconds. A tier's unset fields fall back to the policy's settings."""
    tier = matching_tier(spec, queue, kind, priority)
    heartbeat = spec.heartbeat
    stale_after = spec.stale_after_seconds()
    progress_timeout = _seconds(heartbeat.progress_timeout)
    max_runtime = _seconds(spec.max_runtime)
    if tier is not None:
        stale_after = _seconds(tier.stale_after) or stale_after
        progress_timeout = _seconds(tier.progress_timeout) or progress_timeout
        max_runtime = _seconds(tier.max_runtime) or max_runtime
    return Thresholds(
        stale_after=stale_after,
        startup_grace=parse_duration(heartbeat.startup_grace),
        progress_timeout=progress_timeout,
        max_runtime=max_runtime,
        beat_interval=parse_duration(heartbeat.interval),
    )
