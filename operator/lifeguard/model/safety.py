"""Guards against acting on a bad picture of the world."""

from pydantic import Field

from lifeguard.model.base import ApiModel
from lifeguard.model.enums import Mode


class CircuitBreakerSpec(ApiModel):
    """Pauses actions when too many jobs turn stale at once (a heartbeat writer outage)."""

    stale_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description=(
            "Open the breaker when more than this fraction of the policy's running jobs are"
            " stale in one scan; actions pause until it closes."
        ),
    )
    min_jobs: int = Field(
        5,
        ge=1,
        le=100000,
        description="The breaker only judges scans with at least this many running jobs.",
    )


class SafetySpec(ApiModel):
    """Dry run, rate limit and circuit breaker."""

    mode: Mode = Field(
        Mode.ENFORCE,
        description="Enforce: act. DryRun: decide and report (status, Events, metrics) only.",
    )
    max_actions_per_minute: int = Field(
        60,
        ge=1,
        le=10000,
        description=(
            "At most this many actions per minute for this policy on jobs whose process may"
            " still run. Retries and discards of jobs whose process is proven gone (pod deleted"
            " or dead, container ended, node lost) are never deferred and do not count."
        ),
    )
    circuit_breaker: CircuitBreakerSpec = Field(
        CircuitBreakerSpec(),
        description="Pauses actions when a large share of jobs turns stale at once.",
    )
