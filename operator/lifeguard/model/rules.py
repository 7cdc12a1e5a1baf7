"""Validation rules written once: each is a CEL rule for the CRD and its Python twin.

A rule holds a CEL expression (the apiserver rejects a bad spec at `kubectl apply`), the message
both sides report, and the Python check the operator (and `lifeguard explain`) runs on the same
spec. `crd_rules` puts the CEL side into the generated CRD; `check` runs the Python side in a
pydantic validator. tests/policy_cases.py proves on a real apiserver that both reject the same
specs, naming the same field.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
# A rule on a model also holds for its subclasses (and for Self inside a validator).
Checked_contra = TypeVar("Checked_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class Rule(Generic[Checked_contra]):
    """A rule on a value of type T (a model, or a field's value)."""

    cel: str
    message: str
    holds: Callable[[Checked_contra], bool]
    # Points the apiserver's error at a child field (".after"); the model's own path if None.
    field_path: str | None = None

    def entry(self) -> dict[str, str]:
        """The rule's `x-kubernetes-validations` entry."""
        entry = {"rule": self.cel, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        return entry


def crd_rules(*rules: Rule[Any]) -> dict[str, Any]:
    """The json_schema_extra that carries the rules' CEL side into the generated CRD."""
    return {"x-kubernetes-validations": [rule.entry() for rule in rules]}


def check(value: T, rules: Sequence[Rule[T]]) -> T:
    """The value, or ValueError with the message of the first rule it breaks."""
    for rule in rules:
        if not rule.holds(value):
            raise ValueError(rule.message)
    return value


def checker(*rules: Rule[T]) -> Callable[[T], T]:
    """A pydantic AfterValidator function for a field's rules."""
    return lambda value: check(value, rules)
