"""The commented SOAP section of examples/shenguan.toml, uncommented, is a working configuration: its options
are the ones the bundled mock accepts, so an operator (or ``shenguan demo``) can switch it on as it stands."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx

from adapters.soap import SoapAdapter
from factories import envelope
from gateway.config import Config
from gateway.routing import ConfigRouter
from gateway.store import Route
from mock_platforms import create_app

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


async def test_the_commented_soap_destination_delivers_to_the_mock() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    destination = commented_block(lines, "# Uncomment with the route below.")
    routes = commented_block(lines, "# Approvals to the legacy SOAP exchange as well.")
    raw = tomllib.loads(text)
    raw["destinations"] |= tomllib.loads(destination)["destinations"]
    raw["routes"] += tomllib.loads(routes)["routes"]
    config = Config.model_validate(raw)
    soap = config.destinations["soap"]
    assert soap.adapter == "soap" and soap.concurrency == 4
    assert Route("soap") in ConfigRouter(config.routes)(envelope("A"))

    options = soap.adapter_options()
    assert options["base_url"] == "http://127.0.0.1:8700/soap", "the port `shenguan mocks serve` listens on"
    app = create_app()
    adapter = SoapAdapter(
        "soap",
        base_url="http://mocks/soap",
        user=options["user"],
        password=options["password"],
        service_id=options["service_id"],
        receiver=options["receiver"],
        sender=options["sender"],
        transport=httpx.ASGITransport(app=app),
    )
    try:
        receipt = await adapter.deliver(envelope("A"), "example-key")
    finally:
        await adapter.aclose()
    assert receipt.remote_id and app.platforms["soap"].records_report()["accepted"] == 1
