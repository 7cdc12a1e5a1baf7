"""Fenced writes to running jobs: retry, cancel and discard, singly or many in one round trip.

Every write is `WHERE id = $id AND state = 'running' AND attempted_at = $observed`: if the job
finished, was rescued, or was fetched again since the scan, the row no longer matches and the
write does nothing. River's completer only updates rows that are still running (riverpgxv5
JobSetStateIfRunningMany), so whichever of the two commits first wins and the other is a no-op.
Results list only the jobs a write applied to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from lifeguard.model.enums import Backoff
from lifeguard.model.own_action import OWN_ACTION_KEY
from lifeguard.river.database import RiverDatabase, qualified
from lifeguard.river.heartbeats import HeartbeatLocation
from lifeguard.river.resume import resume_entry, resume_params
from lifeguard.river.sqltext import RFC3339_NOW, json_counter, safe_timestamptz

RETRIES_KEY = "lifeguard:retries"
INFRA_RETRIES_KEY = "lifeguard:infra_retries"
CANCELS_KEY = "lifeguard:cancels"
DISCARDS_KEY = "lifeguard:discards"

# River's DefaultClientRetryPolicy caps a delay at Go's largest time.Duration (~292 years).
_MAX_DELAY_SECONDS = 9223372036.854775807
_ERROR_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class RetryRequest:
    """Retry one attempt. `reason` becomes the River error entry (see `lifeguard_error`)."""

    job_id: int
    attempted_at: datetime
    reason: str
    backoff: Backoff = Backoff.RIVER
    # Give the attempt back (attempt - 1): for deaths the job did not cause. Counted in
    # lifeguard:infra_retries so the policy can bound it.
    refund_attempt: bool = False


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel one attempt. A `reason` is appended to River's errors (see `lifeguard_error`), so
    the job's history says why Lifeguard cancelled it: River's own entry only says it was."""

    job_id: int
    attempted_at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """What Lifeguard is about to do to an attempt and why (an `OwnAction` as JSON)."""

    job_id: int
    attempted_at: datetime
    record: str


@dataclass(frozen=True, slots=True)
class DiscardRequest:
    job_id: int
    attempted_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Applied:
    """A write that applied, and the job's state after it.

    retry: `available` (Immediate), `retryable` (River's backoff), `discarded` (attempts
    exhausted), or `cancelled` (a cancel had been requested: River's rescuer and completer never
    retry such a job). cancel: `running` (the worker's producer cancels the job's context).
    discard: `discarded`.
    """

    job_id: int
    state: str


def lifeguard_error(cause: str, reason: str, detail: str) -> str:
    """The readable River error text, e.g. `lifeguard: InfrastructureDeath/OOMKilled: pod ...`."""
    return f"lifeguard: {cause}/{reason}: {detail}"


