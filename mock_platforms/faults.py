"""Fault settings per platform and the ASGI middleware that injects them into the native API.

Faults live at the ASGI level, outside FastAPI's routing, for two reasons. First, they must be platform
agnostic: a platform module describes its happy path and its one server-error reply, nothing else. Second,
the most important fault — ``drop_response_rate``, where the mock commits the request and then drops the
connection without answering, the case that breeds duplicates — needs the server's raw ``send`` callable to
reach the TCP transport, and only the outermost layer of the stack ever sees it (Starlette's own middleware
wraps ``send`` in closures). ``_mock/`` control endpoints are never faulted, so a test can always inspect and
repair a mock that is "down".
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Key under which the fault middleware notes, in the ASGI scope, which fault it applied (read by traffic.py).
FAULT_SCOPE_KEY = "mock_platforms.fault"
DEFAULT_TOKEN_TTL_S = 3600


def native_platform(path: str, platforms: Mapping[str, object]) -> str | None:
    """Name of the platform whose *native* API ``path`` belongs to, or None (``_mock/``, unknown prefix)."""
    parts = path.split("/", 3)
    if len(parts) < 3 or parts[1] not in platforms:
        return None
    return None if parts[2] == "_mock" else parts[1]


class FaultUpdate(BaseModel):
    """Body of ``POST /{platform}/_mock/faults``: any subset of the settings; the rest stay."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_ms: float | None = Field(default=None, ge=0.0)
    down: bool | None = None
    drop_response_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    token_ttl_s: float | None = Field(default=None, ge=0.0)
    malformed_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = None


@dataclass(slots=True)
class FaultSettings:
    """The current fault settings of one platform; the defaults mean "healthy"."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    down: bool = False
    drop_response_rate: float = 0.0
    token_ttl_s: float = DEFAULT_TOKEN_TTL_S
    malformed_rate: float = 0.0
    seed: int = 0


@dataclass(slots=True)
class FaultState:
    """Settings plus the one seeded RNG every fault draw of a platform uses, for replayable chaos.

    ``server_error`` is the platform's own way of saying "try again later" (zwfw: HTTP 200 with code 500 in
    the body; hlwjg: HTTP 500; soap: HTTP 500 with a SOAP fault), returned when ``error_rate`` fires. A dict
    body is sent as JSON; bytes are sent as they are, with ``server_error_content_type``.
    """

    server_error_status: int
    server_error_body: dict[str, Any] | bytes
    server_error_content_type: bytes = b"application/json"
    settings: FaultSettings = field(default_factory=FaultSettings)
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def update(self, change: FaultUpdate) -> dict[str, Any]:
        """Merge a partial update; a ``seed`` reseeds the RNG. Returns the full settings."""
        for key, value in change.model_dump(exclude_none=True).items():
            setattr(self.settings, key, value)
        if change.seed is not None:
            self.rng.seed(change.seed)
        return self.as_dict()

    def reset(self) -> None:
        """Back to healthy defaults and a fresh RNG with seed 0."""
        self.settings = FaultSettings()
        self.rng.seed(0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self.settings)

    def draw(self, rate: float) -> bool:
        """True with probability ``rate``; a zero rate consumes no randomness, so enabling one fault does not
        shift the draws of another."""
        return rate > 0 and self.rng.random() < rate


class ResponseDropped(ConnectionAbortedError):
    """Raised after a deliberately incomplete response when the server offers no transport to abort."""


class FaultInjectionMiddleware:
    """Apply each platform's faults to its native API; must be the outermost ASGI layer (see module doc).

    Order per request: ``latency_ms`` sleep → ``down`` (503, state untouched) → ``error_rate`` (server-error
    reply, state untouched) → handle the request → ``drop_response_rate`` (abort the connection) or
    ``malformed_rate`` (HTTP 200 with a truncated body).
    """

    def __init__(self, app: ASGIApp, platforms: Mapping[str, FaultState]) -> None:
        self.app = app
        self.platforms = platforms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = native_platform(scope["path"], self.platforms) if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        faults = self.platforms[name]
        if faults.settings.latency_ms > 0:
            await asyncio.sleep(faults.settings.latency_ms / 1000)
        settings = faults.settings
        if settings.down:
            scope[FAULT_SCOPE_KEY] = "down"
            await _send_body(send, 503, b"Service Unavailable", b"text/plain; charset=utf-8")
            return
        if faults.draw(settings.error_rate):
            scope[FAULT_SCOPE_KEY] = "error"
            error_body = faults.server_error_body
            body = error_body if isinstance(error_body, bytes) else json.dumps(error_body, ensure_ascii=False).encode()
            await _send_body(send, faults.server_error_status, body, faults.server_error_content_type)
            return
        drop = faults.draw(settings.drop_response_rate)
        malformed = not drop and faults.draw(settings.malformed_rate)
        if not (drop or malformed):
            await self.app(scope, receive, send)
            return
        buffer = _ResponseBuffer()
        await self.app(scope, receive, buffer.send)
        if drop:
            scope[FAULT_SCOPE_KEY] = "drop"
            await _drop(send, buffer)
        else:
            scope[FAULT_SCOPE_KEY] = "malformed"
            await _send_body(send, 200, _garble(buffer.body, faults.rng), _content_type(buffer.start))


class _ResponseBuffer:
    """Collects what the app sends so the middleware can decide what, if anything, reaches the client."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


def _content_type(start: Message | None) -> bytes:
    """The content type the app declared (a garbled SOAP reply stays ``text/xml``), JSON if it declared none."""
    for name, value in (start or {}).get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value)
    return b"application/json"


async def _send_body(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drop(send: Send, buffer: _ResponseBuffer) -> None:
    """Close the connection with no response, after the app has committed its state.

    Under uvicorn ``send`` is a bound method of the request/response cycle, which holds the transport:
    aborting it resets the TCP connection, exactly like a crash or a firewall between commit and reply. The
    two event-loop turns let the server process the lost connection, so it does not try to send its own 500.
    Elsewhere (e.g. httpx's in-process ASGITransport) promise more bytes than are sent, then raise, so the
    client at least sees an incomplete response.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return
    status = buffer.start["status"] if buffer.start else 200
    promised = str(len(buffer.body) + 1024).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", promised)]})
    partial = buffer.body[: len(buffer.body) // 2]
    await send({"type": "http.response.body", "body": partial, "more_body": True})
    raise ResponseDropped("mock dropped the response after committing the request")


def _garble(body: bytes, rng: random.Random) -> bytes:
    """Truncate a body at a random point, which can never leave valid JSON for an object or array (nor a
    well-formed XML document: its root element is never closed)."""
    if len(body) < 2:
        return b'{"code": '
    cut = body[: rng.randrange(1, len(body))]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return cut + b"\x00{"
