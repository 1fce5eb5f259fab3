"""HTTP conventions shared by the REST adapters: the client they build, and how they read ``Retry-After``."""

from __future__ import annotations

import asyncio
import functools
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import cast

import httpx

__all__ = ["ExclusiveConnectionPool", "async_client", "retry_after_s", "shared_tls_context"]

#: As httpx's own defaults (``httpx.Limits``): at most this many connections, this many kept when idle.
MAX_CONNECTIONS = 100
MAX_IDLE_CONNECTIONS = 20


class ExclusiveConnectionPool(httpx.AsyncBaseTransport):
    """A pool of keep-alive HTTP/1.1 connections in which a request always has its connection to itself.

    Why not httpx's own pool: when several requests enter httpcore's pool in the same event-loop turn
    (workers woken together, responses read in one ``epoll`` wake-up) it assigns one idle connection to
    all of them; all but one then fail with ``ConnectionNotAvailable`` and go round the pool again, and
    every round checks every pooled socket with ``getpeername`` and ``poll`` system calls
    (encode/httpcore#1035, pydantic/httpx2#974). At eight requests in flight that was 1.8–3 passes per
    request and a third of the relay's CPU per delivery (docs/benchmarks.md).

    Here each connection is an httpx transport limited to one connection, and a request takes an idle
    one (the most recently used: its socket is the likeliest to be still open) or opens a new one, and
    gives it back when its response is closed. Nothing is shared while a request runs, so nothing is
    retried. Connection handling itself — keep-alive, expiry, TLS, timeouts — stays httpx's and
    httpcore's; ``factory`` builds each connection's transport (tests pass their own).

    The connections share one TLS context (``shared_tls_context``): an httpx transport builds its own by
    default, loading the CA bundle, 28 ms of CPU each here — with eight connections per destination and
    three gateway instances on two cores, more than half a second of CPU at the start of every burst
    (docs/benchmarks.md). Settings are the same as httpx's default (``verify=True``, ``trust_env``).
    """

    def __init__(
        self,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_idle: int = MAX_IDLE_CONNECTIONS,
        factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        if max_connections < 1 or max_idle < 0:
            raise ValueError("max_connections must be at least 1 and max_idle at least 0")
        self._factory = factory or _one_connection
        self._idle: list[httpx.AsyncBaseTransport] = []
        self._open = 0
        self._max_idle = max_idle
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        await self._take_slot(request)
        try:
            connection = self._idle.pop() if self._idle else self._connect()
        except BaseException:
            self._slots.release()
            raise
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await self._give_back(connection)
            raise
        body = cast(httpx.AsyncByteStream, response.stream)  # an async transport's response streams async
        response.stream = _ReleasingStream(body, lambda: self._give_back(connection))
        return response

    async def _take_slot(self, request: httpx.Request) -> None:
        """Wait for a free connection slot, no longer than the request's pool timeout."""
        timeout = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(f"no free connection within {timeout} s", request=request) from None

    def _connect(self) -> httpx.AsyncBaseTransport:
        connection = self._factory()
        self._open += 1
        return connection

    async def _give_back(self, connection: httpx.AsyncBaseTransport) -> None:
        try:
            if self._closed or len(self._idle) >= self._max_idle:
                self._open -= 1
                await connection.aclose()
            else:
                self._idle.append(connection)
        finally:
            self._slots.release()

    @property
    def open_connections(self) -> int:
        """Connections open now, idle or carrying a request."""
        return self._open

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for connection in idle:
            await connection.aclose()


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """The process's one TLS context for the adapters' connections, made at the first connection.

    A context holds configuration, not connection state, and is meant to serve many connections; what it
    holds — the CA bundle, honouring ``SSL_CERT_FILE``/``SSL_CERT_DIR`` as httpx does — is the same for all.
    """
    return httpx.create_ssl_context(trust_env=True)


def _one_connection() -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(
        verify=shared_tls_context(), limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
    )


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that hands its connection back to the pool when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], Awaitable[None]]) -> None:
        self._stream = stream
        self._release = release
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if not self._released:
                self._released = True
                await self._release()


def async_client(
    *,
    base_url: str = "",
    timeout_s: float,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """The adapters' HTTP client: ``base_url`` with one trailing slash (so relative paths append), and an
    ``ExclusiveConnectionPool`` unless a transport is given (tests give respx's or an ASGI app's).

    Proxies from the environment (``HTTP_PROXY``…) are not used: the platforms sit on the government
    intranet and are reached directly; a site that needs a proxy passes a transport that has one."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/" if base_url else "",
        headers=headers,
        timeout=timeout_s,
        transport=transport if transport is not None else ExclusiveConnectionPool(),
    )


def retry_after_s(response: httpx.Response, *, now: datetime | None = None) -> float | None:
    """The receiver's ``Retry-After`` in seconds (delta-seconds or HTTP-date), ``None`` when absent or odd.

    Honouring it lets a rate-limited receiver set the pace instead of our backoff guessing.
    """
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(seconds, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