async def retry_many(
    db: RiverDatabase,
    requests: Sequence[RetryRequest],
    *,
    schema: str | None,
    resume_from: HeartbeatLocation | None = None,
) -> list[Applied]:
    """Retries as River's rescuer does (riverpgxv5 JobRescueMany), fenced per attempt.

    Appends {at, attempt, error, trace} to `errors`; an Immediate retry becomes `available` at
    once, as River's own JobRetry writes it, and wakes the queue's producers; a River-backoff
    retry becomes `retryable` with River's default backoff ((errors + 1)^4 s, ±10 % jitter,
    errors counted before this one); `discarded` with `finalized_at` when the attempts are used
    up and not refunded; `cancelled` when a cancel had been requested.

    With `resume_from`, the same statement copies the attempt's last progress (written by this
    attempt, with a payload) into metadata `lifeguard:resume` = {attempt, progress, at}, for
    the Go module's heartbeat.ResumeFrom in the next attempt. An attempt without progress
    leaves the key as it was, so a checkpoint of an earlier attempt is kept.
    """
    if not requests:
        return []
    _no_duplicates(requests)
    river_job = qualified(schema, "river_job")
    state_type = qualified(schema, "river_job_state")
    refund = sql.SQL("(r.refund AND j.attempt > 0)")
    cancel_requested = sql.SQL("({ts} IS NOT NULL)").format(
        ts=safe_timestamptz(sql.SQL("(j.metadata ->> 'cancel_attempted_at')"))
    )
    exhausted = sql.SQL("(j.attempt >= j.max_attempts AND NOT {refund})").format(refund=refund)
    # River's JobRetry makes a job `available` with scheduled_at now; DESIGN once said never to
    # write `available` for fear of River's unique index (river_job_unique_idx: unique_key,
    # WHERE river_job_state_in_bitmask(unique_states, state)). River v0.51.2 requires
    # `available` and `running` in every unique_states (insert_opts.go requiredV3states): a
    # running row already holds its key in that index, so no other row can hold it, and the
    # same row moving to `available` cannot conflict. A row written some other way, whose
    # unique_states lacks either bit, keeps `retryable` and waits for River's scheduler.
    available_safe = sql.SQL(
        "(j.unique_key IS NULL OR j.unique_states IS NULL"
        " OR (get_bit(j.unique_states, 7) = 1 AND get_bit(j.unique_states, 1) = 1))"
    )
    at_once = sql.SQL("(r.immediate AND {safe})").format(safe=available_safe)
    statement = sql.SQL(
        """WITH updated AS (
UPDATE {river_job} AS j SET
  state = (CASE WHEN {cancel_requested} THEN 'cancelled'
    WHEN {exhausted} THEN 'discarded' WHEN {at_once} THEN 'available'
    ELSE 'retryable' END)::{state_type},
  finalized_at = CASE WHEN {cancel_requested} OR {exhausted} THEN now() ELSE j.finalized_at END,
  scheduled_at = CASE WHEN {cancel_requested} OR {exhausted} THEN j.scheduled_at
    WHEN r.immediate THEN now()
    ELSE now() + make_interval(secs => least(
      power(coalesce(cardinality(j.errors), 0) + 1, 4) * (0.9 + random() * 0.2), {max_delay}))
    END,
  attempt = CASE WHEN {refund} AND NOT {cancel_requested} THEN j.attempt - 1
    ELSE j.attempt END,
  errors = array_append(j.errors, {error}),
  metadata = j.metadata || jsonb_build_object({retries_key}, {retries} + 1)
    || CASE WHEN {refund} THEN jsonb_build_object({infra_key}, {infra} + 1)
       ELSE '{{}}'::jsonb END
    || {resume}
FROM unnest(%(ids)s::bigint[], %(attempted_ats)s::timestamptz[], %(reasons)s::text[],
  %(immediate)s::boolean[], %(refund)s::boolean[])
  AS r(id, attempted_at, reason, immediate, refund)
WHERE j.id = r.id AND j.state = 'running' AND j.attempted_at = r.attempted_at
RETURNING j.id, j.state::text AS state, j.queue
)
-- River's insert wakes idle producers with {{"queue": ...}} on "<schema>.river_insert"
-- (client.go maybeNotifyInsertForQueues, riverpgxv5 PGNotifyMany). Sent when the write
-- commits; PostgreSQL delivers identical notifications of one transaction once, so a batch
-- wakes each queue once.
SELECT updated.id, updated.state,
  CASE WHEN updated.state = 'available' THEN
    pg_notify({insert_channel}, json_build_object('queue', updated.queue)::text) END
FROM updated"""
    ).format(
        river_job=river_job,
        state_type=state_type,
        cancel_requested=cancel_requested,
        exhausted=exhausted,
        at_once=at_once,
        refund=refund,
        max_delay=sql.Literal(_MAX_DELAY_SECONDS),
        error=_error_entry(),
        retries_key=sql.Literal(RETRIES_KEY),
        retries=json_counter(sql.SQL("j.metadata"), RETRIES_KEY),
        infra_key=sql.Literal(INFRA_RETRIES_KEY),
        infra=json_counter(sql.SQL("j.metadata"), INFRA_RETRIES_KEY),
        resume=resume_entry(schema, resume_from),
        insert_channel=_channel("river_insert"),
    )
    params: dict[str, Any] = {
        "ids": [r.job_id for r in requests],
        "attempted_ats": [r.attempted_at for r in requests],
        "reasons": [r.reason[:_ERROR_MAX_CHARS] for r in requests],
        "immediate": [r.backoff is Backoff.IMMEDIATE for r in requests],
        "refund": [r.refund_attempt for r in requests],
        "schema": schema,
    } | resume_params(resume_from)
    rows = await db.fetch(statement, params, schema=schema, doing=f"retry {_ids(requests)}")
    return _applied(rows)


def _channel(topic: str) -> sql.Composable:
    """River's LISTEN channel for `topic`: "<schema>.<topic>", with current_schema() when the
    client has no schema configured, and no prefix when there is none (needs %(schema)s)."""
    return sql.SQL(
        "(CASE WHEN coalesce(%(schema)s::text, current_schema(), '') = '' THEN {topic}"
        " ELSE coalesce(%(schema)s::text, current_schema()) || {dotted} END)"
    ).format(topic=sql.Literal(topic), dotted=sql.Literal(f".{topic}"))


async def cancel(
    db: RiverDatabase,
    request: CancelRequest,
    *,
    schema: str | None,
    resume_from: HeartbeatLocation | None = None,
) -> Applied | None:
    applied = await cancel_many(db, [request], schema=schema, resume_from=resume_from)
    return applied[0] if applied else None


