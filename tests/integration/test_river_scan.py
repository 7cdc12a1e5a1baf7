"""The scan reads running jobs, their beats and ages from real PostgreSQL with River's schema."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devenv import river_jobs as rj
from devenv.ports import free_port
from devenv.river import RiverDatabase as RiverDatabaseFactory
from lifeguard.model.enums import Action, Cause, HeartbeatStore
from lifeguard.model.own_action import OwnAction, parse_own_action
from lifeguard.river import (
    ActionRecord,
    Applied,
    AuthenticationFailed,
    DatabaseError,
    DatabaseNotFound,
    DatabaseTimeout,
    DatabaseUnavailable,
    HeartbeatTableMissing,
    RetryRequest,
    RiverDatabase,
    Scan,
    ScanQuery,
    SchemaNotFound,
    heartbeat_table_ddl,
    record_actions_many,
    retry_many,
    scan,
    withdraw_actions_many,
)

pytestmark = pytest.mark.integration

# Names SQL must quote: quotes, spaces, non-ASCII, upper case. River's own migrator fails on a
# schema with a quote (its migration 005 interpolates the name), so the schema is migrated
# under a plain name and renamed.
ODD_SCHEMA = 'Rivér "Jobs" it\'s'
ODD_QUEUE = "billing 'eu' \"west\" ünïcode"
ODD_KIND = 'report "monthly" ✓'

_queues = itertools.count(1)


def fresh_queue() -> str:
    """A queue of its own per test, so tests sharing a database do not see each other's jobs."""
    return f"q{next(_queues)}"


@pytest.fixture(scope="module", params=[None, ODD_SCHEMA], ids=["search-path", "odd-schema"])
def river(
    request: pytest.FixtureRequest, river_database: RiverDatabaseFactory
) -> Iterator[tuple[str, str | None]]:
    schema: str | None = request.param
    dsn = rj.river_database_in(river_database, schema)
    with rj.connect(dsn) as conn:
        conn.execute(heartbeat_table_ddl(schema))
    yield dsn, schema


def only(result: Scan) -> dict[int, object]:
    return {job.id: job for job in result.jobs}


