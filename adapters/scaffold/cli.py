"""``shenguan adapter new NAME``: the command-line face of the scaffold (``adapters.scaffold``).

It lives beside the scaffold rather than in ``gateway/cli.py`` because creating an adapter is SDK work:
it needs no config, store or runtime, and the gateway only attaches this sub-app next to ``adapters``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adapters.scaffold import ScaffoldError, create_adapter_package, names_for

__all__ = ["app"]

app = typer.Typer(
    help="Write a new adapter: `shenguan adapter new NAME` creates an installable package that passes the "
    "conformance kit as generated.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Create adapters (the SDK side; see `shenguan adapters list` for installed ones)."""
    # A callback keeps `new` a sub-command even while it is the only one.


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="adapter name: lowercase letters, digits, underscores (e.g. city_sms)")],
    directory: Annotated[
        Path, typer.Option("--dir", help="folder in which shenguan-adapter-NAME/ is created")
    ] = Path("."),
) -> None:
    """Create shenguan-adapter-NAME/: a destination adapter, a mock of its platform, samples and tests."""
    try:
        target = create_adapter_package(name, directory)
    except ScaffoldError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    names = names_for(name)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    typer.echo(f"created {target}/ ({names.distribution}, class {names.class_name})")
    for file in files:
        typer.echo(f"  {file}")
    typer.echo(
        "next:\n"
        f"  cd {target}\n"
        '  pip install -e ".[test]"\n'
        "  pytest                      # passes as generated; keep it passing while you work\n"
        "  then follow the TODO list at the top of README.md"
    )
