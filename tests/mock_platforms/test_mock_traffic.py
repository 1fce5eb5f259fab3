"""A request whose sender died before its body was complete never reaches the platform (over real TCP).

Found by tests/e2e/test_all_platforms.py: a gateway SIGKILLed between writing a request's headers and its
body left 互联网+监管 counting a rejected record that nobody had sent — the traffic recorder replayed the
half-received (empty) body to the platform as if it were the whole request.
"""

from __future__ import annotations

import asyncio

import httpx

from mock_platforms.app import create_app
from mock_platforms.server import run_in_background

RECORDS = "/hlwjg/api/v1/approval-records"


async def abandon(base_url: str, head: str, partial_body: bytes) -> None:
    """Send the request line, headers and a part of the body, then close the connection, as a killed client."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode() + partial_body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_request_abandoned_mid_body_is_logged_incomplete_and_not_judged() -> None:
    server = await run_in_background(app=create_app())
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
            token = await http.post(
                "/hlwjg/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "shenguan",
                    "client_secret": "hlwjg-mock-secret",
                },
            )
            head = (
                f"POST {RECORDS} HTTP/1.1\r\nhost: mocks\r\n"
                f"authorization: Bearer {token.json()['access_token']}\r\n"
                "content-type: application/json\r\ncontent-length: 400\r\n\r\n"
            )
            for partial in (b"", b'{"requestId": "r-1", "rec'):
                await abandon(server.base_url, head, partial)

            async def both_logged() -> list[dict[str, object]]:
                while True:
                    entries = [e for e in (await http.get("/hlwjg/_mock/traffic")).json() if e["path"] == RECORDS]
                    if len(entries) == 2:
                        return entries
                    await asyncio.sleep(0.02)

            async with asyncio.timeout(10):
                entries = await both_logged()
            await asyncio.sleep(0.1)  # had the platform been called, its verdict would be counted by now
            held = (await http.get("/hlwjg/_mock/records")).json()
    finally:
        await server.stop()
    assert [e.get("incomplete") for e in entries] == [True, True]
    assert [e["body"] for e in entries] == ["", '{"requestId": "r-1", "rec']
    assert (held["accepted"], held["rejected"], held["duplicate_creations"]) == (0, 0, 0)
