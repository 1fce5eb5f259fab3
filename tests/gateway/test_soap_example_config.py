"""The SOAP section of examples/shenguan.toml is a working configuration: its options are the ones the bundled mock
accepts, so the example's approvals reach the 前置机 as it stands."""

from __future__ import annotations

from pathlib import Path

import httpx

from adapters.soap import SoapAdapter
from factories import envelope
from gateway.config import load_config
from gateway.routing import ConfigRouter
from gateway.store import Route
from mock_platforms import create_app

EXAMPLE = Path(__file__).parents[2] / "examples" / "shenguan.toml"


async def test_the_soap_destination_delivers_to_the_mock() -> None:
    config = load_config(EXAMPLE, environ={})
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
