"""What `lifeguard explain` shows of production shapes: the worker container and the notes."""

from builders import JobBuilder, owner_job, pod, running_job

from lifeguard.cli.explain_report import Row, notes_text, rows, table
from lifeguard.verdict import decide


def row_of(job_builder: JobBuilder) -> Row:
    obs = job_builder.obs()
    [row] = rows([(obs, decide(obs))], None)
    return row


def test_a_row_names_the_worker_container_and_the_sidecars_story() -> None:
    row = row_of(running_job().on(pod().with_sidecar("cloud-sql-proxy").sidecar_restarted(2)))

    assert row.container == "worker"
    assert row.notes == ("sidecar cloud-sql-proxy restarted 2 times, last exited with code 1",)
    assert "CONTAINER" in table([row]) and " worker " in table([row])
    assert notes_text([row]) == (
        "Notes:\njob 1: sidecar cloud-sql-proxy restarted 2 times, last exited with code 1"
    )


def test_the_policys_worker_container_is_shown() -> None:
    assert row_of(running_job().worker_is("app").on(pod())).container == "app"


def test_a_jobs_pod_says_an_eviction_counts_against_its_backoff_limit() -> None:
    row = row_of(running_job().on(pod("mailer-x7k2p")).owned_by(owner_job("mailer")))

    [note] = row.notes
    assert "Job mailer" in note and "backoffLimit (6)" in note and "DisruptionTarget" in note


def test_a_job_that_ignores_disruptions_needs_no_warning() -> None:
    row = row_of(
        running_job().on(pod("mailer-x7k2p")).owned_by(owner_job("mailer").ignores_disruptions())
    )
    assert row.notes == ()
    assert notes_text([row]) == ""
