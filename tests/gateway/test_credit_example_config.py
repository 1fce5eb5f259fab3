"""The credit section of examples/shenguan.toml is a working configuration: its adapter builds with the options the
bundled mock accepts, and its routes send granted approvals (and penalties) there, never refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.credit import CreditAdapter
from factories import envelope
from gateway.config import load_config
from gateway.routing import ConfigRouter
from gateway.store import Route

EXAMPLE = Path(__file__).parents[2] / "examples" / "shenguan.toml"


def test_the_credit_destination_and_its_routes() -> None:
    config = load_config(EXAMPLE, environ={})
    credit = config.destinations["credit"]
    assert credit.batch_size == 200 and credit.batch_max_age_s == 2
    adapter = CreditAdapter.from_config("credit", credit.adapter_options())
    try:
        assert adapter.publisher.authority_name == "连云港市行政审批局" and adapter.publisher.authorities
    finally:
        asyncio.run(adapter.aclose())
    route = ConfigRouter(config.routes)
    assert route(envelope("A")) == [Route("hlwjg"), Route("soap"), Route("credit")]
    assert route(envelope("B", result="rejected")) == [Route("hlwjg"), Route("soap")]
