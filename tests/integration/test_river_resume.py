"""A retry, discard or cancel copies the attempt's last progress into `lifeguard:resume`, in the
same statement, so the next attempt resumes: Lifeguard's retry, or a user's River JobRetry."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from psycopg import sql

from devenv import river_jobs as rj
from devenv.retrying import retry_one
from devenv.river import RiverDatabase as RiverDatabaseFactory
from lifeguard.model.enums import Backoff, HeartbeatStore
from lifeguard.river import (
    RESUME_KEY,
    Applied,
    CancelRequest,
    DiscardRequest,
    HeartbeatLocation,
    RetryRequest,
    RiverDatabase,
    cancel_many,
    discard_many,
    heartbeat_table_ddl,
    lifeguard_error,
    retry_many,
)

pytestmark = pytest.mark.integration

ODD_SCHEMA = 'Lifeguard "Resumes" ü'
RFC3339_NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")
REASON = lifeguard_error("InfrastructureDeath", "NodeLost", "pod worker-7f on node n2")
TABLE = HeartbeatLocation()
METADATA = HeartbeatLocation(HeartbeatStore.METADATA, "health_check_at")


@pytest.fixture(scope="module", params=[None, ODD_SCHEMA], ids=["search-path", "odd-schema"])
def river(
    request: pytest.FixtureRequest, river_database: RiverDatabaseFactory
) -> tuple[str, str | None]:
    schema: str | None = request.param
    dsn = rj.river_database_in(river_database, schema)
    with rj.connect(dsn) as conn:
        conn.execute(heartbeat_table_ddl(schema))
    return dsn, schema


def running_job(conn: rj.Conn, schema: str | None, **insert: object) -> tuple[int, datetime]:
    """A job whose attempt started a minute ago (in the DB's clock), so progress can be older."""
    job_id, _ = rj.start_job(conn, schema, **insert)
    return job_id, rj.age_attempt(conn, schema, job_id, 60.0)


def go_time(text: str) -> datetime:
    assert RFC3339_NANO_UTC.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def progress_in_metadata(
    conn: rj.Conn, schema: str | None, job_id: int, progress: object, ago: float
) -> None:
    """The Go Metadata store's progress write (heartbeat/store.go), `ago` s in the DB's past."""
    row = conn.execute("SELECT to_jsonb(now() - make_interval(secs => %s)) AS at", (ago,))
    at = row.fetchone()
    assert at is not None
    rj.set_metadata(
        conn,
        schema,
        job_id,
        {"health_check_at": at["at"], "health_check_at_progress_at": at["at"],
         "health_check_at_progress": progress},
    )  # fmt: skip


async def retried(
    db: RiverDatabase,
    job_id: int,
    attempted_at: datetime,
    schema: str | None,
    resume_from: HeartbeatLocation | None = None,
) -> Applied | None:
    request = RetryRequest(job_id, attempted_at, REASON, backoff=Backoff.IMMEDIATE)
    return await retry_one(db, request, schema=schema, resume_from=resume_from)


async def test_a_retry_copies_the_attempts_last_progress_from_the_heartbeat_table(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = running_job(conn, schema, metadata={"tenant": "a"})
    rj.beat(conn, schema, job_id, progress_ago=2.0, progress={"step": 30, "of": 60})

    assert await retried(db, job_id, attempted_at, schema, resume_from=TABLE)

    row = rj.job(conn, schema, job_id)
    resume = row["metadata"][RESUME_KEY]
    assert resume["attempt"] == 1 and resume["progress"] == {"step": 30, "of": 60}
    at = go_time(resume["at"])
    assert abs((row["db_now"] - at).total_seconds() - 2.0) < 1
    assert row["metadata"]["tenant"] == "a"


async def test_a_retry_copies_progress_from_the_metadata_store(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = running_job(conn, schema)
    progress_in_metadata(conn, schema, job_id, {"cursor": "k-17"}, ago=1.0)

    assert await retried(db, job_id, attempted_at, schema, resume_from=METADATA)

    resume = rj.job(conn, schema, job_id)["metadata"][RESUME_KEY]
    assert resume["attempt"] == 1 and resume["progress"] == {"cursor": "k-17"}
    go_time(resume["at"])


@pytest.mark.parametrize("source", [TABLE, METADATA], ids=["table", "metadata"])
async def test_an_attempt_without_progress_writes_no_resume_point(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, source: HeartbeatLocation
) -> None:
    never, never_at = running_job(conn, schema)
    rj.beat(conn, schema, never)  # beats, but never called Progress
    empty, empty_at = running_job(conn, schema)
    # Progress(ctx, nil), or a payload over MaxProgressBytes: progress_at without a payload.
    if source is TABLE:
        rj.beat(conn, schema, empty, progress_ago=1.0)
    else:
        progress_in_metadata(conn, schema, empty, None, ago=1.0)

    applied = await retry_many(
        db,
        [RetryRequest(never, never_at, REASON), RetryRequest(empty, empty_at, REASON)],
        schema=schema,
        resume_from=source,
    )

    assert len(applied) == 2
    for job_id in (never, empty):
        assert RESUME_KEY not in rj.job(conn, schema, job_id)["metadata"]


@pytest.mark.parametrize("source", [TABLE, METADATA], ids=["table", "metadata"])
async def test_progress_of_an_earlier_run_is_not_copied_and_an_earlier_resume_point_stays(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, source: HeartbeatLocation
) -> None:
    job_id, attempted_at = running_job(conn, schema)
    earlier = {"attempt": 1, "progress": {"step": 12}, "at": "2026-01-01T00:00:00Z"}
    rj.set_metadata(conn, schema, job_id, {RESUME_KEY: earlier})
    # Progress from before this run started: a refunded attempt repeats its number.
    attempted_at = rj.age_attempt(conn, schema, job_id, 5.0)
    if source is TABLE:
        rj.beat(conn, schema, job_id, progress_ago=10.0, progress={"step": 40})
    else:
        progress_in_metadata(conn, schema, job_id, {"step": 40}, ago=10.0)

    assert await retried(db, job_id, attempted_at, schema, resume_from=source)

    assert rj.job(conn, schema, job_id)["metadata"][RESUME_KEY] == earlier


async def test_progress_of_another_attempt_number_is_not_copied(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = running_job(conn, schema)
    rj.beat(conn, schema, job_id, attempt=0, progress_ago=0.5, progress={"step": 3})

    assert await retried(db, job_id, attempted_at, schema, resume_from=TABLE)

    assert RESUME_KEY not in rj.job(conn, schema, job_id)["metadata"]


async def test_the_next_attempts_progress_replaces_the_resume_point(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = running_job(conn, schema)
    rj.beat(conn, schema, job_id, progress_ago=0.5, progress={"step": 30})
    assert await retried(db, job_id, attempted_at, schema, resume_from=TABLE)
    attempted_at = rj.fetch_job(conn, schema, job_id, "worker-2_2026_01_01T00_00_00_000000")
    rj.beat(conn, schema, job_id, progress_ago=0.0, progress={"step": 45})

    # A retry with River's backoff copies the progress as well; so does one that discards.
    request = RetryRequest(job_id, attempted_at, REASON)
    assert await retry_one(db, request, schema=schema, resume_from=TABLE)

    resume = rj.job(conn, schema, job_id)["metadata"][RESUME_KEY]
    assert (resume["attempt"], resume["progress"]) == (2, {"step": 45})


async def test_without_a_source_a_retry_copies_nothing(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = running_job(conn, schema)
    rj.beat(conn, schema, job_id, progress_ago=0.5, progress={"step": 30})

    assert await retried(db, job_id, attempted_at, schema)

    assert RESUME_KEY not in rj.job(conn, schema, job_id)["metadata"]


async def test_a_fenced_out_retry_copies_nothing(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = running_job(conn, schema)
    rj.beat(conn, schema, job_id, progress_ago=0.5, progress={"step": 30})
    stale = attempted_at - timedelta(microseconds=1)

    assert await retried(db, job_id, stale, schema, resume_from=TABLE) is None

    assert rj.job(conn, schema, job_id)["metadata"] == {}


# --- discard and cancel ---------------------------------------------------------------------


def progress_in_table(conn: rj.Conn, schema: str | None, job_id: int) -> None:
    rj.beat(conn, schema, job_id, progress_ago=2.0, progress={"step": 30, "of": 60})


def progress_in_job_metadata(conn: rj.Conn, schema: str | None, job_id: int) -> None:
    progress_in_metadata(conn, schema, job_id, {"step": 30, "of": 60}, ago=2.0)


def beats_without_progress(conn: rj.Conn, schema: str | None, job_id: int) -> None:
    rj.beat(conn, schema, job_id)


def completed_since(conn: rj.Conn, schema: str | None, job_id: int) -> None:
    progress_in_table(conn, schema, job_id)
    assert rj.complete_job(conn, schema, job_id)


def fetched_again_since(conn: rj.Conn, schema: str | None, job_id: int) -> None:
    """Retried by River and fetched again: a new attempt (2) with its own attempted_at."""
    progress_in_table(conn, schema, job_id)
    rj.beat(conn, schema, job_id, progress_ago=0.0, progress={"step": 31, "of": 60})
    conn.execute(
        sql.SQL("UPDATE {t} SET state = 'available' WHERE id = %s").format(
            t=rj.table(schema, "river_job")
        ),
        (job_id,),
    )
    rj.fetch_job(conn, schema, job_id, "worker-2_2026_01_01T00_00_00_000000")
    rj.beat(conn, schema, job_id, progress_ago=0.0, progress={"step": 2, "of": 60})


@dataclass(frozen=True)
class Case:
    source: HeartbeatLocation
    since_scan: Callable[[rj.Conn, str | None, int], None]
    # The checkpoint the write leaves; None: no key. `moved_on`: the write must not apply.
    resume: dict[str, object] | None
    moved_on: bool = False


CHECKPOINT = {"attempt": 1, "progress": {"step": 30, "of": 60}}
CASES = {
    "table-progress": Case(TABLE, progress_in_table, CHECKPOINT),
    "metadata-progress": Case(METADATA, progress_in_job_metadata, CHECKPOINT),
    "table-no-progress": Case(TABLE, beats_without_progress, None),
    "metadata-no-progress": Case(
        METADATA, lambda c, s, j: progress_in_metadata(c, s, j, None, ago=1.0), None
    ),
    "completed-since": Case(TABLE, completed_since, None, moved_on=True),
    "fetched-again-since": Case(TABLE, fetched_again_since, None, moved_on=True),
}
# The state each write leaves: a cancel only asks River's producer to stop the attempt.
ENDS = {"discard": "discarded", "cancel": "running"}


async def ended(
    end: str,
    db: RiverDatabase,
    job_id: int,
    attempted_at: datetime,
    schema: str | None,
    source: HeartbeatLocation,
) -> list[Applied]:
    if end == "discard":
        requests = [DiscardRequest(job_id, attempted_at, REASON)]
        return await discard_many(db, requests, schema=schema, resume_from=source)
    cancels = [CancelRequest(job_id, attempted_at, REASON)]
    return await cancel_many(db, cancels, schema=schema, resume_from=source)


@pytest.mark.parametrize("end", list(ENDS))
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_a_discard_or_cancel_copies_the_attempts_last_progress_as_a_retry_does(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, case: Case, end: str
) -> None:
    job_id, attempted_at = running_job(conn, schema, metadata={"tenant": "a"})
    case.since_scan(conn, schema, job_id)
    before = rj.job(conn, schema, job_id)

    applied = await ended(end, db, job_id, attempted_at, schema, case.source)

    row = rj.job(conn, schema, job_id)
    if case.moved_on:
        assert applied == []
        untouched = ("state", "attempt", "attempted_at", "metadata", "errors", "finalized_at")
        assert {k: row[k] for k in untouched} == {k: before[k] for k in untouched}
        return
    assert applied == [Applied(job_id, ENDS[end])]
    assert row["metadata"]["tenant"] == "a"
    if case.resume is None:
        assert RESUME_KEY not in row["metadata"]
        return
    resume = row["metadata"][RESUME_KEY]
    assert {k: resume[k] for k in ("attempt", "progress")} == case.resume
    assert abs((row["db_now"] - go_time(resume["at"])).total_seconds() - 2.0) < 1


@pytest.mark.parametrize("end", list(ENDS))
async def test_a_discard_or_cancel_without_progress_keeps_an_earlier_resume_point(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, end: str
) -> None:
    job_id, attempted_at = running_job(conn, schema)
    earlier = {"attempt": 1, "progress": {"step": 12}, "at": "2026-01-01T00:00:00Z"}
    rj.set_metadata(conn, schema, job_id, {RESUME_KEY: earlier})
    rj.beat(conn, schema, job_id)

    assert await ended(end, db, job_id, attempted_at, schema, TABLE)

    assert rj.job(conn, schema, job_id)["metadata"][RESUME_KEY] == earlier
