"""SQL fragments shared by scans and actions: safe timestamp reads and River's time format."""

from psycopg import sql

# An RFC 3339 timestamp as Go (time.Time's JSON), River and PostgreSQL's to_jsonb(now()) write
# it. The zone is optional (sessions run in UTC). Only the day-of-month is left to check below.
_RFC3339 = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?$"
)


def safe_timestamptz(text: sql.Composable) -> sql.Composable:
    """`text` as timestamptz, or NULL when it is not a well-formed timestamp.

    A cast error would fail the whole scan for one job's bad metadata, and PostgreSQL 15 has no
    pg_input_is_valid. So the text must match RFC 3339 and name a real day (no 2024-02-30, no
    year 0) before it is cast; words the cast accepts ('now', 'infinity', 'epoch') never match.
    Nested CASEs fix the evaluation order (AND may run its operands in any order).
    """
    day = sql.SQL("substr({t}, 9, 2)::int").format(t=text)
    month = sql.SQL("substr({t}, 6, 2)::int").format(t=text)
    year = sql.SQL("substr({t}, 1, 4)::int").format(t=text)
    leap = sql.SQL("(mod({y}, 4) = 0 AND (mod({y}, 100) <> 0 OR mod({y}, 400) = 0))").format(y=year)
    days_in_month = sql.SQL(
        "CASE {m} WHEN 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END"
        " WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END"
    ).format(m=month, leap=leap)
    return sql.SQL(
        "(CASE WHEN {t} ~ {pattern} THEN"
        " CASE WHEN {y} >= 1 AND {d} <= {dim} THEN {t}::timestamptz END END)"
    ).format(t=text, pattern=sql.Literal(_RFC3339), y=year, d=day, dim=days_in_month)


def age_seconds(timestamp: sql.Composable) -> sql.Composable:
    """Seconds from `timestamp` to the database's now(): the only clock verdicts may use."""
    return sql.SQL("EXTRACT(EPOCH FROM now() - {ts})::float8").format(ts=timestamp)


def rfc3339(timestamp: sql.Composable) -> sql.Composable:
    """`timestamp` as Go's time.RFC3339Nano in UTC ("2006-01-02T15:04:05.999999999Z": trailing
    zeros of the fraction dropped, and the dot with them). River writes cancel_attempted_at and
    error "at" values this way, and its rescuer fails on a value time.Time cannot unmarshal."""
    return sql.SQL(
        "(rtrim(rtrim(to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '0'), '.')"
        " || 'Z')"
    ).format(ts=timestamp)


RFC3339_NOW = rfc3339(sql.SQL("now()"))


def json_counter(metadata: sql.Composable, key: str) -> sql.Composable:
    """A counter in a jsonb metadata column; 0 when absent, not a number, or out of range."""
    value = sql.SQL("({m} ->> {k})::numeric").format(m=metadata, k=sql.Literal(key))
    return sql.SQL(
        "coalesce(CASE WHEN jsonb_typeof({m} -> {k}) = 'number' THEN"
        " CASE WHEN {v} BETWEEN 0 AND 1000000000 THEN trunc({v})::bigint END END, 0)"
    ).format(m=metadata, k=sql.Literal(key), v=value)
