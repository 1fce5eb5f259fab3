"""``shenguan mocks …``: a typer sub-app the main CLI attaches, runnable on its own too.

Kept free of gateway imports so the mocks can be started without the gateway installed in a test rig.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mock_platforms.app import create_app
from mock_platforms.server import serve as serve_mocks

DEFAULT_SPECIALTY_DB = Path(".shenguan/mock-specialty.db")

app = typer.Typer(
    help="Run the bundled fake platforms (zwfw, hlwjg) with fault injection.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Keep ``serve`` a sub-command even while it is the only one (typer collapses single-command apps)."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8700,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    specialty_db: Annotated[
        Path,
        typer.Option(
            help="SQLite file of the 前置库 mock (emptied at start); readers use sqlite:///<this path>.",
            envvar="SHENGUAN_MOCK_SPECIALTY_DB",
        ),
    ] = DEFAULT_SPECIALTY_DB,
) -> None:
    """Serve every mock on one port, one path prefix per platform, until interrupted."""
    serve_mocks(
        host,
        port,
        app=create_app(specialty_db=specialty_db),
        log_level=log_level,
        on_started=lambda url: typer.echo(f"mocks listening on {url}"),
    )


if __name__ == "__main__":
    app()
