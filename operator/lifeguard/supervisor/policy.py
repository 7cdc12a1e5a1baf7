"""Which policy a supervisor serves, and its spec parsed the way the operator must use it."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lifeguard.cluster.kube import ObjectRef
from lifeguard.model.policy import API_VERSION, KIND, JobPolicySpec
from lifeguard.model.validation import parse_spec as parse_and_validate


@dataclass(frozen=True, slots=True)
class PolicyRef:
    namespace: str
    name: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def object_ref(self) -> ObjectRef:
        return ObjectRef(API_VERSION, KIND, self.namespace, self.name, self.uid)


class SpecError(Exception):
    """The spec cannot be used; the message names the field."""


def parse_spec(raw: Mapping[str, Any]) -> JobPolicySpec:
    """The spec, or SpecError naming each offending field (what the CRD's rules cannot catch)."""
    spec, problems = parse_and_validate(raw)
    if spec is None or problems:
        raise SpecError("; ".join(problems))
    return spec
