"""Runtime limits: per-tier thresholds and limits learned from finished jobs."""

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from lifeguard.model.base import ApiModel, Duration
from lifeguard.model.duration import parse_duration
from lifeguard.model.rules import Rule, check, crd_rules
from lifeguard.model.selectors import TierMatch


class Tier(ApiModel):
    """Thresholds for a class of jobs; the first tier whose match fits a job wins."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(crd_rules(*_TIER_RULES))
    )

    match: TierMatch = Field(
        description="Which jobs the tier applies to: set at least one of queues, kinds, priorities."
    )
    stale_after: Duration | None = Field(
        None,
        description="Beat age after which these jobs are stale. Unset: the heartbeat setting.",
    )
    progress_timeout: Duration | None = Field(
        None,
        description="Progress age after which these jobs are Stuck. Unset: the heartbeat setting.",
    )
    max_runtime: Duration | None = Field(
        None,
        description="Hard ceiling on these jobs' run time (Overdue). Unset: spec.maxRuntime.",
    )

    @model_validator(mode="after")
    def _sets_something(self) -> Self:
        return check(self, _TIER_RULES)


def _runtime_beyond_stale(tier: Tier) -> bool:
    if tier.max_runtime is None or tier.stale_after is None:
        return True
    return parse_duration(tier.max_runtime) > parse_duration(tier.stale_after)


_TIER_RULES: tuple[Rule[Tier], ...] = (
    Rule(
        "has(self.staleAfter) || has(self.progressTimeout) || has(self.maxRuntime)",
        "a tier must set at least one of staleAfter, progressTimeout or maxRuntime",
        lambda tier: any(
            v is not None for v in (tier.stale_after, tier.progress_timeout, tier.max_runtime)
        ),
    ),
    Rule(
        "!has(self.maxRuntime) || !has(self.staleAfter)"
        " || duration(self.maxRuntime) > duration(self.staleAfter)",
        "maxRuntime must be longer than staleAfter",
        _runtime_beyond_stale,
        ".maxRuntime",
    ),
)


class AdaptiveSpec(ApiModel):
    """Runtime limits learned per kind from River's completed jobs."""

    enabled: bool = Field(
        False,
        description=(
            "Learn a runtime limit per kind (quantile x factor of recent completed run times)"
            " and judge jobs beyond it as Overdue; meant for kinds whose workers do not beat."
        ),
    )
    quantile: float = Field(
        0.99, gt=0, lt=1, description="The run-time quantile the limit is based on (0 < q < 1)."
    )
    factor: float = Field(
        3.0, ge=1, le=100, description="The limit is the quantile multiplied by this factor."
    )
    min_samples: int = Field(
        20,
        ge=1,
        le=100000,
        description="Completed jobs of a kind needed before its limit is used.",
    )
    window: Duration = Field(
        "168h", description="How far back completed jobs are sampled (by finalized_at)."
    )
