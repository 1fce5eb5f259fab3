"""The commented credit section of examples/shenguan.toml, uncommented, is a working configuration."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

from adapters.credit import CreditAdapter
from factories import envelope
from gateway.config import Config
from gateway.routing import ConfigRouter
from gateway.store import Route

EXAMPLE = Path(__file__).parents[2] / "examples" / "shenguan.toml"


def commented_block(lines: list[str], after: str) -> str:
    """The commented lines after the one starting with ``after``, up to the next non-comment line, uncommented."""
    start = next(i for i, line in enumerate(lines) if line.startswith(after)) + 1
    block = []
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        block.append(line.removeprefix("# "))
    return "\n".join(block) + "\n"


def test_the_commented_credit_destination_and_routes_work_when_uncommented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    destination = commented_block(lines, "# is dead with the platform's reason")
    routes = commented_block(lines, "# Granted approvals to the credit platform")
    raw = tomllib.loads(text)
    raw["destinations"] |= tomllib.loads(destination)["destinations"]
    raw["routes"] += tomllib.loads(routes)["routes"]
    config = Config.model_validate(raw)
    credit = config.destinations["credit"]
    assert credit.batch_size == 200 and credit.batch_max_age_s == 2
    adapter = CreditAdapter.from_config("credit", credit.adapter_options())
    try:
        assert adapter.publisher.authority_name == "连云港市行政审批局" and adapter.publisher.authorities
    finally:
        asyncio.run(adapter.aclose())
    route = ConfigRouter(config.routes)
    assert route(envelope("A")) == [Route("hlwjg"), Route("credit")]
    assert route(envelope("B", result="rejected")) == [Route("hlwjg")]
