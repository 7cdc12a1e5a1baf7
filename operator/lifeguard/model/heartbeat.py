"""How workers prove they are alive (beats) and that their work moves (progress)."""

from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from lifeguard.model.base import ApiModel, Duration, cel, cel_rules
from lifeguard.model.duration import parse_duration
from lifeguard.model.enums import HeartbeatStore

# River keeps its own bookkeeping under "river:" keys, Lifeguard its counters under "lifeguard:".
RESERVED_METADATA_PREFIXES = ("river:", "lifeguard:")


def _not_reserved(key: str) -> str:
    if key.startswith(RESERVED_METADATA_PREFIXES):
        raise ValueError(f"metadataKey {key!r} must not start with 'river:' or 'lifeguard:'")
    return key


MetadataKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        json_schema_extra=cel_rules(
            cel(
                "!self.startsWith('river:') && !self.startsWith('lifeguard:')",
                "metadataKey must not start with 'river:' or 'lifeguard:'"
                " (keys reserved by River and Lifeguard)",
            )
        ),
    ),
    AfterValidator(_not_reserved),
]


class HeartbeatSpec(ApiModel):
    """Where beats are written and when a job counts as stale."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.staleAfter) || duration(self.staleAfter) > duration(self.interval)",
                "staleAfter must be longer than interval",
                ".staleAfter",
            ),
            cel(
                "!has(self.progressTimeout)"
                " || duration(self.progressTimeout) >= duration(self.interval)",
                "progressTimeout must be at least interval",
                ".progressTimeout",
            ),
            cel(
                "self.store != 'Metadata' || has(self.metadataKey)",
                "metadataKey is required when store is Metadata",
                ".metadataKey",
            ),
        )
    )

    store: HeartbeatStore = Field(
        HeartbeatStore.TABLE,
        description=(
            "Where workers write beats. Table: Lifeguard's narrow river_job_heartbeat table"
            " (cheap HOT updates; written by the Go heartbeat middleware). Metadata: a key in"
            " river_job.metadata, for workers that already write one (each beat rewrites the"
            " whole job row and its indexes)."
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
        interval = parse_duration(self.interval)
        if self.stale_after is not None and parse_duration(self.stale_after) <= interval:
            raise ValueError("staleAfter must be longer than interval")
        if self.progress_timeout is not None and parse_duration(self.progress_timeout) < interval:
            raise ValueError("progressTimeout must be at least interval")
        if self.store is HeartbeatStore.METADATA and self.metadata_key is None:
            raise ValueError("metadataKey is required when store is Metadata")
        return self

    def stale_after_seconds(self) -> float:
        """staleAfter when set, else interval x missedBeats."""
        if self.stale_after is not None:
            return parse_duration(self.stale_after)
        return parse_duration(self.interval) * self.missed_beats
