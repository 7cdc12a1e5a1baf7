"""How the operator's connection cap is shared out between database pools."""

from __future__ import annotations

import pytest

from lifeguard.supervisor.pools import database_identity, shares


@pytest.mark.parametrize(
    ("users", "cap", "expected"),
    [
        ({}, 10, {}),
        # One database: the whole cap.
        ({"a": 200}, 10, {"a": 10}),
        # In proportion to the policies using each, at least one each.
        ({"a": 3, "b": 1}, 10, {"a": 7, "b": 3}),
        ({"a": 99, "b": 1}, 10, {"a": 9, "b": 1}),
        ({"a": 1, "b": 1, "c": 1}, 10, {"a": 4, "b": 3, "c": 3}),
        # A pool whose last policy is moving away still gets one.
        ({"a": 0, "b": 4}, 10, {"a": 1, "b": 9}),
        # More databases than the cap: one connection each (the cap cannot hold).
        ({"a": 1, "b": 1, "c": 1}, 2, {"a": 1, "b": 1, "c": 1}),
    ],
)
def test_shares_of_the_cap(users: dict[str, int], cap: int, expected: dict[str, int]) -> None:
    found = shares(users, cap)

    assert found == expected
    assert sum(found.values()) <= max(cap, len(users))


def test_database_identity_hides_the_url_and_tells_schemas_apart() -> None:
    dsn = "postgresql://river:s3cr3t@db:5432/river"

    same = database_identity(dsn, None)

    assert "s3cr3t" not in same
    assert same == database_identity(dsn, None)
    assert same != database_identity(dsn, "other")
    assert same != database_identity("postgresql://river:new@db:5432/river", None)
