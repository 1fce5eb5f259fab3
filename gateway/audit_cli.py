"""``shenguan audit verify``: walk the hash-linked audit chain and name the first broken link."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from gateway.audit import AuditEntry, VerifyResult, verify_entries
from gateway.config import ConfigError, load_config
from gateway.store import open_store
from gateway.store.sqlite import SQLiteStore

__all__ = ["app"]

app = typer.Typer(help="Audit chain (全程留痕): verify.", no_args_is_help=True)


@app.command()
def verify(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")] = None,
    db: Annotated[str | None, typer.Option("--db", help="store path or URL (overrides gateway.db)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check every entry's hash and link; exit 1 and name the first broken entry if the chain does not hold."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    store = open_store(db or cfg.gateway.db)
    if not isinstance(store, SQLiteStore) or not store.path.exists():
        typer.echo(f"error: no store at {db or cfg.gateway.db}", err=True)
        raise typer.Exit(2)
    result = asyncio.run(_verify(store))
    if json_:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    elif result.ok:
        typer.echo(f"audit chain holds: {result.checked} entries verified")
    else:
        typer.echo(
            f"audit chain BROKEN at entry {result.first_broken}: {result.reason} ({result.checked} verified before it)"
        )
    raise typer.Exit(0 if result.ok else 1)


async def _verify(store: SQLiteStore) -> VerifyResult:
    await store.open(exclusive=False)
    try:
        loop = asyncio.get_running_loop()

        def entries() -> Iterator[AuditEntry]:
            after = 0
            while page := asyncio.run_coroutine_threadsafe(store.audit_entries(after_seq=after), loop).result():
                yield from page
                after = page[-1].seq

        return await asyncio.to_thread(verify_entries, entries())
    finally:
        await store.close()
