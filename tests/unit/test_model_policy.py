"""The JobPolicy spec: defaults, wire names, examples, and the mistakes it rejects."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from lifeguard.model.enums import Action, Backoff, HeartbeatStore, Mode
from lifeguard.model.policy import JobPolicy, JobPolicySpec
from lifeguard.model.validation import parse_spec, validate_spec
from policy_cases import EXAMPLES, INVALID_CASES, InvalidCase, minimal_spec, spec_with


def _names_field(problem: str, field: str) -> bool:
    """A problem names `field` by its path, or by its parent's path plus the field's name."""
    path, _, message = problem.partition(": ")
    leaf = field.rsplit(".", 1)[-1].split("[", 1)[0]
    return path == field or (field.startswith(path) and leaf in message)


def test_minimal_spec_takes_the_documented_defaults() -> None:
    spec = JobPolicySpec.model_validate(minimal_spec())

    assert spec.database.secret_ref.key == "url"
    assert spec.database.schema_ is None
    assert spec.heartbeat.store is HeartbeatStore.TABLE
    assert (spec.heartbeat.interval, spec.heartbeat.missed_beats) == ("10s", 3)
    assert spec.heartbeat.startup_grace == "60s"
    assert spec.heartbeat.progress_timeout is None
    assert spec.tiers == [] and spec.max_runtime is None
    assert spec.adaptive.model_dump() == {
        "enabled": False,
        "quantile": 0.99,
        "factor": 3.0,
        "min_samples": 20,
        "window": "168h",
    }
    assert spec.safety.mode is Mode.ENFORCE
    assert spec.safety.max_actions_per_minute == 60
    assert (spec.safety.circuit_breaker.stale_fraction, spec.safety.circuit_breaker.min_jobs) == (
        0.5,
        5,
    )
    assert spec.scan_interval == "5s"


DEFAULT_RULES = {
    # cause: (action, then, after, countAttempt, backoff)
    "infrastructure_death": (Action.RETRY, None, None, False, Backoff.IMMEDIATE),
    "resource_exhausted": (Action.RETRY, None, None, True, Backoff.IMMEDIATE),
    "application_crash": (Action.RETRY, None, None, True, Backoff.RIVER),
    "unresponsive": (Action.RESTART_POD, Action.RETRY, "2m", True, Backoff.RIVER),
    "stuck": (Action.CANCEL, Action.RESTART_POD, "2m", True, Backoff.RIVER),
    "overdue": (Action.CANCEL, Action.RETRY, "2m", True, Backoff.RIVER),
    "stale": (Action.RETRY, None, None, True, Backoff.RIVER),
}


@pytest.mark.parametrize("cause", DEFAULT_RULES)
def test_each_cause_has_its_default_action(cause: str) -> None:
    rule = getattr(JobPolicySpec.model_validate(minimal_spec()).actions, cause)

    assert (
        rule.action,
        rule.then,
        rule.after,
        rule.count_attempt,
        rule.backoff,
    ) == DEFAULT_RULES[cause]


def test_infrastructure_retries_are_bounded_by_default() -> None:
    spec = JobPolicySpec.model_validate(minimal_spec())

    assert spec.actions.infrastructure_death.max_infra_retries == 5


def test_a_partial_action_rule_fills_the_rest_from_field_defaults() -> None:
    spec = JobPolicySpec.model_validate(spec_with({"actions": {"stale": {"action": "Discard"}}}))

    assert spec.actions.stale.action is Action.DISCARD
    assert spec.actions.stale.count_attempt is True
    assert spec.actions.stuck.action is Action.CANCEL


def test_stale_after_is_interval_times_missed_beats_unless_set() -> None:
    beats = JobPolicySpec.model_validate(
        spec_with({"heartbeat": {"interval": "5s", "missedBeats": 4}})
    )
    explicit = JobPolicySpec.model_validate(
        spec_with({"heartbeat": {"interval": "5s", "missedBeats": 4, "staleAfter": "1m30s"}})
    )

    assert beats.stale_after_seconds() == 20.0
    assert explicit.stale_after_seconds() == 90.0


def test_wire_names_are_camel_case_and_survive_a_round_trip() -> None:
    raw = spec_with(
        {
            "database": {"secretRef": {"name": "db", "key": "dsn"}, "schema": "river"},
            "heartbeat": {
                "store": "Metadata",
                "metadataKey": "health_check_at",
                "staleAfter": "45s",
            },
            "tiers": [{"match": {"priorities": [1]}, "staleAfter": "20s", "maxRuntime": "5m"}],
            "safety": {"mode": "DryRun", "maxActionsPerMinute": 10},
        }
    )
    spec = JobPolicySpec.model_validate(raw)
    wire = spec.model_dump(mode="json", by_alias=True, exclude_none=True)

    assert wire["database"] == {"secretRef": {"name": "db", "key": "dsn"}, "schema": "river"}
    assert wire["heartbeat"]["metadataKey"] == "health_check_at"
    assert wire["safety"]["maxActionsPerMinute"] == 10
    assert wire["actions"]["infrastructureDeath"]["countAttempt"] is False
    assert JobPolicySpec.model_validate(wire) == spec


def test_python_names_are_accepted_too() -> None:
    spec = JobPolicySpec(
        database={"secret_ref": {"name": "db"}},  # type: ignore[arg-type]
        workers={"pod_selector": {"match_labels": {"app": "w"}}},  # type: ignore[arg-type]
    )

    assert spec.workers.pod_selector.match_labels == {"app": "w"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_parses_and_has_no_problems(path: Any) -> None:
    policy = JobPolicy.model_validate(yaml.safe_load(path.read_text()))

    assert validate_spec(policy.spec) == []


def test_the_four_documented_examples_exist() -> None:
    names = {path.name for path in EXAMPLES.glob("*.yaml")}

    assert names == {"minimal.yaml", "tiered.yaml", "metadata-store.yaml", "dry-run.yaml"}


def test_metadata_example_reads_existing_health_check_tickers() -> None:
    policy = JobPolicy.model_validate(
        yaml.safe_load((EXAMPLES / "metadata-store.yaml").read_text())
    )

    assert policy.spec.heartbeat.store is HeartbeatStore.METADATA
    assert policy.spec.heartbeat.metadata_key == "health_check_at"


def test_there_are_at_least_twelve_invalid_cases() -> None:
    assert len(INVALID_CASES) >= 12


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda case: case.name)
def test_invalid_spec_is_rejected_naming_the_field(case: InvalidCase) -> None:
    spec, problems = parse_spec(case.spec())

    assert problems, f"{case.name} was accepted"
    assert any(_names_field(problem, case.field) for problem in problems), problems
    if not case.apiserver:
        assert spec is not None, "validate_spec, not pydantic, is what catches this one"


def test_a_tier_shadowed_by_an_earlier_tier_is_a_problem() -> None:
    spec = JobPolicySpec.model_validate(
        spec_with(
            {
                "tiers": [
                    {"match": {"queues": ["default"]}, "staleAfter": "1m"},
                    {"match": {"queues": ["default"], "priorities": [1]}, "staleAfter": "20s"},
                ]
            }
        )
    )

    assert validate_spec(spec) == [
        "spec.tiers[1].match: never used, tiers[0] matches every job it matches"
        " (the first matching tier wins)"
    ]


def test_problems_of_a_parsed_spec_name_camel_case_paths() -> None:
    _, problems = parse_spec(spec_with({"safety": {"maxActionsPerMinute": 0}}))

    assert problems == [
        "spec.safety.maxActionsPerMinute: Input should be greater than or equal to 1"
    ]


def test_a_policy_without_beats_may_set_a_max_runtime_shorter_than_the_stale_threshold() -> None:
    spec = JobPolicySpec.model_validate(
        spec_with(
            {
                "heartbeat": {"store": "None"},
                "maxRuntime": "10s",
                "tiers": [{"match": {"queues": ["batch"]}, "maxRuntime": "5s"}],
            }
        )
    )

    assert spec.heartbeat.store is HeartbeatStore.NONE
    assert not spec.heartbeat.beats
    assert validate_spec(spec) == []


def test_the_worker_container_is_unset_by_default_and_read_from_the_wire() -> None:
    assert JobPolicySpec.model_validate(minimal_spec()).workers.container is None
    named = JobPolicySpec.model_validate(spec_with({"workers": {"container": "worker"}}))

    assert named.workers.container == "worker"
