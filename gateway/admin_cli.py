"""``shenguan admin``: make the secrets of admin API and console accounts.

The configuration holds only hashes (``[admin.users.NAME]``): ``hash-password`` reads a password (prompted
twice, or one line on stdin with ``--stdin`` for scripts) and prints its scrypt hash; ``new-api-key`` prints a
fresh random key — shown this once, it is not stored anywhere — and the hash to configure. Neither command
writes a secret to a file or a log.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from gateway.admin.auth import hash_password, new_api_key
from gateway.cli_support import JsonOpt, fail

__all__ = ["app"]

app = typer.Typer(help="Admin API and console accounts: password hashes and API keys.", no_args_is_help=True)


@app.command("hash-password")
def hash_password_(
    stdin: Annotated[bool, typer.Option("--stdin", help="read the password from the first line of stdin")] = False,
) -> None:
    """Print the scrypt hash of a password, for ``password_hash`` under ``[admin.users.NAME]``."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise fail("the password must have at least 8 characters")
    typer.echo(hash_password(password))


@app.command("new-api-key")
def new_api_key_(json_: JsonOpt = False) -> None:
    """Make a random API key; configure its hash as ``api_key_hash`` and give the key to the client."""
    key, digest = new_api_key()
    if json_:
        typer.echo(json.dumps({"api_key": key, "api_key_hash": digest}))
        return
    typer.echo(f"api key (shown once, give it to the client): {key}")
    typer.echo(f'api_key_hash = "{digest}"')
