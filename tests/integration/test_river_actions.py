"""Fenced retry, cancel and discard write exactly what River's rescuer and JobCancel write."""

from __future__ import annotations

import json
import re
import select
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from devenv import river_jobs as rj
from devenv.retrying import retry_one
from devenv.river import RiverDatabase as RiverDatabaseFactory
from lifeguard.model.enums import Backoff
from lifeguard.river import (
    Applied,
    CancelRequest,
    DiscardRequest,
    RetryRequest,
    RiverDatabase,
    cancel,
    cancel_many,
    discard,
    discard_many,
    lifeguard_error,
    retry_many,
)

pytestmark = pytest.mark.integration

ODD_SCHEMA = 'Lifeguard "Acts" ü\'s'
# Go's time.RFC3339Nano in UTC: trailing zeros of the fraction are dropped, and the dot with them.
RFC3339_NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$")
REASON = lifeguard_error("InfrastructureDeath", "OOMKilled", "pod report-worker-7f on node n2")


@pytest.fixture(scope="module", params=[None, ODD_SCHEMA], ids=["search-path", "odd-schema"])
def river(
    request: pytest.FixtureRequest, river_database: RiverDatabaseFactory
) -> tuple[str, str | None]:
    schema: str | None = request.param
    return rj.river_database_in(river_database, schema), schema


def parse_go_time(text: str) -> datetime:
    assert RFC3339_NANO_UTC.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def add_errors(conn: rj.Conn, schema: str | None, job_id: int, count: int) -> None:
    entry = json.dumps({"at": "2026-01-01T00:00:00Z", "attempt": 1, "error": "boom", "trace": ""})
    conn.execute(
        sql.SQL("UPDATE {t} SET errors = array_fill(%s::jsonb, ARRAY[%s]) WHERE id = %s").format(
            t=rj.table(schema, "river_job")
        ),
        (entry, count, job_id),
    )


# --- retry ----------------------------------------------------------------------------------


async def test_immediate_retry_makes_the_job_available_as_river_job_retry_does(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, river: tuple[str, str | None]
) -> None:
    queue = 'billing "eu" ü'
    job_id, attempted_at = rj.start_job(conn, schema, queue=queue, metadata={"tenant": "a"})
    request = RetryRequest(job_id, attempted_at, REASON, backoff=Backoff.IMMEDIATE)

    with listen(river[0], f"{schema or 'public'}.river_insert") as listener:
        applied = await retry_one(db, request, schema=schema)
        payloads = notifications(listener)

    assert applied == Applied(job_id, "available")
    row = rj.job(conn, schema, job_id)
    assert row["state"] == "available" and row["attempt"] == 1 and row["finalized_at"] is None
    assert abs((row["scheduled_at"] - row["db_now"]).total_seconds()) < 1
    [entry] = row["errors"]
    assert set(entry) == {"at", "attempt", "error", "trace"}
    assert (entry["attempt"], entry["error"], entry["trace"]) == (1, REASON, "")
    assert abs((parse_go_time(entry["at"]) - row["db_now"]).total_seconds()) < 1
    assert row["metadata"] == {"tenant": "a", "lifeguard:retries": 1}
    # River's insert notification, which wakes the queue's idle producers.
    assert [json.loads(p) for p in payloads] == [{"queue": queue}]
    # The same fence again: the job is no longer running, so nothing applies.
    assert await retry_one(db, request, schema=schema) is None
    assert len(rj.job(conn, schema, job_id)["errors"]) == 1


async def test_a_batch_of_immediate_retries_wakes_each_queue_once(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, river: tuple[str, str | None]
) -> None:
    jobs = [rj.start_job(conn, schema, queue=q) for q in ("a", "a", "b")]
    backoff = rj.start_job(conn, schema, queue="c")
    requests = [RetryRequest(i, at, REASON, backoff=Backoff.IMMEDIATE) for i, at in jobs]

    with listen(river[0], f"{schema or 'public'}.river_insert") as listener:
        applied = await retry_many(db, [*requests, RetryRequest(*backoff, REASON)], schema=schema)
        payloads = notifications(listener)

    assert [a.state for a in applied] == ["available", "available", "available", "retryable"]
    assert sorted(json.loads(p)["queue"] for p in payloads) == ["a", "b"]


