"""Generates the field reference of docs/jobpolicy.md from the same schema as the CRD.

    python -m lifeguard.model.reference docs/jobpolicy.md   (make crds)

Only the text between the two markers is rewritten; the rest of the page is prose.
"""

import json
import sys
from pathlib import Path
from typing import Any

from lifeguard.model.crd import model_schema
from lifeguard.model.duration import DURATION_PATTERN
from lifeguard.model.policy import JobPolicySpec
from lifeguard.model.status import JobPolicyStatus

BEGIN = "<!-- BEGIN GENERATED REFERENCE (make crds) -->"
END = "<!-- END GENERATED REFERENCE -->"


def _type_of(node: dict[str, Any]) -> str:
    kind = node.get("type", "object")
    if "enum" in node:
        return " \\| ".join(f"`{value}`" for value in node["enum"])
    if kind == "string" and node.get("pattern") == DURATION_PATTERN:
        return "duration"
    if kind == "string" and node.get("format") == "date-time":
        return "time"
    if kind == "array":
        return f"[]{_type_of(node['items'])}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type_of(node['additionalProperties'])}"
    return str(kind)


def _bounds(node: dict[str, Any]) -> list[str]:
    notes = []
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None or high is not None:
        low_sign = ">" if node.get("exclusiveMinimum") else ">="
        high_sign = "<" if node.get("exclusiveMaximum") else "<="
        parts = [
            f"{low_sign} {low}" if low is not None else "",
            f"{high_sign} {high}" if high is not None else "",
        ]
        notes.append(" and ".join(part for part in parts if part))
    if "maxItems" in node:
        notes.append(f"at most {node['maxItems']} items")
    for rule in node.get("x-kubernetes-validations", []):
        if rule["message"] != "must be a positive duration":
            notes.append(rule["message"])
    return notes


def _default(node: dict[str, Any]) -> str:
    if node.get("default") is None:
        return ""
    if node.get("type") == "object":
        # Shown only where it differs from what the fields' own defaults give (actions.*).
        from_fields = {
            key: sub["default"]
            for key, sub in node.get("properties", {}).items()
            if "default" in sub and sub.get("type") != "object"
        }
        flat = {k: v for k, v in node["default"].items() if not isinstance(v, dict)}
        return "" if flat == from_fields else f"`{json.dumps(flat)}`"
    return (
        f"`{json.dumps(node['default'])}`"
        if not isinstance(node["default"], str)
        else f"`{node['default']}`"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(node: dict[str, Any], path: str, required: bool) -> list[str]:
    notes = _bounds(node)
    sentences = [node.get("description", ""), *(f"{n[0].upper()}{n[1:]}." for n in notes)]
    description = _cell(" ".join(sentences).strip())
    name = f"`{path}`" + (" (required)" if required else "")
    rows = [f"| {name} | {_type_of(node)} | {_cell(_default(node))} | {description} |"]
    child = node["items"] if node.get("type") == "array" else node
    child_path = f"{path}[]" if node.get("type") == "array" else path
    needed = set(child.get("required", []))
    properties = child.get("properties", {})
    shapes = [sub.get("properties") for sub in properties.values()]
    if len(shapes) > 1 and shapes[0] and all(shape == shapes[0] for shape in shapes):
        # Siblings of one type (the rules under actions): their fields are listed once.
        for key, sub in properties.items():
            own = {**sub, "properties": {}, "x-kubernetes-validations": []}
            rows += _rows(own, f"{child_path}.{key}", key in needed)
        shared = next(iter(properties.values()))
        each = {**shared, "description": "Each of the above:", "default": None}
        return rows + _rows(each, f"{child_path}.*", False)
    for key, sub in properties.items():
        rows += _rows(sub, f"{child_path}.{key}", key in needed)
    return rows


def render_reference() -> str:
    """The generated Markdown: one table for spec, one for status."""
    header = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    spec = model_schema(JobPolicySpec)
    status = model_schema(JobPolicyStatus)
    return "\n".join(
        [
            "### spec",
            "",
            *header,
            *[
                row
                for key, sub in spec["properties"].items()
                for row in _rows(sub, f"spec.{key}", key in spec.get("required", []))
            ],
            "",
            "### status",
            "",
            *header,
            *[
                row
                for key, sub in status["properties"].items()
                for row in _rows(sub, f"status.{key}", False)
            ],
        ]
    )


def update_document(text: str) -> str:
    """The page with its generated section replaced by a fresh one."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{render_reference()}\n{text[end:]}"


def main() -> None:
    page = Path(sys.argv[1])
    page.write_text(update_document(page.read_text()))


if __name__ == "__main__":
    main()
