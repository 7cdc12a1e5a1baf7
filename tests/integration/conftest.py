"""Fixtures shared by the data-plane tests. Each module defines `river`: a (DSN, schema) pair
of a River database prepared its own way (parametrized over the default and a custom schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from devenv import river_jobs as rj
from lifeguard.river import RiverDatabase


@pytest.fixture
def conn(river: tuple[str, str | None]) -> Iterator[rj.Conn]:
    """A plain psycopg connection to the module's River database."""
    with rj.connect(river[0]) as connection:
        yield connection


@pytest.fixture
def schema(river: tuple[str, str | None]) -> str | None:
    return river[1]


@pytest.fixture
async def db(river: tuple[str, str | None]) -> AsyncIterator[RiverDatabase]:
    """The operator's pool on the module's River database."""
    async with RiverDatabase(river[0]) as database:
        yield database
