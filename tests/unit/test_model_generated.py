"""The committed CRD and reference are what the models generate (`make crds` updates them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lifeguard.model import actions, base, heartbeat, limits, policy, selectors
from lifeguard.model.crd import crd_manifest, render
from lifeguard.model.reference import update_document
from lifeguard.model.rules import Rule

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "lifeguard.dev_jobpolicies.yaml"
DOC = ROOT / "docs" / "jobpolicy.md"


def test_committed_crd_matches_a_fresh_generation() -> None:
    assert CRD.read_text() == render(), "run `make crds` and commit the result"


def test_committed_reference_matches_a_fresh_generation() -> None:
    text = DOC.read_text()

    assert text == update_document(text), "run `make crds` and commit the result"


def _walk(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for key, child in node.get("properties", {}).items():
        found += _walk(child, f"{path}.{key}")
    if "items" in node:
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


def _version() -> dict[str, Any]:
    version: dict[str, Any] = crd_manifest()["spec"]["versions"][0]
    return version


def test_schema_is_structural_every_node_has_a_type_and_no_json_schema_leftovers() -> None:
    schema = _version()["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema, ""):
        assert "type" in node, path
        assert not {"$ref", "anyOf", "title", "const", "$defs"} & node.keys(), path


def test_every_spec_field_is_described_for_kubectl_explain() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    undescribed = [path for path, node in _walk(spec, "spec") if not node.get("description")]

    assert [p for p in undescribed if not p.endswith(("[]", "{}"))] == []


def test_lists_in_cel_rules_are_bounded_so_the_apiserver_can_cost_them() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for path, node in _walk(spec, "spec"):
        if node["type"] == "array":
            assert "maxItems" in node, path
        if node["type"] == "string" and "enum" not in node:
            assert "maxLength" in node, path


def test_printer_columns_and_status_subresource() -> None:
    version = _version()

    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Mode",
        "Running",
        "Healthy",
        "Stuck",
        "Rescued",
        "Ready",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}


def test_names_short_name_and_category() -> None:
    spec = yaml.safe_load(CRD.read_text())["spec"]

    assert spec["group"] == "lifeguard.dev" and spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == "jobpolicies"
    assert spec["names"]["shortNames"] == ["jp"]
    assert spec["names"]["categories"] == ["lifeguard"]


def _rules_of_the_model() -> list[Rule[Any]]:
    """Every Rule the model modules define, alone or in a tuple of rules."""
    found: list[Rule[Any]] = []
    for module in (actions, base, heartbeat, limits, policy, selectors):
        for value in vars(module).values():
            values = value if isinstance(value, tuple) else (value,)
            found += [rule for rule in values if isinstance(rule, Rule) and rule not in found]
    return found


def test_every_cel_rule_of_the_crd_is_a_rule_with_a_python_twin() -> None:
    schema = _version()["schema"]["openAPIV3Schema"]
    in_crd = {
        (entry["rule"], entry["message"])
        for _, node in _walk(schema, "")
        for entry in node.get("x-kubernetes-validations", [])
    }
    written_once = {(rule.cel, rule.message) for rule in _rules_of_the_model()}

    assert in_crd == written_once


def test_a_broken_rule_reports_its_cel_message_from_python() -> None:
    bad = {"action": "Cancel", "then": "Retry"}
    with pytest.raises(ValueError, match="after is required when then is set"):
        actions.ActionRule.model_validate(bad)
