"""A refused connection is named: authentication, no such database, or unreachable."""

import pytest

from lifeguard.river.errors import (
    AuthenticationFailed,
    DatabaseNotFound,
    DatabaseUnavailable,
    unavailable_class,
)


@pytest.mark.parametrize(
    ("sqlstate", "message", "expected"),
    [
        ("28P01", "", AuthenticationFailed),
        ("28000", "", AuthenticationFailed),
        ("3D000", "", DatabaseNotFound),
        (None, 'FATAL:  password authentication failed for user "river"', AuthenticationFailed),
        (
            None,
            'FATAL:  no pg_hba.conf entry for host "10.0.0.7", user "river"',
            AuthenticationFailed,
        ),
        (None, 'FATAL:  role "nobody" does not exist', AuthenticationFailed),
        (None, "fe_sendauth: no password supplied", AuthenticationFailed),
        (None, 'FATAL:  database "jobs" does not exist', DatabaseNotFound),
        (None, "connection refused\n\tIs the server running on that host", DatabaseUnavailable),
        (None, "timeout expired", DatabaseUnavailable),
        (None, 'could not translate host name "db" to address', DatabaseUnavailable),
    ],
)
def test_a_refused_connection_is_classified_by_sqlstate_or_message(
    sqlstate: str | None, message: str, expected: type[DatabaseUnavailable]
) -> None:
    assert unavailable_class(sqlstate, message) is expected


def test_each_failure_has_a_specific_condition_and_event_reason() -> None:
    reasons = {
        cls.__name__: (cls.reason, cls.event_reason)
        for cls in (AuthenticationFailed, DatabaseNotFound, DatabaseUnavailable)
    }
    assert reasons == {
        "AuthenticationFailed": ("AuthenticationFailed", "DatabaseAuthenticationFailed"),
        "DatabaseNotFound": ("DatabaseNotFound", "DatabaseNotFound"),
        "DatabaseUnavailable": ("Unreachable", "DatabaseUnreachable"),
    }
