"""``shenguan audit verify``: walk the hash-linked audit chain and name the first broken link."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer

from gateway.audit import AuditEntry, VerifyResult, verify_entries
from gateway.cli_support import ConfigOpt, DbOpt, JsonOpt, load_or_exit, run_on_store

if TYPE_CHECKING:
    from gateway.store import Backend

__all__ = ["app"]

app = typer.Typer(help="Audit chain (全程留痕): verify.", no_args_is_help=True)


@app.command()
def verify(
    config: ConfigOpt = None,
    db: DbOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check every entry's hash and link; exit 1 and name the first broken entry if the chain does not hold.

    The chain is checked with the algorithm recorded beside it (sha256 or sm3), whatever the configuration
    says now: the question is whether the evidence holds, not whether it matches today's settings.
    """
    result = run_on_store(load_or_exit(config, db), _verify)
    if json_:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    elif result.ok:
        typer.echo(f"audit chain holds: {result.checked} entries verified ({result.algorithm})")
    else:
        typer.echo(
            f"audit chain BROKEN at entry {result.first_broken} ({result.broken}): {result.reason} "
            f"({result.checked} verified before it, {result.algorithm})"
        )
    raise typer.Exit(0 if result.ok else 1)


async def _verify(store: Backend) -> VerifyResult:
    # Several instances queue entries and link them in batches: link what is queued, then walk it all.
    await store.chain_audit()
    loop = asyncio.get_running_loop()

    def entries() -> Iterator[AuditEntry]:
        after = 0
        while page := asyncio.run_coroutine_threadsafe(store.audit_entries(after_seq=after), loop).result():
            yield from page
            after = page[-1].seq

    algorithm = getattr(store, "audit_algorithm", "sha256")
    return await asyncio.to_thread(lambda: verify_entries(entries(), algorithm=algorithm))