async def test_running_job_facts_come_from_the_row_and_the_database_clock(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(
        conn,
        schema,
        client_id="pod-a_2026_01_02T03_04_05_000006",
        queue=queue,
        kind="sleep",
        priority=3,
        max_attempts=7,
        tags=["nightly"],
    )
    attempted_at = rj.age_attempt(conn, schema, job_id, 100)
    rj.beat(conn, schema, job_id, ago=30, progress_ago=50, progress={"rows": 42})

    result = await scan(db, ScanQuery(schema=schema, queues=(queue,)))

    [job] = result.jobs
    assert (job.id, job.kind, job.queue, job.priority) == (job_id, "sleep", queue, 3)
    assert (job.attempt, job.max_attempts, job.attempted_at) == (1, 7, attempted_at)
    assert job.client_id == "pod-a_2026_01_02T03_04_05_000006"
    assert job.error_count == 0 and job.infra_retries == 0 and job.cancel_requested_age is None
    # Ages are the database's now() minus database timestamps: exact to the microsecond, which a
    # host-clock computation (taken at another instant) could not be.
    assert job.running_for == pytest.approx((result.now - attempted_at).total_seconds(), abs=1e-6)
    assert job.beat_age == pytest.approx(30, abs=0.5)
    assert job.progress_age == pytest.approx(50, abs=0.5)
    assert job.progress is not None and json.loads(job.progress) == {"rows": 42}


async def test_tags_are_read_only_when_asked_for(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    rj.start_job(conn, schema, queue=queue, tags=["nightly", "billing"])
    rj.start_job(conn, schema, queue=queue, tags=[])

    plain = await scan(db, ScanQuery(schema=schema, queues=(queue,)))
    tagged = await scan(db, ScanQuery(schema=schema, queues=(queue,), with_tags=True))

    assert [job.tags for job in plain.jobs] == [None, None]
    assert [job.tags for job in tagged.jobs] == [("nightly", "billing"), ()]
    assert [job.beat_age for job in tagged.jobs] == [job.beat_age for job in plain.jobs]


async def test_scan_now_is_the_database_clock(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    before = conn.execute("SELECT now() AS now").fetchone()
    result = await scan(db, ScanQuery(schema=schema, queues=(fresh_queue(),)))
    after = conn.execute("SELECT clock_timestamp() AS now").fetchone()
    assert before is not None and after is not None
    assert before["now"] <= result.now <= after["now"]
    assert result.jobs == []


async def test_a_beat_of_an_earlier_attempt_is_no_beat(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, queue=queue)
    rj.beat(conn, schema, job_id, ago=1)
    conn.execute(
        psycopg.sql.SQL("UPDATE {t} SET attempt = attempt + 1 WHERE id = %s").format(
            t=rj.table(schema, "river_job")
        ),
        (job_id,),
    )
    [job] = (await scan(db, ScanQuery(schema=schema, queues=(queue,)))).jobs
    assert job.beat_age is None and job.progress_age is None and job.progress is None


async def test_progress_is_truncated(db: RiverDatabase, conn: rj.Conn, schema: str | None) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, queue=queue)
    rj.beat(conn, schema, job_id, progress_ago=0, progress={"log": "x" * 5000})
    [job] = (await scan(db, ScanQuery(schema=schema, queues=(queue,)))).jobs
    assert job.progress is not None and len(job.progress) == 512


async def test_only_running_jobs_are_scanned(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    running, _ = rj.start_job(conn, schema, queue=queue)
    rj.insert_job(conn, schema, queue=queue)  # available
    done, _ = rj.start_job(conn, schema, queue=queue)
    rj.complete_job(conn, schema, done)
    result = await scan(db, ScanQuery(schema=schema, queues=(queue,)))
    assert [job.id for job in result.jobs] == [running]


async def test_selector_lists_are_alternatives_and_lists_combine_with_and(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    q1, q2 = fresh_queue(), ODD_QUEUE + fresh_queue()
    inserts: dict[str, dict[str, Any]] = {
        "q1-sleep-p1": {"queue": q1, "kind": "sleep", "priority": 1, "tags": ["a"]},
        "q1-odd-p2": {"queue": q1, "kind": ODD_KIND, "priority": 2, "tags": ["b", "c"]},
        "q2-sleep-p1": {"queue": q2, "kind": "sleep", "priority": 1},
        "q2-odd-p4": {"queue": q2, "kind": ODD_KIND, "priority": 4, "tags": ["c"]},
    }
    ids = {name: rj.start_job(conn, schema, **insert)[0] for name, insert in inserts.items()}
    cases: list[tuple[ScanQuery, set[str]]] = [
        (ScanQuery(schema=schema, queues=(q1, q2)), set(ids)),
        (ScanQuery(schema=schema, queues=(q2,)), {"q2-sleep-p1", "q2-odd-p4"}),
        (ScanQuery(schema=schema, queues=(q1, q2), kinds=(ODD_KIND,)), {"q1-odd-p2", "q2-odd-p4"}),
        (
            ScanQuery(schema=schema, queues=(q1, q2), priorities=(1, 4)),
            {"q1-sleep-p1", "q2-sleep-p1", "q2-odd-p4"},
        ),
        (
            ScanQuery(schema=schema, queues=(q1, q2), tags=("a", "c")),
            {"q1-sleep-p1", "q1-odd-p2", "q2-odd-p4"},
        ),
        (ScanQuery(schema=schema, queues=(q1, q2), kinds=("sleep",), tags=("c",)), set()),
        (
            ScanQuery(schema=schema, queues=(q2,), kinds=(ODD_KIND, "sleep"), priorities=(4,)),
            {"q2-odd-p4"},
        ),
        (ScanQuery(schema=schema, queues=()), set()),
    ]
    for query, expected in cases:
        found = {job.id for job in (await scan(db, query)).jobs}
        assert found == {ids[name] for name in expected}, query


async def test_the_current_client_is_the_last_one_that_fetched(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, client_id="old_2026_01_01T00_00_00_000001", queue=queue)
    conn.execute(
        psycopg.sql.SQL("UPDATE {t} SET state = 'available' WHERE id = %s").format(
            t=rj.table(schema, "river_job")
        ),
        (job_id,),
    )
    rj.fetch_job(conn, schema, job_id, "new_2026_01_01T00_00_00_000002")
    [job] = (await scan(db, ScanQuery(schema=schema, queues=(queue,)))).jobs
    assert job.client_id == "new_2026_01_01T00_00_00_000002" and job.attempt == 2


async def test_scan_reports_truncation_beyond_max_jobs(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    ids = [rj.start_job(conn, schema, queue=queue)[0] for _ in range(3)]
    result = await scan(db, ScanQuery(schema=schema, queues=(queue,), max_jobs=2))
    assert [job.id for job in result.jobs] == ids[:2] and result.truncated
    assert result.running == 3
    whole = await scan(db, ScanQuery(schema=schema, queues=(queue,), max_jobs=3))
    assert len(whole.jobs) == 3 and whole.running == 3 and not whole.truncated
    empty = await scan(db, ScanQuery(schema=schema, queues=(fresh_queue(),)))
    assert empty.jobs == [] and empty.running == 0 and not empty.truncated


async def test_a_truncated_scan_counts_the_stale_jobs_it_did_not_read(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    kinds = ["report", "report", "report", "report", "export", "export"]
    ids = [rj.start_job(conn, schema, queue=queue, kind=kind)[0] for kind in kinds]
    for job_id in ids:
        rj.age_attempt(conn, schema, job_id, 300)
    rj.beat(conn, schema, ids[0], ago=120)  # read: stale, judged by the verdict, not counted
    rj.beat(conn, schema, ids[2], ago=1)  # unread, fresh
    rj.beat(conn, schema, ids[3], ago=120)  # unread, stale
    # ids[4], ids[5]: unread, never beat, past their startup grace: stale too (by kind, so the
    # breaker can leave out a kind that never beats); ids[1]: read, no beat.
    query = ScanQuery(schema=schema, queues=(queue,), max_jobs=2, stale_after=30, startup_grace=60)
    result = await scan(db, query)
    assert [job.id for job in result.jobs] == ids[:2]
    assert (result.running, result.unread_stale) == (6, 3)
    assert result.unread_stale_by_kind == {"report": 1, "export": 2}
    untruncated = await scan(db, replace(query, max_jobs=6))
    assert untruncated.unread_stale_by_kind == {} and not untruncated.truncated


# --- Metadata store -------------------------------------------------------------------------


async def test_metadata_store_reads_health_check_at_as_go_and_postgres_write_it(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    go_job, _ = rj.start_job(conn, schema, queue=queue)
    pg_job, _ = rj.start_job(conn, schema, queue=queue)
    rj.age_attempt(conn, schema, go_job, 600)
    rj.age_attempt(conn, schema, pg_job, 600)
    now = rj.job(conn, schema, go_job)["db_now"]
    # Go's time.Time marshals as RFC3339Nano; a zone other than UTC is just as valid.
    go_beat = (now - timedelta(seconds=20)).astimezone().isoformat().replace("+00:00", "Z")
    rj.set_metadata(
        conn,
        schema,
        go_job,
        {
            "health_check_at": go_beat,
            "health_check_at_progress_at": (now - timedelta(seconds=40)).isoformat(),
            "health_check_at_progress": {"page": 3},
        },
    )
    conn.execute(
        psycopg.sql.SQL(
            "UPDATE {t} SET metadata = jsonb_set(metadata, '{{health_check_at}}',"
            " to_jsonb(now() - interval '5 seconds')) WHERE id = %s"
        ).format(t=rj.table(schema, "river_job")),
        (pg_job,),
    )
    query = ScanQuery(
        schema=schema,
        store=HeartbeatStore.METADATA,
        metadata_key="health_check_at",
        queues=(queue,),
    )
    jobs = {job.id: job for job in (await scan(db, query)).jobs}
    assert jobs[go_job].beat_age == pytest.approx(20, abs=1)
    assert jobs[go_job].progress_age == pytest.approx(40, abs=1)
    assert jobs[go_job].progress == '{"page": 3}'
    assert jobs[pg_job].beat_age == pytest.approx(5, abs=1)
    assert jobs[pg_job].progress_age is None


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "now",
        "infinity",
        "epoch",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-01-01T25:00:00Z",
        "",
        12345,
        {"at": "2026-01-01T00:00:00Z"},
        None,
        True,
    ],
)
async def test_a_malformed_metadata_beat_is_no_beat_and_does_not_fail_the_scan(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, value: object
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, queue=queue)
    rj.set_metadata(
        conn,
        schema,
        job_id,
        {
            "hb": value,
            "hb_progress_at": value,
            "cancel_attempted_at": value,
            # A number is a valid counter; an absurd one is not.
            "lifeguard:infra_retries": 1e30 if isinstance(value, int) else value,
        },
    )
    query = ScanQuery(
        schema=schema, store=HeartbeatStore.METADATA, metadata_key="hb", queues=(queue,)
    )
    [job] = (await scan(db, query)).jobs
    assert (job.beat_age, job.progress_age, job.cancel_requested_age) == (None, None, None)
    assert job.infra_retries == 0


async def test_a_metadata_beat_older_than_the_attempt_is_a_leftover(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, queue=queue)
    rj.age_attempt(conn, schema, job_id, 10)
    now = rj.job(conn, schema, job_id)["db_now"]
    rj.set_metadata(conn, schema, job_id, {"hb": (now - timedelta(seconds=60)).isoformat()})
    query = ScanQuery(
        schema=schema, store=HeartbeatStore.METADATA, metadata_key="hb", queues=(queue,)
    )
    [job] = (await scan(db, query)).jobs
    assert job.beat_age is None


async def test_metadata_key_with_quotes_is_a_parameter_not_sql(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, queue=queue)
    rj.age_attempt(conn, schema, job_id, 60)
    key = "beat'); DROP TABLE river_job; --"
    now = rj.job(conn, schema, job_id)["db_now"]
    rj.set_metadata(conn, schema, job_id, {key: (now - timedelta(seconds=3)).isoformat()})
    query = ScanQuery(
        schema=schema, store=HeartbeatStore.METADATA, metadata_key=key, queues=(queue,)
    )
    [job] = (await scan(db, query)).jobs
    assert job.beat_age == pytest.approx(3, abs=1)


async def test_cancel_request_age_and_lifeguard_counters_are_read(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, queue=queue)
    now = rj.job(conn, schema, job_id)["db_now"]
    rj.set_metadata(
        conn,
        schema,
        job_id,
        {
            "cancel_attempted_at": (now - timedelta(seconds=90)).isoformat(),
            "lifeguard:infra_retries": 2,
        },
    )
    [job] = (await scan(db, ScanQuery(schema=schema, queues=(queue,)))).jobs
    assert job.cancel_requested_age == pytest.approx(90, abs=1)
    assert job.infra_retries == 2


# --- Failures as typed errors ---------------------------------------------------------------


async def test_a_missing_schema_is_schema_not_found_naming_database_and_schema(
    db: RiverDatabase, schema: str | None
) -> None:
    with pytest.raises(SchemaNotFound) as raised:
        await scan(db, ScanQuery(schema="nowhere"))
    assert "'nowhere'" in str(raised.value) and db.target in str(raised.value)


async def test_a_missing_heartbeat_table_says_to_migrate(
    river_database: RiverDatabaseFactory,
) -> None:
    dsn = river_database()
    async with RiverDatabase(dsn) as db:
        with pytest.raises(HeartbeatTableMissing, match="lifeguard db migrate"):
            await scan(db, ScanQuery())
        metadata_scan = await scan(db, ScanQuery(store=HeartbeatStore.METADATA, metadata_key="hb"))
    assert metadata_scan.jobs == []


async def test_an_unreachable_database_is_unavailable_without_leaking_the_password() -> None:
    port = free_port()
    dsn = f"postgresql://lifeguard:s3cr3t-pw@127.0.0.1:{port}/jobs"
    async with RiverDatabase(dsn, connect_timeout=1) as db:
        with pytest.raises(DatabaseUnavailable) as raised:
            await scan(db, ScanQuery())
    message = str(raised.value)
    assert f"127.0.0.1:{port}/jobs" in message and "s3cr3t" not in message
    assert type(raised.value) is DatabaseUnavailable
    assert raised.value.reason == "Unreachable"
    assert raised.value.event_reason == "DatabaseUnreachable"


@pytest.mark.parametrize(
    ("user", "database", "error", "reason"),
    [
        ("nobody", None, AuthenticationFailed, "AuthenticationFailed"),
        (None, "no_such_db", DatabaseNotFound, "DatabaseNotFound"),
    ],
)
async def test_a_refused_connection_names_why(
    river: tuple[str, str | None],
    user: str | None,
    database: str | None,
    error: type[DatabaseError],
    reason: str,
) -> None:
    parts = conninfo_to_dict(river[0])
    dsn = make_conninfo(
        river[0], user=user or parts.get("user"), dbname=database or parts.get("dbname")
    )
    async with RiverDatabase(dsn, connect_timeout=1) as db:
        with pytest.raises(DatabaseError) as raised:
            await scan(db, ScanQuery(schema=river[1]))
    assert type(raised.value) is error and raised.value.reason == reason


async def test_a_terminated_connection_is_replaced_on_the_next_scan(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    await scan(db, ScanQuery(schema=schema, queues=()))
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'river-lifeguard' AND pid <> pg_backend_pid()"
    )
    result = await scan(db, ScanQuery(schema=schema, queues=()))
    assert result.jobs == []


async def test_a_blocked_scan_ends_at_the_statement_timeout(
    river: tuple[str, str | None], schema: str | None
) -> None:
    with rj.connect(river[0]) as locker, locker.transaction():
        locker.execute(
            psycopg.sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                rj.table(schema, "river_job")
            )
        )
        async with RiverDatabase(river[0], statement_timeout=0.3) as db:
            with pytest.raises(DatabaseError, match="statement timeout") as raised:
                await scan(db, ScanQuery(schema=schema, queues=()))
    assert type(raised.value) is DatabaseTimeout and raised.value.reason == "Timeout"


def test_an_unparsable_database_url_is_a_database_error_without_the_secret() -> None:
    with pytest.raises(DatabaseError, match="cannot be parsed") as raised:
        RiverDatabase("host=db password='s3cr3t")
    assert "s3cr3t" not in str(raised.value) and raised.value.__cause__ is None


async def test_an_action_record_is_fenced_and_read_back_by_the_scan_for_its_attempt_only(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, attempted_at = rj.start_job(conn, schema, queue=queue)
    own = OwnAction(Action.RESTART_POD, Cause.UNRESPONSIVE, "BeatStale", "no beat", pod="w-1")
    stale = attempted_at - timedelta(seconds=1)
    assert (
        await record_actions_many(db, [ActionRecord(job_id, stale, own.to_json())], schema=schema)
        == []
    )
    assert await record_actions_many(
        db, [ActionRecord(job_id, attempted_at, own.to_json())], schema=schema
    ) == [Applied(job_id, "running")]
    query = ScanQuery(schema=schema, store=HeartbeatStore.TABLE, queues=(queue,))
    [job] = (await scan(db, query)).jobs
    assert parse_own_action(job.own_action) == own

    # A later attempt of the same job does not inherit the record.
    assert await retry_many(
        db,
        [RetryRequest(job_id, attempted_at, "lifeguard: Unresponsive/BeatStale: x")],
        schema=schema,
    )
    rj.make_available(conn, schema, job_id)
    rj.fetch_job(conn, schema, job_id, "worker-2")
    [job] = (await scan(db, query)).jobs
    assert job.own_action is None


async def test_an_action_record_is_withdrawn_only_for_its_attempt_and_as_it_was_written(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, attempted_at = rj.start_job(conn, schema, queue=queue)
    own = OwnAction(
        Action.RESTART_POD, Cause.UNRESPONSIVE, "BeatStale", "no beat", pod="w-1", pod_uid="u-1"
    )
    written = ActionRecord(job_id, attempted_at, own.to_json())
    assert await record_actions_many(db, [written], schema=schema)
    query = ScanQuery(schema=schema, store=HeartbeatStore.TABLE, queues=(queue,))

    # Another decision's record (a successor's uid), or another attempt: nothing is removed.
    successor = OwnAction(
        Action.RESTART_POD, Cause.UNRESPONSIVE, "BeatStale", "no beat", pod="w-1", pod_uid="u-2"
    )
    earlier = attempted_at - timedelta(seconds=1)
    for other in (
        ActionRecord(job_id, attempted_at, successor.to_json()),
        ActionRecord(job_id, earlier, own.to_json()),
    ):
        assert await withdraw_actions_many(db, [other], schema=schema) == []
    [job] = (await scan(db, query)).jobs
    assert parse_own_action(job.own_action) == own

    assert await withdraw_actions_many(db, [written], schema=schema) == [Applied(job_id, "running")]
    [job] = (await scan(db, query)).jobs
    assert job.own_action is None
    assert "lifeguard:action" not in rj.job(conn, schema, job_id)["metadata"]


async def test_a_policy_without_beats_reads_no_beat_even_where_a_table_row_exists(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    queue = fresh_queue()
    job_id, _ = rj.start_job(conn, schema, queue=queue)
    rj.age_attempt(conn, schema, job_id, 30)
    rj.beat(conn, schema, job_id, ago=2, progress_ago=2, progress={"rows": 1})
    query = ScanQuery(schema=schema, store=HeartbeatStore.NONE, queues=(queue,))
    [job] = (await scan(db, query)).jobs
    assert (job.beat_age, job.progress_age, job.progress) == (None, None, None)
    assert job.running_for >= 30
