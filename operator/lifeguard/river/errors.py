"""Typed failures of the database layer; the supervisor turns each into a status condition.

Messages name the database (host, port, database name) and the schema, never the password:
they end up in JobPolicy conditions and Kubernetes Events that many people can read.
"""

import re

from psycopg.conninfo import conninfo_to_dict


class DatabaseError(Exception):
    """A database operation failed.

    `reason` is the DatabaseConnected condition's reason and `event_reason` the Warning Event's,
    both CamelCase and specific: a user reading them knows whether to fix a password, a schema,
    a network path or a slow query.
    """

    reason = "DatabaseError"
    event_reason = "DatabaseError"


class DatabaseUnavailable(DatabaseError):
    """No connection could be made or kept: the server is down, refuses, or cannot be reached."""

    reason = "Unreachable"
    event_reason = "DatabaseUnreachable"


class AuthenticationFailed(DatabaseUnavailable):
    """The server refused the Secret's credentials (SQLSTATE 28P01 or 28000)."""

    reason = "AuthenticationFailed"
    event_reason = "DatabaseAuthenticationFailed"


class DatabaseNotFound(DatabaseUnavailable):
    """The server has no database of the URL's name (SQLSTATE 3D000)."""

    reason = "DatabaseNotFound"
    event_reason = "DatabaseNotFound"


class DatabaseTimeout(DatabaseError):
    """A statement did not finish within the statement timeout (a lock, an overloaded server)."""

    reason = "Timeout"
    event_reason = "DatabaseTimeout"


class SchemaNotFound(DatabaseError):
    """The schema has no `river_job` table: a wrong schema, or River was never migrated."""

    reason = "SchemaNotFound"
    event_reason = "RiverTablesMissing"


class HeartbeatTableMissing(DatabaseError):
    """The Table heartbeat store is selected but `river_job_heartbeat` does not exist."""

    reason = "HeartbeatTableMissing"
    event_reason = "HeartbeatTableMissing"


# SQLSTATEs of a refused connection: invalid_password, invalid_authorization_specification.
_AUTHENTICATION_STATES = frozenset({"28P01", "28000"})
_NO_DATABASE_STATE = "3D000"  # invalid_catalog_name


# libpq reports a refused connection without a SQLSTATE (there is no result to carry one), so
# the server's and libpq's English messages are the evidence; anything else stays Unreachable.
_AUTHENTICATION_TEXTS = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "no password supplied",
    "password is required",
)
_NO_DATABASE_TEXT = re.compile(r'database "[^"]*" does not exist')
_NO_ROLE_TEXT = re.compile(r'role "[^"]*" does not exist')


def unavailable_class(sqlstate: str | None, message: str = "") -> type[DatabaseUnavailable]:
    """The specific class of a failed connection: authentication, no such database, or
    unreachable, from the SQLSTATE when there is one, else from the message."""
    if sqlstate in _AUTHENTICATION_STATES:
        return AuthenticationFailed
    if sqlstate == _NO_DATABASE_STATE:
        return DatabaseNotFound
    if any(text in message for text in _AUTHENTICATION_TEXTS) or _NO_ROLE_TEXT.search(message):
        return AuthenticationFailed
    if _NO_DATABASE_TEXT.search(message):
        return DatabaseNotFound
    return DatabaseUnavailable


def describe_dsn(dsn: str) -> str:
    """`host:port/dbname` of a DSN (URL or key=value form), without user or password."""
    try:
        params = conninfo_to_dict(dsn)
    except Exception:  # a malformed DSN must still produce a message, never echo the secret
        return "an unparsable database URL"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = params.get("port")
    name = params.get("dbname") or params.get("user") or "?"
    where = f"{host}:{port}" if port else host
    return f"{where}/{name}"


def describe_schema(schema: str | None) -> str:
    return f"schema {schema!r}" if schema is not None else "the search path"