# River's bit(8) unique_states: bit i from the left as river_job_state_in_bitmask reads it
# (rivershared/uniquestates writes the same positions).
_BIT_OF_STATE = {
    "scheduled": 0, "running": 1, "retryable": 2, "pending": 3,
    "discarded": 4, "completed": 5, "cancelled": 6, "available": 7,
}  # fmt: skip
RIVER_REQUIRED = ("available", "pending", "running", "scheduled")
RIVER_DEFAULT = (*RIVER_REQUIRED, "completed", "retryable")


def unique_states(*states: str) -> str:
    return "".join("1" if any(_BIT_OF_STATE[s] == i for s in states) else "0" for i in range(8))


@pytest.mark.parametrize(
    ("states", "state"),
    [
        (RIVER_DEFAULT, "available"),
        (RIVER_REQUIRED, "available"),
        # Rows River's insert would refuse to write: the retry waits for River's scheduler.
        (("pending", "running", "scheduled"), "retryable"),
        (("available", "pending", "scheduled"), "retryable"),
    ],
    ids=["river-default", "river-required", "no-available", "no-running"],
)
async def test_an_immediate_retry_of_a_unique_job_is_available_only_when_river_allows_it(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, states: tuple[str, ...], state: str
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    conn.execute(
        sql.SQL("UPDATE {t} SET unique_key = %s, unique_states = %s::bit(8) WHERE id = %s").format(
            t=rj.table(schema, "river_job")
        ),
        (f"key-{job_id}".encode(), unique_states(*states), job_id),
    )
    request = RetryRequest(job_id, attempted_at, REASON, backoff=Backoff.IMMEDIATE)

    assert await retry_one(db, request, schema=schema) == Applied(job_id, state)
    row = rj.job(conn, schema, job_id)
    assert row["state"] == state
    assert abs((row["scheduled_at"] - row["db_now"]).total_seconds()) < 1


async def test_a_retry_with_river_backoff_stays_retryable_and_wakes_nobody(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, river: tuple[str, str | None]
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    with listen(river[0], f"{schema or 'public'}.river_insert") as listener:
        assert await retry_one(db, RetryRequest(job_id, attempted_at, REASON), schema=schema)
        assert notifications(listener, timeout=0.5) == []
    assert rj.job(conn, schema, job_id)["state"] == "retryable"


@pytest.mark.parametrize("earlier_errors", [0, 2, 4])
async def test_river_backoff_is_errors_plus_one_to_the_fourth_with_ten_percent_jitter(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, earlier_errors: int
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    add_errors(conn, schema, job_id, earlier_errors)

    assert await retry_one(db, RetryRequest(job_id, attempted_at, REASON), schema=schema)

    row = rj.job(conn, schema, job_id)
    delay = (row["scheduled_at"] - row["db_now"]).total_seconds()
    base = (earlier_errors + 1) ** 4
    assert base * 0.9 - 0.01 <= delay <= base * 1.1 + 0.01
    assert len(row["errors"]) == earlier_errors + 1


async def test_a_retry_of_the_last_attempt_discards_unless_refunded(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    spent, spent_at = rj.start_job(conn, schema, max_attempts=1)
    refunded, refunded_at = rj.start_job(conn, schema, max_attempts=1)

    applied = await retry_many(
        db,
        [
            RetryRequest(spent, spent_at, REASON, backoff=Backoff.IMMEDIATE),
            RetryRequest(refunded, refunded_at, REASON, Backoff.IMMEDIATE, refund_attempt=True),
        ],
        schema=schema,
    )

    assert applied == [Applied(spent, "discarded"), Applied(refunded, "available")]
    discarded = rj.job(conn, schema, spent)
    assert abs((discarded["finalized_at"] - discarded["db_now"]).total_seconds()) < 1
    assert discarded["metadata"] == {"lifeguard:retries": 1}
    assert discarded["errors"][0]["attempt"] == 1
    again = rj.job(conn, schema, refunded)
    assert again["attempt"] == 0 and again["finalized_at"] is None
    assert again["metadata"] == {"lifeguard:retries": 1, "lifeguard:infra_retries": 1}
    # The error entry names the attempt that died, not the refunded count.
    assert again["errors"][0]["attempt"] == 1


async def test_refunded_retries_accumulate_across_attempts(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    for _ in range(3):
        request = RetryRequest(job_id, attempted_at, REASON, Backoff.IMMEDIATE, refund_attempt=True)
        assert await retry_one(db, request, schema=schema)
        rj.make_available(conn, schema, job_id)
        attempted_at = rj.fetch_job(conn, schema, job_id, "worker-2_2026_01_01T00_00_00_000000")
    row = rj.job(conn, schema, job_id)
    assert row["attempt"] == 1
    assert row["metadata"] == {"lifeguard:retries": 3, "lifeguard:infra_retries": 3}
    assert len(row["errors"]) == 3


async def test_a_retry_of_a_job_whose_cancel_was_requested_cancels_it_as_river_does(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    assert await cancel(db, CancelRequest(job_id, attempted_at), schema=schema)

    applied = await retry_one(db, RetryRequest(job_id, attempted_at, REASON), schema=schema)

    assert applied == Applied(job_id, "cancelled")
    row = rj.job(conn, schema, job_id)
    assert row["finalized_at"] is not None and row["errors"][0]["error"] == REASON


async def test_a_stale_fence_applies_nothing(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    stale = attempted_at - timedelta(microseconds=1)
    assert await retry_one(db, RetryRequest(job_id, stale, REASON), schema=schema) is None
    assert await cancel(db, CancelRequest(job_id, stale), schema=schema) is None
    assert await discard(db, DiscardRequest(job_id, stale, REASON), schema=schema) is None
    row = rj.job(conn, schema, job_id)
    assert row["state"] == "running" and row["errors"] is None and row["metadata"] == {}


async def test_a_batch_applies_to_the_jobs_still_running_that_attempt(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    running = [rj.start_job(conn, schema) for _ in range(3)]
    finished_id, finished_at = rj.start_job(conn, schema)
    rj.complete_job(conn, schema, finished_id)
    requests = [
        RetryRequest(i, at, f"{REASON} #{i}") for i, at in [*running, (finished_id, finished_at)]
    ]

    applied = await retry_many(db, requests, schema=schema)

    assert applied == [Applied(i, "retryable") for i, _ in running]
    for job_id, _ in running:
        assert rj.job(conn, schema, job_id)["errors"][0]["error"] == f"{REASON} #{job_id}"
    assert rj.job(conn, schema, finished_id)["state"] == "completed"


async def test_a_batch_naming_a_job_twice_is_refused(db: RiverDatabase, schema: str | None) -> None:
    now = datetime.now().astimezone()
    with pytest.raises(ValueError, match="more than once"):
        await retry_many(db, [RetryRequest(1, now, "a"), RetryRequest(1, now, "b")], schema=schema)


# --- cancel ---------------------------------------------------------------------------------


def listen(dsn: str, channel: str) -> psycopg.Connection[tuple[object, ...]]:
    listener = psycopg.connect(dsn, autocommit=True)
    listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    return listener


def notifications(
    listener: psycopg.Connection[tuple[object, ...]], timeout: float = 5.0
) -> list[str]:
    received: list[str] = []
    if select.select([listener.pgconn.socket], [], [], timeout)[0]:
        received = [n.payload for n in listener.notifies(timeout=0.5, stop_after=10)]
    return received


async def test_cancel_sets_cancel_attempted_at_and_notifies_the_control_channel(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, river: tuple[str, str | None]
) -> None:
    queue = 'billing "eu" ü'
    job_id, attempted_at = rj.start_job(conn, schema, queue=queue)
    channel = f"{schema or 'public'}.river_control"
    with listen(river[0], channel) as listener:
        applied = await cancel(db, CancelRequest(job_id, attempted_at), schema=schema)
        payloads = notifications(listener)

    assert applied == Applied(job_id, "running")
    assert [json.loads(p) for p in payloads] == [
        {"action": "cancel", "job_id": job_id, "queue": queue}
    ]
    row = rj.job(conn, schema, job_id)
    assert row["state"] == "running"
    requested = parse_go_time(row["metadata"]["cancel_attempted_at"])
    assert abs((requested - row["db_now"]).total_seconds()) < 1
    assert row["metadata"]["lifeguard:cancels"] == 1


async def test_a_second_cancel_keeps_the_first_request_time(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    rj.set_metadata(conn, schema, job_id, {"cancel_attempted_at": "2026-01-01T00:00:00.5Z"})
    assert await cancel_many(db, [CancelRequest(job_id, attempted_at)], schema=schema)
    metadata = rj.job(conn, schema, job_id)["metadata"]
    assert metadata["cancel_attempted_at"] == "2026-01-01T00:00:00.5Z"
    # A malformed earlier value would break River's rescuer: it is replaced.
    rj.set_metadata(conn, schema, job_id, {"cancel_attempted_at": "yesterday"})
    assert await cancel(db, CancelRequest(job_id, attempted_at), schema=schema)
    metadata = rj.job(conn, schema, job_id)["metadata"]
    parse_go_time(metadata["cancel_attempted_at"])
    assert metadata["lifeguard:cancels"] == 2


async def test_a_fenced_out_cancel_sends_no_notification(
    db: RiverDatabase, conn: rj.Conn, schema: str | None, river: tuple[str, str | None]
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    rj.complete_job(conn, schema, job_id)
    with listen(river[0], f"{schema or 'public'}.river_control") as listener:
        assert await cancel(db, CancelRequest(job_id, attempted_at), schema=schema) is None
        assert notifications(listener, timeout=0.5) == []


# --- discard --------------------------------------------------------------------------------


async def test_discard_finalizes_with_the_reason_in_errors(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    jobs = [rj.start_job(conn, schema) for _ in range(2)]
    reason = lifeguard_error("Overdue", "MaxRuntime", "ran 2h, limit 1h")

    applied = await discard_many(
        db, [DiscardRequest(i, at, reason) for i, at in jobs], schema=schema
    )

    assert applied == [Applied(i, "discarded") for i, _ in jobs]
    for job_id, _ in jobs:
        row = rj.job(conn, schema, job_id)
        assert abs((row["finalized_at"] - row["db_now"]).total_seconds()) < 1
        assert [e["error"] for e in row["errors"]] == [reason]
        assert row["metadata"] == {"lifeguard:discards": 1}


async def test_a_cancel_with_a_reason_names_it_in_rivers_errors(
    db: RiverDatabase, conn: rj.Conn, schema: str | None
) -> None:
    job_id, attempted_at = rj.start_job(conn, schema)
    reason = lifeguard_error("Overdue", "MaxRuntimeExceeded", "ran 2m; Lifeguard cancelled the job")
    assert await cancel(db, CancelRequest(job_id, attempted_at, reason), schema=schema)
    [entry] = rj.job(conn, schema, job_id)["errors"]
    assert entry["error"] == reason
    assert entry["attempt"] == 1
    parse_go_time(entry["at"])
    # Without a reason, River's errors stay as they were.
    other, other_at = rj.start_job(conn, schema)
    assert await cancel(db, CancelRequest(other, other_at), schema=schema)
    assert rj.job(conn, schema, other)["errors"] in (None, [])
