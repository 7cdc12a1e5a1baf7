"""Spec problems the apiserver cannot catch, and spec parsing that reports instead of raising.

The CRD's schema and CEL rules reject most mistakes at `kubectl apply`. What CEL cannot judge (a
pattern that Python's `re` cannot compile, a missing `pod` group, a tier that can never match)
is reported by the operator as Ready=False, reason InvalidSpec, with these messages.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from lifeguard.model.client_id import POD_GROUP
from lifeguard.model.limits import Tier
from lifeguard.model.policy import JobPolicySpec


def validate_spec(spec: JobPolicySpec) -> list[str]:
    """Problems of a parsed spec, each naming the field (empty when the spec is usable)."""
    return [*_client_id_pattern_problems(spec.workers.client_id_pattern), *_tier_problems(spec)]


def _client_id_pattern_problems(pattern: str) -> list[str]:
    field = "spec.workers.clientIdPattern"
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        return [f"{field}: not a valid regular expression: {error}"]
    if POD_GROUP not in compiled.groupindex:
        return [f"{field}: needs a named group (?P<pod>...) that captures the pod name"]
    return []


def _covers(wide: Sequence[Any] | None, narrow: Sequence[Any] | None) -> bool:
    """Whether every value `narrow` admits is admitted by `wide` (None admits everything)."""
    return wide is None or (narrow is not None and set(narrow) <= set(wide))


def _shadows(earlier: Tier, later: Tier) -> bool:
    a, b = earlier.match, later.match
    return (
        _covers(a.queues, b.queues)
        and _covers(a.kinds, b.kinds)
        and _covers(a.priorities, b.priorities)
    )


def _tier_problems(spec: JobPolicySpec) -> list[str]:
    problems = []
    for index, tier in enumerate(spec.tiers):
        shadow = next((i for i in range(index) if _shadows(spec.tiers[i], tier)), None)
        if shadow is not None:
            problems.append(
                f"spec.tiers[{index}].match: never used, tiers[{shadow}] matches every job"
                " it matches (the first matching tier wins)"
            )
    return problems


def _field_path(location: Sequence[int | str]) -> str:
    path = "spec"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_spec(raw: Mapping[str, Any]) -> tuple[JobPolicySpec | None, list[str]]:
    """The spec and its problems; (None, problems) when pydantic rejects it.

    Messages read "spec.heartbeat.staleAfter: ...", so they can go into a condition as they are.
    """
    try:
        spec = JobPolicySpec.model_validate(raw)
    except ValidationError as error:
        return None, [
            f"{_field_path(detail['loc'])}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        ]
    return spec, validate_spec(spec)
