"""Selectors: which jobs a policy or tier covers, and which pods run them."""

from __future__ import annotations

import pytest

from lifeguard.model.selectors import JobSelector, LabelSelector

SELECTOR = JobSelector(queues=["default", "batch"], priorities=[1, 2], tags=["billing"])


@pytest.mark.parametrize(
    ("queue", "kind", "priority", "tags", "selected"),
    [
        ("default", "email", 1, ["billing"], True),
        ("batch", "email", 2, ["x", "billing"], True),
        ("other", "email", 1, ["billing"], False),
        ("default", "email", 3, ["billing"], False),
        ("default", "email", 1, [], False),
    ],
)
def test_lists_combine_with_and_values_within_a_list_are_alternatives(
    queue: str, kind: str, priority: int, tags: list[str], selected: bool
) -> None:
    assert SELECTOR.matches(queue, kind, priority, tags) is selected


def test_empty_job_selector_covers_every_job() -> None:
    assert JobSelector().matches("any", "kind", 4)


LABELS = LabelSelector.model_validate(
    {
        "matchLabels": {"app": "worker"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["batch", "web"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
)


@pytest.mark.parametrize(
    ("labels", "selected"),
    [
        ({"app": "worker", "tier": "batch"}, True),
        ({"app": "worker", "tier": "db"}, False),
        ({"app": "worker", "tier": "web", "canary": "yes"}, False),
        ({"app": "api", "tier": "web"}, False),
    ],
)
def test_label_selector_follows_kubernetes_semantics(
    labels: dict[str, str], selected: bool
) -> None:
    assert LABELS.matches(labels) is selected


def test_label_selector_renders_as_a_list_query() -> None:
    assert LABELS.to_query() == "app=worker,tier in (batch,web),!canary"


def test_exists_takes_no_values() -> None:
    with pytest.raises(ValueError, match="values must be non-empty for In"):
        LabelSelector.model_validate(
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}
        )
