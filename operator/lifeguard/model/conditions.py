"""Status conditions per the Kubernetes API conventions, and the pure rule for updating them."""

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, PlainSerializer

from lifeguard.model.base import StatusModel

# Conditions the operator sets on every JobPolicy, from its first sight (Unknown at first).
READY = "Ready"
DATABASE_CONNECTED = "DatabaseConnected"
CIRCUIT_OPEN = "CircuitOpen"
# Set only while the operator may not read nodes.
NODES_OBSERVED = "NodesObserved"
# Set at each scan where other policies may select the same jobs (ownership).
OVERLAPPING = "Overlapping"
# True while the policy's running jobs have no beat at all (workers without the middleware).
HEARTBEATS_MISSING = "HeartbeatsMissing"

# Reasons the issue names; other reasons are CamelCase words chosen where they are set.
INVALID_SPEC = "InvalidSpec"
SECRET_NOT_FOUND = "SecretNotFound"

CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def to_rfc3339(moment: datetime) -> str:
    """metav1.Time's wire form: UTC, whole seconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[datetime, PlainSerializer(to_rfc3339, return_type=str, when_used="json")]
"""A point in time serialized as Kubernetes does (RFC 3339, seconds)."""


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One aspect of the policy's state (metav1.Condition)."""

    type: Annotated[str, Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)] = Field(
        description="The aspect: Ready, DatabaseConnected or CircuitOpen."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        None, description="The .metadata.generation the condition was set for."
    )
    last_transition_time: Timestamp = Field(
        description="When the status last changed (not the reason or message)."
    )
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=REASON_PATTERN)] = Field(
        description="Why, as one CamelCase word, e.g. InvalidSpec."
    )
    message: Annotated[str, Field(max_length=32768)] = Field("", description="Details for humans.")


def set_condition(
    conditions: Sequence[Condition],
    *,
    type: str,
    status: ConditionStatus | str,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None,
) -> list[Condition]:
    """A new list with the condition set; others keep their order.

    lastTransitionTime moves only when the status changes, as the conventions ask, so clients
    can tell how long a policy has been (un)ready however often the message is refreshed.
    """
    new_status = ConditionStatus(status)
    previous = find_condition(conditions, type)
    transition = (
        previous.last_transition_time
        if previous is not None and previous.status == new_status
        else now.astimezone(UTC).replace(microsecond=0)
    )
    updated = Condition(
        type=type,
        status=new_status,
        observed_generation=observed_generation,
        last_transition_time=transition,
        reason=reason,
        message=message,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if condition.type == type else condition for condition in conditions]


def find_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    """The condition of that type, if set."""
    return next((condition for condition in conditions if condition.type == type), None)
