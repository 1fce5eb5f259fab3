"""PostgreSQL for the benchmark legs: is it there, and a fresh database per leg.

Each leg gets its own database (``shenguan_bench_<pid>_<leg>``), created before the gateways start and
dropped afterwards, so no leg inherits another's rows, indexes or bloat.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator

__all__ = ["DEFAULT_SERVER", "fresh_database", "unavailable"]

DEFAULT_SERVER = os.environ.get("SHENGUAN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


def unavailable(server: str = DEFAULT_SERVER) -> str | None:
    """Why the PostgreSQL legs cannot run here, or ``None`` when they can."""
    if importlib.util.find_spec("gateway.store.postgres") is None:
        return "this shenguan has no PostgreSQL store (gateway/store/postgres.py)"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(f"{server}/postgres", connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {server}: {exc}".strip()
    return None


@contextlib.contextmanager
def fresh_database(name: str, server: str = DEFAULT_SERVER) -> Iterator[str]:
    """Create database ``name`` (dropping a leftover of the same name first), yield its URL, drop it."""
    import psycopg
    from psycopg import sql

    def admin(statement: sql.Composed) -> None:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(statement)

    ident = sql.Identifier(name)
    admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    admin(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        yield f"{server}/{name}"
    finally:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
