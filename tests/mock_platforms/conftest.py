"""Fixtures for the mock-platform tests: an app on a controllable clock, an in-process client, and helpers
that speak each platform's native auth (x-tif signatures, OAuth2 tokens) the way a client must."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from mockkit import FakeClock, approval

from mock_platforms.app import MockPlatformsApp, create_app
from mock_platforms.zwfw import sign


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> MockPlatformsApp:
    return create_app(clock=clock)


@pytest.fixture
async def client(app: MockPlatformsApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mocks") as c:
        yield c


@pytest.fixture
def zwfw_headers(clock: FakeClock) -> Callable[..., dict[str, str]]:
    """Build signed x-tif headers; every call uses a fresh nonce unless one is given."""
    counter = itertools.count(1)

    def build(
        *,
        nonce: str | None = None,
        token: str = "zwfw-mock-token",
        paasid: str = "shenguan",
        timestamp: str | None = None,
    ) -> dict[str, str]:
        ts = timestamp if timestamp is not None else str(int(clock()))
        n = nonce if nonce is not None else f"nonce-{next(counter)}"
        return {
            "x-tif-paasid": paasid,
            "x-tif-timestamp": ts,
            "x-tif-nonce": n,
            "x-tif-signature": sign(ts, token, n),
        }

    return build


@pytest.fixture
def hlwjg_auth(client: httpx.AsyncClient) -> Callable[[], Any]:
    """Coroutine function returning a fresh ``Authorization`` header for hlwjg."""

    async def get() -> dict[str, str]:
        reply = await client.post(
            "/hlwjg/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "shenguan",
                "client_secret": "hlwjg-mock-secret",
            },
        )
        assert reply.status_code == 200, reply.text
        return {"Authorization": f"Bearer {reply.json()['access_token']}"}

    return get


@pytest.fixture
def make_approval() -> Callable[..., dict[str, Any]]:
    return approval
