"""Which jobs a policy covers, which pods run them, and which jobs a tier covers."""

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from lifeguard.model.base import SET, ApiModel, no_duplicates
from lifeguard.model.rules import Rule, check, crd_rules

# River's own limits: queue and kind are text columns checked to < 128 characters; tags are at
# most 255 characters (river insert_opts.go). Priorities are 1 (highest) to 4.
QueueName = Annotated[str, Field(min_length=1, max_length=128)]
KindName = Annotated[str, Field(min_length=1, max_length=128)]
TagName = Annotated[str, Field(min_length=1, max_length=255)]
Priority = Annotated[int, Field(ge=1, le=4)]

MAX_NAMES = 100

Queues = Annotated[
    list[QueueName],
    AfterValidator(no_duplicates),
    Field(min_length=1, max_length=MAX_NAMES, json_schema_extra=SET),
]
Kinds = Annotated[
    list[KindName],
    AfterValidator(no_duplicates),
    Field(min_length=1, max_length=MAX_NAMES, json_schema_extra=SET),
]
Tags = Annotated[
    list[TagName],
    AfterValidator(no_duplicates),
    Field(min_length=1, max_length=MAX_NAMES, json_schema_extra=SET),
]
Priorities = Annotated[
    list[Priority],
    AfterValidator(no_duplicates),
    Field(min_length=1, max_length=4, json_schema_extra=SET),
]


def _any_of(values: Sequence[object] | None, value: object) -> bool:
    return values is None or value in values


class JobSelector(ApiModel):
    """Which running River jobs the policy watches."""

    queues: Queues | None = Field(
        None, description="Queue names; a job in any of them matches. Unset: every queue."
    )
    kinds: Kinds | None = Field(
        None,
        description="Job kinds (River's Kind()); a job of any of them matches. Unset: every kind.",
    )
    priorities: Priorities | None = Field(
        None, description="River priorities, 1 (highest) to 4; any of them matches. Unset: all."
    )
    tags: Tags | None = Field(
        None,
        description="River job tags; a job carrying any of them matches. Unset: any tags.",
    )

    def matches(self, queue: str, kind: str, priority: int, tags: Sequence[str] = ()) -> bool:
        """Values within a list are alternatives; the lists that are set must all match."""
        tags_match = self.tags is None or any(tag in self.tags for tag in tags)
        return (
            _any_of(self.queues, queue)
            and _any_of(self.kinds, kind)
            and _any_of(self.priorities, priority)
            and tags_match
        )


class TierMatch(ApiModel):
    """Which jobs a tier applies to; at least one list must be set."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(crd_rules(*_MATCH_RULES))
    )

    queues: Queues | None = Field(None, description="Queue names; any of them matches.")
    kinds: Kinds | None = Field(None, description="Job kinds; any of them matches.")
    priorities: Priorities | None = Field(
        None, description="River priorities, 1 (highest) to 4; any of them matches."
    )

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        return check(self, _MATCH_RULES)

    def matches(self, queue: str, kind: str, priority: int) -> bool:
        """Every list that is set must contain the job's value."""
        return (
            _any_of(self.queues, queue)
            and _any_of(self.kinds, kind)
            and _any_of(self.priorities, priority)
        )


_MATCH_RULES: tuple[Rule[TierMatch], ...] = (
    Rule(
        "has(self.queues) || has(self.kinds) || has(self.priorities)",
        "match must name at least one of queues, kinds or priorities",
        lambda match: any(v is not None for v in (match.queues, match.kinds, match.priorities)),
    ),
)


class SelectorOperator(StrEnum):
    """The operators of a Kubernetes label selector requirement."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


LabelKey = Annotated[str, Field(min_length=1, max_length=317)]
LabelValue = Annotated[str, Field(max_length=63)]


class LabelSelectorRequirement(ApiModel):
    """One requirement of a label selector, as in Kubernetes' metav1.LabelSelectorRequirement."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(crd_rules(*_REQUIREMENT_RULES))
    )

    key: LabelKey = Field(description="The label key the requirement applies to.")
    operator: SelectorOperator = Field(description="How the key relates to the values.")
    values: Annotated[list[LabelValue], Field(max_length=64)] = Field(
        default_factory=list,
        description="Label values; non-empty for In and NotIn, empty for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        return check(self, _REQUIREMENT_RULES)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: NotIn and DoesNotExist match pods without the label."""
        present = self.key in labels
        match self.operator:
            case SelectorOperator.IN:
                return present and labels[self.key] in self.values
            case SelectorOperator.NOT_IN:
                return not present or labels[self.key] not in self.values
            case SelectorOperator.EXISTS:
                return present
            case SelectorOperator.DOES_NOT_EXIST:
                return not present

    def to_query(self) -> str:
        match self.operator:
            case SelectorOperator.IN | SelectorOperator.NOT_IN:
                verb = "in" if self.operator is SelectorOperator.IN else "notin"
                return f"{self.key} {verb} ({','.join(self.values)})"
            case SelectorOperator.EXISTS:
                return self.key
            case SelectorOperator.DOES_NOT_EXIST:
                return f"!{self.key}"


def _values_fit_operator(requirement: LabelSelectorRequirement) -> bool:
    wants_values = requirement.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
    return wants_values == bool(requirement.values)


_REQUIREMENT_RULES: tuple[Rule[LabelSelectorRequirement], ...] = (
    Rule(
        "self.operator in ['In', 'NotIn']"
        " ? (has(self.values) && size(self.values) > 0)"
        " : (!has(self.values) || size(self.values) == 0)",
        "values must be non-empty for In and NotIn and empty for Exists and DoesNotExist",
        _values_fit_operator,
        ".values",
    ),
)


class LabelSelector(ApiModel):
    """A Kubernetes label selector; must not be empty (that would select every pod)."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(crd_rules(*_SELECTOR_RULES))
    )

    match_labels: dict[LabelKey, LabelValue] | None = Field(
        None,
        description="Labels a pod must carry, with these exact values.",
        json_schema_extra={"maxProperties": 64},
    )
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=32)] | None = (
        Field(None, description="Requirements a pod's labels must all meet.")
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        return check(self, _SELECTOR_RULES)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod with these labels is selected."""
        labels_match = all(
            labels.get(key) == value for key, value in (self.match_labels or {}).items()
        )
        return labels_match and all(req.matches(labels) for req in self.match_expressions or [])

    def to_query(self) -> str:
        """The selector as the `labelSelector` query parameter of a list or watch call."""
        parts = [f"{key}={value}" for key, value in (self.match_labels or {}).items()]
        parts += [req.to_query() for req in self.match_expressions or []]
        return ",".join(parts)


_SELECTOR_RULES: tuple[Rule[LabelSelector], ...] = (
    Rule(
        "(has(self.matchLabels) && size(self.matchLabels) > 0)"
        " || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
        "podSelector must set matchLabels or matchExpressions:"
        " an empty selector would select every pod in the namespace",
        lambda selector: bool(selector.match_labels) or bool(selector.match_expressions),
    ),
)
