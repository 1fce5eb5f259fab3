"""Configuration: the example file loads, env overrides apply, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "shenguan.toml"


def test_example_config_loads_and_splits_adapter_options() -> None:
    cfg = load_config(EXAMPLE, environ={})
    hlwjg = cfg.destinations["hlwjg"]
    assert hlwjg.concurrency == 8 and hlwjg.adapter == "hlwjg"
    assert hlwjg.adapter_options() == {
        "base_url": "http://127.0.0.1:8700/hlwjg",
        "client_id": "shenguan",
        "client_secret": "hlwjg-mock-secret",
        "timeout_s": 10,
    }
    assert cfg.routes[0].destinations == ["hlwjg", "soap"]


def test_environment_overrides(tmp_path) -> None:
    env = {
        "SHENGUAN_DB": str(tmp_path / "x.db"),
        "SHENGUAN__DESTINATIONS__HLWJG__CLIENT_SECRET": "from-env",
        "SHENGUAN__DESTINATIONS__HLWJG__CONCURRENCY": "3",
    }
    cfg = load_config(EXAMPLE, environ=env)
    assert cfg.gateway.db == str(tmp_path / "x.db")
    assert cfg.destinations["hlwjg"].adapter_options()["client_secret"] == "from-env"
    assert cfg.destinations["hlwjg"].concurrency == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[gateway\n", "not valid TOML"),
        ('[destinations.x]\nadapter = "hlwjg"\nconcurrency = 0\n', "destinations.x.concurrency"),
        ('[[routes]]\ntype = "approval.decided"\ndestinations = ["nowhere"]\n', "names destination 'nowhere'"),
        ('[gateway]\ncolour = "blue"\n', "gateway.colour"),
    ],
)
def test_mistakes_are_named(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/shenguan.toml", environ={})