async def cancel_many(
    db: RiverDatabase,
    requests: Sequence[CancelRequest],
    *,
    schema: str | None,
    resume_from: HeartbeatLocation | None = None,
) -> list[Applied]:
    """Cancels running jobs through River itself (riverpgxv5 JobCancel), fenced per attempt.

    Sets metadata `cancel_attempted_at` (RFC3339Nano, as Go marshals time.Time) and notifies
    `<schema>.river_control` with {"action":"cancel","job_id":…,"queue":…} in the same statement,
    so the notification is sent exactly when the write commits. The producer of that queue
    cancels the job's context; River's completer then finalizes it as cancelled, and its rescuer
    cancels instead of retrying. An earlier valid request time is kept, so the age of the first
    request keeps growing for escalation.

    With `resume_from`, the same statement copies the attempt's last progress into
    `lifeguard:resume`, as a retry does: River's JobRetry makes a cancelled job available
    again like a discarded one, and a user who retries it resumes. The attempt runs on until
    its worker sees the cancel, so this is the checkpoint known when the cancel is requested:
    one the worker writes after it is not copied (its work is redone, none skipped), unless
    the attempt then ends by a retry (the escalation), which copies again.
    """
    if not requests:
        return []
    _no_duplicates(requests)
    existing = sql.SQL("(j.metadata ->> 'cancel_attempted_at')")
    statement = sql.SQL(
        """WITH updated AS (
  UPDATE {river_job} AS j SET
    metadata = j.metadata || jsonb_build_object(
      'cancel_attempted_at', CASE WHEN {existing_valid} IS NOT NULL THEN {existing} ELSE {now} END,
      {cancels_key}, {cancels} + 1)
      || {resume},
    errors = CASE WHEN r.reason = '' THEN j.errors ELSE array_append(j.errors, {error}) END
  FROM unnest(%(ids)s::bigint[], %(attempted_ats)s::timestamptz[], %(reasons)s::text[])
    AS r(id, attempted_at, reason)
  WHERE j.id = r.id AND j.state = 'running' AND j.attempted_at = r.attempted_at
  RETURNING j.id, j.queue
)
SELECT updated.id, 'running' AS state,
  pg_notify({control_channel},
    json_build_object('action', 'cancel', 'job_id', updated.id, 'queue', updated.queue)::text)
FROM updated"""
    ).format(
        river_job=qualified(schema, "river_job"),
        existing=existing,
        existing_valid=safe_timestamptz(existing),
        now=RFC3339_NOW,
        cancels_key=sql.Literal(CANCELS_KEY),
        cancels=json_counter(sql.SQL("j.metadata"), CANCELS_KEY),
        control_channel=_channel("river_control"),
        error=_error_entry(),
        resume=resume_entry(schema, resume_from),
    )
    params: dict[str, Any] = {
        "ids": [r.job_id for r in requests],
        "attempted_ats": [r.attempted_at for r in requests],
        "reasons": [r.reason[:_ERROR_MAX_CHARS] for r in requests],
        "schema": schema,
    } | resume_params(resume_from)
    rows = await db.fetch(statement, params, schema=schema, doing=f"cancel {_ids(requests)}")
    return _applied(rows)


async def record_actions_many(
    db: RiverDatabase, requests: Sequence[ActionRecord], *, schema: str | None
) -> list[Applied]:
    """Writes what Lifeguard is about to do under metadata `lifeguard:action`, fenced per
    attempt, with the database's now() as "at" (a scan reads it only for the attempt that
    began before it). Called before the action itself: a job that moved on is not acted on,
    and the record survives an operator restart.
    """
    if not requests:
        return []
    _no_duplicates(requests)
    statement = sql.SQL(
        """UPDATE {river_job} AS j SET
  metadata = j.metadata || jsonb_build_object({key},
    r.record::jsonb || jsonb_build_object('at', {now}))
FROM unnest(%(ids)s::bigint[], %(attempted_ats)s::timestamptz[], %(records)s::text[])
  AS r(id, attempted_at, record)
WHERE j.id = r.id AND j.state = 'running' AND j.attempted_at = r.attempted_at
RETURNING j.id, j.state::text AS state"""
    ).format(
        river_job=qualified(schema, "river_job"),
        key=sql.Literal(OWN_ACTION_KEY),
        now=RFC3339_NOW,
    )
    params = _record_params(requests)
    rows = await db.fetch(statement, params, schema=schema, doing=f"record {_ids(requests)}")
    return _applied(rows)


def _record_params(requests: Sequence[ActionRecord]) -> dict[str, Any]:
    """The arrays a record's write and its withdrawal unnest: job, attempt and record."""
    return {
        "ids": [r.job_id for r in requests],
        "attempted_ats": [r.attempted_at for r in requests],
        "records": [r.record for r in requests],
    }


