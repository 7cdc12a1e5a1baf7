"""Typed failures of the database layer; the supervisor turns each into a status condition.

Messages name the database (host, port, database name) and the schema, never the password:
they end up in JobPolicy conditions and Kubernetes Events that many people can read.
"""

from psycopg.conninfo import conninfo_to_dict


class DatabaseError(Exception):
    """A database operation failed; `reason` is the CamelCase condition reason."""

    reason = "DatabaseError"


class DatabaseUnavailable(DatabaseError):
    """No connection could be made or kept (server down, network, authentication, timeout)."""

    reason = "DatabaseUnavailable"


class SchemaNotFound(DatabaseError):
    """The schema has no `river_job` table: a wrong schema, or River was never migrated."""

    reason = "SchemaNotFound"


class HeartbeatTableMissing(DatabaseError):
    """The Table heartbeat store is selected but `river_job_heartbeat` does not exist."""

    reason = "HeartbeatTableMissing"


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
