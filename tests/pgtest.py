"""PostgreSQL for tests: a throwaway database per test session, a fresh schema per test.

The server is the one at ``SHENGUAN_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
trust auth). When it cannot be reached the PostgreSQL tests are skipped with the reason — except under
``CI=true``, where a missing server is a failure: CI must not go green by running half the suite.

Each test gets its own schema in the session's database (``?options=-csearch_path=…`` in the store URL),
which is far cheaper than a database per test and just as isolated: the store keys its advisory locks by
schema too.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

ADMIN_URL = os.environ.get("SHENGUAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

__all__ = [
    "ADMIN_URL",
    "create_database",
    "drop_database",
    "drop_stale_databases",
    "pg_database",
    "pg_url",
    "require_pg",
    "with_schema",
]


def _probe() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip()}"
    return None


def require_pg() -> None:
    """Skip (locally) or fail (under CI=true) when the PostgreSQL server is unreachable."""
    problem = _probe()
    if problem is None:
        return
    message = f"PostgreSQL at {ADMIN_URL} is not reachable ({problem})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI needs it for the PostgreSQL store tests", pytrace=False)
    pytest.skip(f"{message}; set SHENGUAN_TEST_PG or start the server to run these tests")


def _url_for(database: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


def create_database(prefix: str = "shenguan_t") -> str:
    """Create a fresh database and return its URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _url_for(name)


def drop_stale_databases(prefixes: tuple[str, ...] = ("shenguan_t", "shenguan_e2e")) -> None:
    """Drop test databases left by test runs that were killed before their clean-up (their process is gone).

    Names carry the creating process's id; only a local server's are judged, where that id means something.
    """
    if urlsplit(ADMIN_URL).hostname not in ("127.0.0.1", "localhost", "::1", None):
        return
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname ~ '^shenguan_[a-z0-9]+_[0-9]+_'")
        names = [r[0] for r in rows]
        for name in names:
            prefix, pid = name.rsplit("_", 2)[:2]
            if prefix in prefixes and pid.isdigit() and not _alive(int(pid)):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (created beforehand) as their search path."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a database created for this test session and dropped after it."""
    require_pg()
    drop_stale_databases()
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A store URL whose schema is new and empty; dropped after the test."""
    schema = f"s_{secrets.token_hex(6)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(pg_database, schema)
    finally:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
