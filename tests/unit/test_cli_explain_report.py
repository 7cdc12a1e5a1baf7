"""What `lifeguard explain` prints, from the effects of one reconcile (no cluster needed)."""

from __future__ import annotations

import yaml
from builders import pod, policy_spec, running_job, snapshot
from test_reconcile import cycle

from lifeguard.cli.explain_report import effects_text, not_judged_text, report, rows, table
from lifeguard.model.ownership import PolicyFacts
from lifeguard.model.selectors import JobSelector

HEALTHY = running_job(job_id=2).on(pod("w-2"))
FROZEN = running_job(job_id=1).on(pod("w-1")).beat_age(600)
DEAD = running_job(job_id=3).on(pod("w-3").oom_killed())


def test_rows_give_each_job_its_verdict_and_next_action() -> None:
    _, effects = cycle(snapshot(FROZEN, HEALTHY, DEAD))
    found = {row.job_id: row for row in rows(effects.judged, effects.plan)}
    assert (found[1].cause, found[1].next_action) == ("Unresponsive", "RestartPod")
    assert (found[2].cause, found[2].next_action) == ("Healthy", "-")
    assert (found[3].cause, found[3].next_action) == ("ResourceExhausted", "Retry")
    lines = table(list(found.values())).splitlines()
    assert lines[0].split() == [
        "JOB", "KIND", "ATTEMPT", "POD", "CONTAINER", "NODE", "RUNNING", "BEAT", "PROGRESS",
        "VERDICT", "NEXT",
    ]  # fmt: skip
    assert any(line.startswith("1 ") and "Unresponsive/" in line for line in lines)


def test_the_writes_name_their_fences_and_the_events_their_objects() -> None:
    _, effects = cycle(snapshot(FROZEN))
    text = effects_text(effects)
    assert "Writes (each fenced):" in text
    assert "pod w-1 uid uid-w-1" in text
    assert "PodRestarted" in text and "Pod/w-1" in text and "JobPolicy" in text


def test_json_and_yaml_carry_jobs_actions_held_events_and_conditions() -> None:
    spec = policy_spec(safety={"mode": "DryRun"})
    _, effects = cycle(snapshot(FROZEN, HEALTHY), spec=spec)
    answer = report(effects)
    assert set(answer) == {
        "jobs", "actions", "deferred", "held", "events", "conditions", "notJudged",
    }  # fmt: skip
    [action] = answer["actions"]
    assert action["action"] == "RestartPod" and action["dryRun"] is True
    assert action["podUid"] == "uid-w-1"
    assert [e["reason"] for e in answer["events"]].count("DryRunPodRestarted") == 1
    assert {c["type"] for c in answer["conditions"]} >= {"Ready", "DatabaseConnected"}
    assert yaml.safe_load(yaml.safe_dump(answer)) == answer


def test_a_held_job_says_why_in_its_next_action() -> None:
    spec = policy_spec(safety={"circuitBreaker": {"staleFraction": 0.5, "minJobs": 2}})
    silent = [running_job(job_id=n).on(pod(f"w-{n}")).beat_age(600) for n in (1, 2)]
    _, effects = cycle(snapshot(*silent), spec=spec)
    found = rows(effects.judged, effects.plan)
    assert all(row.next_action.startswith("RestartPod (held: ") for row in found)
    assert {h["jobId"] for h in report(effects)["held"]} == {1, 2}


def test_jobs_another_namespaces_policy_judges_are_listed_with_why_and_by_whom() -> None:
    mine = PolicyFacts("jobs", "rescue", None, JobSelector(), database="db")
    theirs = PolicyFacts("team-b", "rescue", None, JobSelector(), database="db")
    elsewhere = running_job(job_id=4).on(pod("b-1").in_namespace("team-b"))
    _, effects = cycle(snapshot(HEALTHY, elsewhere).among(mine, theirs))

    [entry] = report(effects)["notJudged"]
    assert (entry["jobId"], entry["why"], entry["judgedBy"]) == (
        4,
        "OtherNamespace",
        "team-b/rescue",
    )
    text = not_judged_text(effects)
    assert text.startswith("Not judged by this policy (1 running jobs it selects):")
    assert "team-b/rescue" in text
    assert [row.job_id for row in rows(effects.judged, effects.plan)] == [2]
