"""How workers prove they are alive (beats) and that their work moves (progress)."""

from collections.abc import Callable
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from lifeguard.model.base import ApiModel, Duration
from lifeguard.model.duration import parse_duration
from lifeguard.model.enums import HeartbeatStore
from lifeguard.model.rules import Rule, check, checker, crd_rules

# River keeps its own bookkeeping under "river:" keys, Lifeguard its counters under "lifeguard:".
RESERVED_METADATA_PREFIXES = ("river:", "lifeguard:")


NOT_RESERVED: Rule[str] = Rule(
    "!self.startsWith('river:') && !self.startsWith('lifeguard:')",
    "metadataKey must not start with 'river:' or 'lifeguard:'"
    " (keys reserved by River and Lifeguard)",
    lambda key: not key.startswith(RESERVED_METADATA_PREFIXES),
)

MetadataKey = Annotated[
    str,
    Field(min_length=1, max_length=253, json_schema_extra=crd_rules(NOT_RESERVED)),
    AfterValidator(checker(NOT_RESERVED)),
]


# Fields that only mean something when workers beat (wire name, Python name): a policy with
# store None must not set them.
BEAT_ONLY_FIELDS = (
    ("staleAfter", "stale_after"),
    ("progressTimeout", "progress_timeout"),
    ("metadataKey", "metadata_key"),
)
BEATLESS_PROBLEM = "needs beats: it must not be set when store is None"


class HeartbeatSpec(ApiModel):
    """Where beats are written and when a job counts as stale."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(crd_rules(*_HEARTBEAT_RULES))
    )

    store: HeartbeatStore = Field(
        HeartbeatStore.TABLE,
        description=(
            "Where workers write beats. Table: Lifeguard's narrow river_job_heartbeat table"
            " (cheap HOT updates; written by the Go heartbeat middleware). Metadata: a key in"
            " river_job.metadata, for workers that already write one (each beat rewrites the"
            " whole job row and its indexes). None: the workers write no beats; jobs are judged"
            " by pod evidence (deaths, OOM kills, deletions, node loss) and run time (maxRuntime,"
            " tiers, adaptive limits) only, never as Unresponsive, Stale or Stuck, and"
            " staleAfter, progressTimeout and metadataKey must not be set."
        ),
    )
    metadata_key: MetadataKey | None = Field(
        None,
        description=(
            "The river_job.metadata key holding the last beat as an RFC 3339 timestamp, e.g."
            " health_check_at. Required when store is Metadata. Must not start with 'river:'"
            " or 'lifeguard:'."
        ),
    )
    interval: Duration = Field(
        "10s", description="How often workers beat. A job is stale after missedBeats intervals."
    )
    missed_beats: int = Field(
        3,
        ge=1,
        le=100,
        description="Missed intervals after which a job is stale (unless staleAfter is set).",
    )
    stale_after: Duration | None = Field(
        None,
        description=(
            "Beat age after which a job is stale. Overrides interval x missedBeats;"
            " must be longer than interval."
        ),
    )
    startup_grace: Duration = Field(
        "60s",
        description=(
            "How long a job may run before its first beat without being judged (verdict Starting)."
        ),
    )
    progress_timeout: Duration | None = Field(
        None,
        description=(
            "Progress age after which a job whose process still beats is Stuck. Unset: progress"
            " is not judged. Must be at least interval."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        return check(self, _HEARTBEAT_RULES)

    @property
    def beats(self) -> bool:
        """Whether the workers write beats at all (store is not None)."""
        return self.store is not HeartbeatStore.NONE

    def stale_after_seconds(self) -> float:
        """staleAfter when set, else interval x missedBeats."""
        if self.stale_after is not None:
            return parse_duration(self.stale_after)
        return parse_duration(self.interval) * self.missed_beats


def _seconds(duration: str | None) -> float | None:
    return None if duration is None else parse_duration(duration)


def _stale_beyond_interval(spec: HeartbeatSpec) -> bool:
    stale_after = _seconds(spec.stale_after)
    return stale_after is None or stale_after > parse_duration(spec.interval)


def _progress_at_least_interval(spec: HeartbeatSpec) -> bool:
    timeout = _seconds(spec.progress_timeout)
    return timeout is None or timeout >= parse_duration(spec.interval)


def _unset_without_beats(field: str) -> Callable[[HeartbeatSpec], bool]:
    return lambda spec: spec.beats or getattr(spec, field) is None


_HEARTBEAT_RULES: tuple[Rule[HeartbeatSpec], ...] = (
    Rule(
        "!has(self.staleAfter) || duration(self.staleAfter) > duration(self.interval)",
        "staleAfter must be longer than interval",
        _stale_beyond_interval,
        ".staleAfter",
    ),
    Rule(
        "!has(self.progressTimeout) || duration(self.progressTimeout) >= duration(self.interval)",
        "progressTimeout must be at least interval",
        _progress_at_least_interval,
        ".progressTimeout",
    ),
    Rule(
        "self.store != 'Metadata' || has(self.metadataKey)",
        "metadataKey is required when store is Metadata",
        lambda spec: spec.store is not HeartbeatStore.METADATA or spec.metadata_key is not None,
        ".metadataKey",
    ),
    *(
        Rule(
            f"self.store != 'None' || !has(self.{name})",
            f"{name} {BEATLESS_PROBLEM}",
            _unset_without_beats(field),
            f".{name}",
        )
        for name, field in BEAT_ONLY_FIELDS
    ),
)