async def withdraw_actions_many(
    db: RiverDatabase, requests: Sequence[ActionRecord], *, schema: str | None
) -> list[Applied]:
    """Removes records that `record_actions_many` wrote for actions that did not happen (an
    eviction a PodDisruptionBudget refused, a pod already gone): a later death of the pod must
    not read as Lifeguard's doing. Fenced per attempt and on the record itself, so a record
    written since for another decision stays; the job's state does not matter (the record only
    ever speaks of this attempt).
    """
    if not requests:
        return []
    _no_duplicates(requests)
    statement = sql.SQL(
        """UPDATE {river_job} AS j SET
  metadata = j.metadata - {key}
FROM unnest(%(ids)s::bigint[], %(attempted_ats)s::timestamptz[], %(records)s::text[])
  AS r(id, attempted_at, record)
WHERE j.id = r.id AND j.attempted_at = r.attempted_at
  AND jsonb_typeof(j.metadata -> {key}) = 'object'
  AND (j.metadata -> {key}) - 'at' = r.record::jsonb
RETURNING j.id, j.state::text AS state"""
    ).format(river_job=qualified(schema, "river_job"), key=sql.Literal(OWN_ACTION_KEY))
    params = _record_params(requests)
    rows = await db.fetch(statement, params, schema=schema, doing=f"withdraw {_ids(requests)}")
    return _applied(rows)


async def discard(
    db: RiverDatabase,
    request: DiscardRequest,
    *,
    schema: str | None,
    resume_from: HeartbeatLocation | None = None,
) -> Applied | None:
    applied = await discard_many(db, [request], schema=schema, resume_from=resume_from)
    return applied[0] if applied else None


async def discard_many(
    db: RiverDatabase,
    requests: Sequence[DiscardRequest],
    *,
    schema: str | None,
    resume_from: HeartbeatLocation | None = None,
) -> list[Applied]:
    """Discards running jobs, with the reason in River's errors, fenced per attempt.

    With `resume_from`, the same statement copies the attempt's last progress into
    `lifeguard:resume`, as a retry does: a user who retries the discarded job (River UI's
    retry, River's JobRetry) resumes from it instead of starting over.
    """
    if not requests:
        return []
    _no_duplicates(requests)
    statement = sql.SQL(
        """UPDATE {river_job} AS j SET
  state = 'discarded'::{state_type},
  finalized_at = now(),
  errors = array_append(j.errors, {error}),
  metadata = j.metadata || jsonb_build_object({discards_key}, {discards} + 1) || {resume}
FROM unnest(%(ids)s::bigint[], %(attempted_ats)s::timestamptz[], %(reasons)s::text[])
  AS r(id, attempted_at, reason)
WHERE j.id = r.id AND j.state = 'running' AND j.attempted_at = r.attempted_at
RETURNING j.id, j.state::text AS state"""
    ).format(
        river_job=qualified(schema, "river_job"),
        state_type=qualified(schema, "river_job_state"),
        error=_error_entry(),
        discards_key=sql.Literal(DISCARDS_KEY),
        discards=json_counter(sql.SQL("j.metadata"), DISCARDS_KEY),
        resume=resume_entry(schema, resume_from),
    )
    params: dict[str, Any] = {
        "ids": [r.job_id for r in requests],
        "attempted_ats": [r.attempted_at for r in requests],
        "reasons": [r.reason[:_ERROR_MAX_CHARS] for r in requests],
    } | resume_params(resume_from)
    rows = await db.fetch(statement, params, schema=schema, doing=f"discard {_ids(requests)}")
    return _applied(rows)


def _error_entry() -> sql.Composable:
    """River's rivertype.AttemptError as JSON: the attempt that failed, at the DB's now()."""
    return sql.SQL(
        "jsonb_build_object('at', {now}, 'attempt', j.attempt, 'error', r.reason, 'trace', '')"
    ).format(now=RFC3339_NOW)


Request = RetryRequest | CancelRequest | DiscardRequest | ActionRecord


def _no_duplicates(requests: Sequence[Request]) -> None:
    # UPDATE ... FROM applies one arbitrary match per row; a duplicate would be a silent no-op.
    ids = [r.job_id for r in requests]
    if len(set(ids)) != len(ids):
        raise ValueError(f"a batch names a job more than once: {sorted(ids)}")


def _ids(requests: Sequence[Request]) -> str:
    ids = [r.job_id for r in requests]
    shown = ", ".join(str(i) for i in ids[:5])
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return f"job{'s' if len(ids) > 1 else ''} {shown}{more}"


def _applied(rows: Sequence[Any]) -> list[Applied]:
    return sorted(
        (Applied(job_id=row["id"], state=row["state"]) for row in rows), key=lambda a: a.job_id
    )
