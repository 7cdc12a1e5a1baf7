"""Generates the JobPolicy CustomResourceDefinition from the pydantic models.

    python -m lifeguard.model.crd > crds/lifeguard.dev_jobpolicies.yaml   (make crds)

pydantic emits JSON Schema 2020-12; the apiserver wants a structural OpenAPI v3 schema. So refs
are inlined, `Optional` (anyOf with null) collapses to its type, nulls leave defaults, titles
go, and numeric exclusive bounds become OpenAPI 3.0's boolean form.
"""

import sys
from typing import Any

import yaml

from lifeguard.model import policy
from lifeguard.model.conditions import READY
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.status import JobPolicyStatus

# Keywords a structural schema may carry; anything else pydantic emits is dropped.
_KEPT = {
    "type",
    "format",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "maxProperties",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}

PRINTER_COLUMNS = [
    {"name": "Mode", "type": "string", "jsonPath": ".spec.safety.mode"},
    {"name": "Running", "type": "integer", "jsonPath": ".status.jobs.running"},
    {"name": "Healthy", "type": "integer", "jsonPath": ".status.jobs.healthy"},
    {"name": "Stuck", "type": "integer", "jsonPath": ".status.jobs.stuck"},
    {"name": "Rescued", "type": "integer", "jsonPath": ".status.totals.rescued"},
    {
        "name": READY,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{READY}")].status',
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One pydantic schema node as a structural OpenAPI v3 node."""
    merged = dict(node)
    if "$ref" in merged:
        target = defs[merged.pop("$ref").rsplit("/", 1)[-1]]
        merged = _merge(target, merged)
    if "anyOf" in merged:
        variants = [v for v in merged.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"only Optional unions are supported, got {variants}")
        merged = _merge(_structural(variants[0], defs), merged)
        return _structural(merged, defs)

    out: dict[str, Any] = {}
    for key, value in merged.items():
        if key not in _KEPT:
            continue
        if key == "properties":
            out[key] = {name: _structural(child, defs) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value, defs)
        elif key == "additionalProperties":
            continue  # `false`: the apiserver prunes and, with strict field validation, rejects
        elif key == "default":
            if value is None:
                continue
            out[key] = _without_nulls(value)
        else:
            out[key] = value
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in out and not isinstance(out[bound], bool):
            out["minimum" if bound == "exclusiveMinimum" else "maximum"] = out[bound]
            out[bound] = True
    if "properties" in out:
        out["type"] = "object"
    return _ordered(out)


# Reading order for humans: what it is, what it holds, then its constraints.
_ORDER = ["description", "type", "format", "enum", "default"]


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    first = [key for key in _ORDER if key in node]
    rest = sorted(key for key in node if key not in _ORDER)
    return {key: node[key] for key in [*first, *rest]}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A referenced or unioned schema with the referring field's own keywords on top."""
    merged = {**base, **override}
    rules = [
        *base.get("x-kubernetes-validations", []),
        *override.get("x-kubernetes-validations", []),
    ]
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def model_schema(model: type[JobPolicySpec] | type[JobPolicyStatus]) -> dict[str, Any]:
    """The structural schema of a spec or status model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def crd_manifest() -> dict[str, Any]:
    """The CustomResourceDefinition as a plain dict."""
    spec = model_schema(JobPolicySpec)
    status = model_schema(JobPolicyStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{policy.PLURAL}.{policy.GROUP}"},
        "spec": {
            "group": policy.GROUP,
            "names": {
                "kind": policy.KIND,
                "listKind": f"{policy.KIND}List",
                "plural": policy.PLURAL,
                "singular": policy.SINGULAR,
                "shortNames": list(policy.SHORT_NAMES),
                "categories": list(policy.CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": policy.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (
                                "JobPolicy tells River Lifeguard which running River jobs to"
                                " watch, how their workers beat, when a job counts as stale,"
                                " stuck or overdue, and what to do about each cause."
                            ),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


HEADER = (
    "# Generated by `make crds` (python -m lifeguard.model.crd) from lifeguard.model.\n"
    "# Do not edit by hand: change the pydantic models and regenerate.\n"
)


def render() -> str:
    """The committed YAML text of the CRD."""
    body = yaml.safe_dump(crd_manifest(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
