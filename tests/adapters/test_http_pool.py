"""``adapters.http.ExclusiveConnectionPool``: one request per connection, connections reused, limits kept.

The fakes stand in for one-connection transports and fail loudly if two requests ever share one; the
socket test runs the real httpx/httpcore stack against a loopback HTTP/1.1 server and counts TCP
connections and httpcore's attempts per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest

from adapters.http import ExclusiveConnectionPool, async_client


class FakeConnection(httpx.AsyncBaseTransport):
    """A connection's transport that answers after a pause and refuses to carry two requests at once."""

    def __init__(self, registry: list[FakeConnection], *, pause_s: float = 0.005, fail_first: bool = False) -> None:
        self.busy = False
        self.requests = 0
        self.closed = False
        self.pause_s = pause_s
        self.fail_first = fail_first
        registry.append(self)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert not self.closed, "request on a closed connection"
        assert not self.busy, "two requests on one connection"
        self.busy = True
        self.requests += 1
        try:
            await asyncio.sleep(self.pause_s)
            if self.fail_first and self.requests == 1:
                raise httpx.ConnectError("refused", request=request)
        except BaseException:
            self.busy = False
            raise
        return httpx.Response(200, stream=_Body(self), request=request)

    async def aclose(self) -> None:
        self.closed = True


class _Body(httpx.AsyncByteStream):
    def __init__(self, connection: FakeConnection) -> None:
        self._connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"ok"

    async def aclose(self) -> None:
        self._connection.busy = False


async def _burst(client: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    return await asyncio.gather(*(client.get(f"/r/{i}") for i in range(count)))


async def test_concurrent_requests_never_share_a_connection_and_idle_ones_are_reused() -> None:
    made: list[FakeConnection] = []
    pool = ExclusiveConnectionPool(factory=lambda: FakeConnection(made))
    async with httpx.AsyncClient(base_url="http://receiver", transport=pool) as client:
        first = await _burst(client, 8)
        second = await _burst(client, 8)
    assert [r.text for r in first + second] == ["ok"] * 16
    assert len(made) == 8  # the second burst found the first one's connections idle
    assert sum(c.requests for c in made) == 16
    assert all(c.closed for c in made)  # closing the client closed every idle connection


async def test_max_connections_bounds_requests_in_flight() -> None:
    made: list[FakeConnection] = []
    pool = ExclusiveConnectionPool(max_connections=3, factory=lambda: FakeConnection(made))
    async with httpx.AsyncClient(base_url="http://receiver", transport=pool) as client:
        responses = await _burst(client, 20)
    assert len(responses) == 20 and len(made) == 3


async def test_idle_connections_beyond_max_idle_are_closed() -> None:
    made: list[FakeConnection] = []
    pool = ExclusiveConnectionPool(max_idle=2, factory=lambda: FakeConnection(made))
    async with httpx.AsyncClient(base_url="http://receiver", transport=pool) as client:
        await _burst(client, 6)
        assert pool.open_connections == 2
        assert sum(c.closed for c in made) == 4


async def test_pool_timeout_when_every_connection_is_busy() -> None:
    made: list[FakeConnection] = []
    pool = ExclusiveConnectionPool(max_connections=1, factory=lambda: FakeConnection(made, pause_s=0.5))
    async with httpx.AsyncClient(base_url="http://receiver", transport=pool) as client:
        slow = asyncio.create_task(client.get("/slow"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/waits", timeout=httpx.Timeout(5.0, pool=0.05))
        assert (await slow).status_code == 200


async def test_a_failed_request_gives_its_connection_back() -> None:
    made: list[FakeConnection] = []
    pool = ExclusiveConnectionPool(max_connections=1, factory=lambda: FakeConnection(made, fail_first=True))
    async with httpx.AsyncClient(base_url="http://receiver", transport=pool) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/first")
        assert (await client.get("/second")).status_code == 200  # the only slot was released
    assert len(made) == 1


async def test_closed_pool_refuses_requests() -> None:
    pool = ExclusiveConnectionPool(factory=lambda: FakeConnection([]))
    await pool.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.handle_async_request(httpx.Request("GET", "http://receiver/"))


async def test_over_real_sockets_each_request_takes_one_pass_and_connections_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight workers started in one event-loop turn, 200 requests: httpcore is asked once per request
    (httpx's shared pool retries with ``ConnectionNotAvailable`` here), over at most eight TCP connections."""
    accepted = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    attempts = 0
    original = httpcore.AsyncHTTP11Connection.handle_async_request

    async def counted(self: httpcore.AsyncHTTP11Connection, request: httpcore.Request) -> httpcore.Response:
        nonlocal attempts
        attempts += 1
        return await original(self, request)

    monkeypatch.setattr(httpcore.AsyncHTTP11Connection, "handle_async_request", counted)
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    done = 0
    async with server, async_client(base_url=f"http://127.0.0.1:{port}", timeout_s=10) as client:

        async def worker() -> None:
            nonlocal done
            while done < 200:
                done += 1
                assert (await client.get("/x")).text == "ok"

        await asyncio.gather(*(worker() for _ in range(8)))
        assert isinstance(client._transport, ExclusiveConnectionPool)
        assert client._transport.open_connections <= 8
    assert attempts == done == 200
    assert accepted <= 8


async def test_connections_share_one_tls_context() -> None:
    """Each connection's transport would otherwise load the CA bundle again (28 ms of CPU here)."""
    pool = ExclusiveConnectionPool()
    first, second = pool._connect(), pool._connect()  # what a request opens when no connection is idle
    contexts = {id(t._pool._ssl_context) for t in (first, second) if isinstance(t, httpx.AsyncHTTPTransport)}
    assert len(contexts) == 1
    await first.aclose()
    await second.aclose()
