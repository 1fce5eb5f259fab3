"""``shenguan admin``: the hashes it prints are what the configuration and the authenticator accept."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gateway.admin.auth import Authenticator, api_key_hash, verify_password
from gateway.cli import app
from gateway.config import ConfigError, load_config


def test_hash_password_from_stdin_verifies_and_loads_as_config(tmp_path) -> None:
    result = CliRunner().invoke(app, ["admin", "hash-password", "--stdin"], input="s3cret-enough\n")
    assert result.exit_code == 0, result.output
    digest = result.output.strip()
    assert digest.startswith("scrypt$") and "s3cret-enough" not in digest
    assert verify_password("s3cret-enough", digest) and not verify_password("s3cret-enougH", digest)
    config = tmp_path / "c.toml"
    config.write_text(f'[admin.users.wang]\nrole = "operator"\npassword_hash = "{digest}"\n', encoding="utf-8")
    assert load_config(config, environ={}).admin.users["wang"].role == "operator"


def test_hash_password_refuses_a_short_password() -> None:
    result = CliRunner().invoke(app, ["admin", "hash-password", "--stdin"], input="short\n")
    assert result.exit_code == 2 and "at least 8 characters" in result.output


def test_new_api_key_prints_a_key_once_and_the_hash_to_configure(tmp_path) -> None:
    result = CliRunner().invoke(app, ["admin", "new-api-key", "--json"])
    body = json.loads(result.stdout)
    assert body["api_key_hash"] == api_key_hash(body["api_key"])
    config = tmp_path / "c.toml"
    config.write_text(f'[admin.users.ci]\nrole = "viewer"\napi_key_hash = "{body["api_key_hash"]}"\n', encoding="utf-8")
    auth = Authenticator(load_config(config, environ={}).admin)
    who = auth.api_key(body["api_key"])
    assert who is not None and (who.name, who.role.value, who.actor) == ("ci", "viewer", "api:ci")
    assert auth.api_key(body["api_key"] + "x") is None


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        ('role = "operator"', "give password_hash or api_key_hash"),
        ('role = "operator"\npassword_hash = "plain-text"', "not a hash from `shenguan admin hash-password`"),
        ('role = "admin"\napi_key_hash = "sha256$00"', "role"),
    ],
)
def test_bad_admin_users_are_refused_at_load(tmp_path, user: str, problem: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[admin.users.wang]\n{user}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_config(config, environ={})
