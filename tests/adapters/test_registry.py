"""Adapter discovery: built-ins register like third parties; a broken one is named and isolated."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint, entry_points

import pytest
from typer.testing import CliRunner

from adapters import registry
from adapters.registry import AdapterLoadError
from gateway.cli import app


@pytest.fixture
def with_broken_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    real = list(entry_points(group=registry.ENTRY_POINT_GROUP))
    broken = [
        EntryPoint("broken_import", "shenguan_adapter_missing.module:Adapter", registry.ENTRY_POINT_GROUP),
        EntryPoint("not_an_adapter", "json:dumps", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [*real, *broken] if group == registry.ENTRY_POINT_GROUP else []
    )


def test_builtins_are_discovered_through_entry_points() -> None:
    names = {a.name for a in registry.available() if a.adapter is not None}
    assert {"zwfw", "hlwjg"} <= names
    assert registry.load("hlwjg").capabilities.idempotent_receiver


def test_unknown_adapter_names_the_known_ones() -> None:
    with pytest.raises(AdapterLoadError, match=r"no adapter named 'nope' is installed \(known: .*hlwjg"):
        registry.load("nope")


@pytest.mark.usefixtures("with_broken_adapter")
def test_a_broken_adapter_is_reported_by_name_and_the_others_still_load() -> None:
    loaded = {a.name: a for a in registry.available()}
    assert loaded["hlwjg"].adapter is not None and loaded["zwfw"].adapter is not None
    assert loaded["broken_import"].adapter is None and "ModuleNotFoundError" in (loaded["broken_import"].error or "")
    assert "lacks from_config" in (loaded["not_an_adapter"].error or "")
    with pytest.raises(AdapterLoadError, match=r"adapter 'broken_import' .* failed to load: ModuleNotFoundError"):
        registry.load("broken_import")


@pytest.mark.usefixtures("with_broken_adapter")
def test_adapters_list_shows_broken_ones_without_failing() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["adapters", "list", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert "error" in rows["broken_import"] and rows["hlwjg"]["direction"] == "destination"
    text = runner.invoke(app, ["adapters", "list"]).output
    assert "broken_import" in text and "BROKEN" in text
