"""What every ``shenguan`` sub-command shares: its common options, one way to fail, and one way to open the
store for a short operator command.

Operator commands (status, mapping, paper, audit) open the SQLite store *non-exclusively*: they run
while ``shenguan serve`` holds its one-process lock, and each of their operations is its own transaction.
A PostgreSQL store is shared by design; an operator command opens a small pool of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from gateway.config import Config, ConfigError, load_config
from gateway.store import open_store
from gateway.store.postgres import PostgresStore, StoreMissingError, StoreUnavailableError
from gateway.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from gateway.store import Backend

__all__ = ["ConfigOpt", "DbOpt", "JsonOpt", "fail", "load_or_exit", "run_on_store"]

T = TypeVar("T")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")]
DbOpt = Annotated[str | None, typer.Option("--db", help="store path or URL (overrides gateway.db)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise: a sentence, never a traceback."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_or_exit(config: Path | None, db: str | None) -> Config:
    """The configuration with ``--db`` applied, or exit 2 naming what is wrong with it."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if db is not None:
        cfg.gateway.db = db
    return cfg


def run_on_store(cfg: Config, fn: Callable[[Backend], Awaitable[T]], *, create: bool = False) -> T:
    """Open the store non-exclusively, run ``fn`` on it, close it. Without ``create`` a missing store is an error
    (a typo in ``--db`` must not silently create an empty database); so is a PostgreSQL server out of reach."""
    store = open_store(cfg.gateway.db, sqlite_synchronous=cfg.gateway.sqlite_synchronous, pool_size=2)
    if isinstance(store, SQLiteStore) and not create and not store.path.exists():
        raise fail(f"no store at {store.path} (wrong --db or --config?)")

    async def main() -> T:
        try:
            if isinstance(store, PostgresStore):
                await store.open(create=create)
            else:
                await store.open(exclusive=False)
        except (StoreUnavailableError, StoreMissingError) as exc:
            raise fail(str(exc)) from None
        try:
            return await fn(store)  # type: ignore[arg-type]
        finally:
            await store.close()

    return asyncio.run(main())
