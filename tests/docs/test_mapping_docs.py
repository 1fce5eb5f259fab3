"""The "mapping file, no Python" section of docs/writing-an-adapter.md shows real files, verbatim, and a
config that builds the adapters it names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from adapters.mapped import MappedAdapter
from adapters.registry import load
from gateway.config import Config

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "writing-an-adapter.md"
HEADING = "## Adding a specialty system with a mapping file, no Python"
BLOCK = re.compile(r"(?:From `(?P<path>[^`]+)`:\n\n)?```toml\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def section() -> str:
    text = TUTORIAL.read_text(encoding="utf-8")
    start = text.index(f"\n{HEADING}\n")
    return text[start : text.index("\n## ", start + len(HEADING))]


def test_every_excerpt_is_taken_verbatim_from_the_file_it_names() -> None:
    blocks = list(BLOCK.finditer(section()))
    excerpts = [b for b in blocks if b["path"]]
    assert len(excerpts) >= 5
    for block in excerpts:
        source = (ROOT / block["path"]).read_text(encoding="utf-8")
        assert block["body"] in source, f"the excerpt from {block['path']} is not in that file (any more)"
        tomllib.loads(block["body"])


async def test_the_config_shown_builds_the_adapters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (config_block,) = [b["body"] for b in BLOCK.finditer(section()) if not b["path"]]
    config = Config.model_validate(tomllib.loads(config_block))
    monkeypatch.chdir(ROOT)  # mapping paths are relative to the working directory, as for `shenguan serve`
    for name, source in config.sources.items():
        options = source.adapter_options()
        if "url" in options:
            options["url"] = f"sqlite:///{tmp_path / 'exchange.db'}"
        adapter = load(source.adapter).from_config(name, options)
        assert isinstance(adapter, MappedAdapter) and adapter.event_types == ("approval.decided",)
        await adapter.aclose()
