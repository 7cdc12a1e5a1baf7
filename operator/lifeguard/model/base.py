"""The pydantic base of every JobPolicy type: camelCase on the wire, snake_case in Python."""

from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from lifeguard.model.duration import DURATION_PATTERN, parse_duration
from lifeguard.model.rules import Rule, checker, crd_rules

# Bounds the apiserver needs to estimate the cost of CEL rules; generous for real policies.
DURATION_MAX_LENGTH = 32


class ApiModel(BaseModel):
    """Spec types: unknown fields are errors, so a typo never silently means "default"."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
        validate_default=True,
    )


class StatusModel(BaseModel):
    """Status types: written by the operator itself; mutable so the supervisor can build them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# Given the pattern, a non-zero digit means a positive duration; unlike duration(), this
# cannot fail on a string the pattern already rejected (one message, not two).
POSITIVE_DURATION: Rule[str] = Rule(
    "self.matches('[1-9]')", "must be a positive duration", lambda text: parse_duration(text) > 0
)

Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        max_length=DURATION_MAX_LENGTH,
        json_schema_extra=crd_rules(POSITIVE_DURATION),
    ),
    AfterValidator(checker(POSITIVE_DURATION)),
]
"""A Kubernetes-style duration ("90s", "10m", "1h30m"); CEL's duration() accepts each of them."""


T = TypeVar("T")


def no_duplicates(values: list[T]) -> list[T]:
    """Lists of alternatives are sets in the CRD (x-kubernetes-list-type: set); mirror that."""
    seen: list[T] = []
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate value {value!r}")
        seen.append(value)
    return values


SET = {"x-kubernetes-list-type": "set"}
