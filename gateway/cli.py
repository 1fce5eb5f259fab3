"""The ``shenguan`` command line.

Every command that prints a report takes ``--json``; errors go to stderr with a non-zero exit code and a
sentence that says what to fix, never a traceback for a user mistake.
"""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import sys
from typing import Annotated, Any

import typer
import uvicorn

from adapters.scaffold.cli import app as scaffold_app
from gateway.admin_cli import app as admin_app
from gateway.audit_cli import app as audit_app
from gateway.calendar_cli import app as calendar_app
from gateway.cli_support import ConfigOpt, DbOpt, JsonOpt, fail, load_or_exit, run_on_store
from gateway.config import Config, ConfigError
from gateway.logging import configure_logging
from gateway.mapping_cli import app as mapping_app
from gateway.paper_cli import app as paper_app
from gateway.report_cli import app as report_app
from gateway.trace_cli import trace as trace_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="shenguan",
    help="审管联动 integration gateway: relays approval and supervision records exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
adapters_app = typer.Typer(help="Installed adapters.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")
app.add_typer(scaffold_app, name="adapter", help="Write a new adapter: `shenguan adapter new NAME`.")
app.add_typer(calendar_app, name="calendar", help="Working-day (工作日) calendar: add, between, load.")
app.add_typer(mapping_app, name="mapping", help="审管事项关联映射清单: import (versioned), list, restore.")
app.add_typer(audit_app, name="audit", help="Audit chain (全程留痕): verify.")
app.add_typer(admin_app, name="admin", help="Admin API and console accounts: hash-password, new-api-key.")
app.add_typer(paper_app, name="paper", help="Paper delivery (纸质送达): list, render, confirm, recall, return.")
app.add_typer(report_app, name="report", help="Reports: timeliness (考核) of the closed loop's deadlines.")
app.command("trace")(trace_command)


@app.command()
def serve(
    config: ConfigOpt = None,
    db: DbOpt = None,
    listen: Annotated[str | None, typer.Option(help="host:port of the HTTP side")] = None,
) -> None:
    """Run pollers, relay and the HTTP side until SIGTERM (graceful) — or SIGKILL (recovered at restart)."""
    cfg = load_or_exit(config, db)
    if listen is not None:
        cfg.gateway.listen = listen
    configure_logging("json" if cfg.gateway.log_format == "auto" else cfg.gateway.log_format, cfg.gateway.log_level)
    try:
        code = asyncio.run(_serve(cfg))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


async def _serve(cfg: Config) -> int:
    import structlog

    from gateway.http import EmbeddedServer, create_app, parse_listen
    from gateway.intake_process import IntakeProcessError
    from gateway.runtime import Gateway
    from gateway.store.postgres import StoreUnavailableError
    from gateway.store.sqlite import StoreLockedError

    log = structlog.get_logger("shenguan.serve")
    try:
        host, port = parse_listen(cfg.gateway.listen)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    gateway = Gateway(cfg, intake=cfg.gateway.intake)
    try:
        await gateway.start()
    except (StoreLockedError, StoreUnavailableError, IntakeProcessError) as exc:
        raise ConfigError(str(exc)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = EmbeddedServer(
        uvicorn.Config(create_app(gateway), host=host, port=port, log_config=None, access_log=False, lifespan="off")
    )
    # Everything built by now (modules, pydantic's and FastAPI's schemas, adapters, store, the HTTP app) lives
    # as long as the process: freezing it keeps the cyclic collector from traversing it again on every full
    # collection while the relay runs (GC time per relayed message fell by a third; docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    server_task = asyncio.create_task(server.serve(), name="http")
    log.info("serve.listening", url=f"http://{host}:{port}", db=cfg.gateway.db)
    code = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass
        if (err := gateway.failed_task()) is not None:
            log.error("serve.failed", error=repr(err))
            code = 1
            break
        if server_task.done():
            log.error("serve.http_failed", error=repr(server_task.exception()) if not server_task.cancelled() else None)
            code = 1
            break
    log.info("serve.stopping")
    server.should_exit = True
    await asyncio.gather(server_task, return_exceptions=True)
    await gateway.stop()
    return code


@app.command()
def status(config: ConfigOpt = None, db: DbOpt = None, json_: JsonOpt = False) -> None:
    """Counts of messages and deliveries by state."""
    cfg = load_or_exit(config, db)
    counts = run_on_store(cfg, lambda store: store.status())
    if json_:
        typer.echo(json.dumps(counts, ensure_ascii=False))
        return
    typer.echo(f"messages              {counts['messages']}")
    typer.echo(f"rejected              {counts['rejected']}")
    typer.echo(f"duplicates suppressed {counts['duplicates_suppressed']}")
    typer.echo(f"unrouted              {counts['unrouted']}")
    typer.echo("deliveries:")
    deliveries: dict[str, int] = counts["deliveries"]  # type: ignore[assignment]
    for state, n in deliveries.items():
        typer.echo(f"  {state:<16} {n}")


@app.command()
def demo(
    count: Annotated[int, typer.Option(help="distinct approvals to generate")] = 300,
    seed: Annotated[int, typer.Option(help="generator and fault seed")] = 7,
    json_: JsonOpt = False,
) -> None:
    """Run the closed loop across all five platform families in one process, against in-process mocks with faults
    on and a temporary database; print what each platform holds. Exit 1 unless every one holds exactly the unique
    facts with no duplicate creations."""
    from gateway.demo import render_summary, run_demo

    configure_logging("console", "error")  # the injected faults' retries would fill the screen; the table says it all
    summary = asyncio.run(run_demo(count=count, seed=seed))
    typer.echo(json.dumps(summary, ensure_ascii=False) if json_ else render_summary(summary))
    raise typer.Exit(0 if summary["ok"] else 1)


@adapters_app.command("list")
def adapters_list(json_: JsonOpt = False) -> None:
    """Installed adapters: name, version, direction, event types, where each comes from."""
    from adapters.registry import available

    rows = []
    for item in available():
        row: dict[str, Any] = {"name": item.name, "origin": item.origin}
        if item.adapter is not None:
            caps = item.adapter.capabilities
            row |= {
                "version": item.adapter.version,
                "direction": caps.direction.value,
                "event_types": list(caps.event_types),
            }
        else:
            row["error"] = item.error
        rows.append(row)
    if json_:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        if "error" in row:
            typer.echo(f"{row['name']:<12} BROKEN  {row['error']}  ({row['origin']})")
        else:
            types = ", ".join(row["event_types"])
            typer.echo(f"{row['name']:<12} {row['version']:<8} {row['direction']:<12} {types}  ({row['origin']})")


def _attach_mocks() -> None:
    try:
        from mock_platforms.cli import app as mocks_app
    except ImportError as exc:  # the mocks are part of the distribution; say so if they are broken
        mocks_app = typer.Typer(help=f"Mock platforms (unavailable: {exc}).")
    app.add_typer(mocks_app, name="mocks", help="Mock platforms with fault injection, for tests and demos.")


_attach_mocks()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
