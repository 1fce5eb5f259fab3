"""A bounded log of every request that reached a platform's native API, for ``GET /{platform}/_mock/traffic``.

Testers use it to prove what actually crossed the wire — that a secret record never left the gateway, that a
retry reused its requestId, how many attempts a fault provoked. The recorder therefore sits outside the fault
middleware: requests answered by an injected fault are logged too, tagged with the fault applied.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_platforms.faults import FAULT_SCOPE_KEY, native_platform

DEFAULT_TRAFFIC_LIMIT = 10_000


class TrafficLog:
    """The last ``limit`` native requests of one platform, oldest first."""

    def __init__(self, limit: int = DEFAULT_TRAFFIC_LIMIT) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)

    def append(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()


class TrafficRecorderMiddleware:
    """Read each native request's body, log it, and replay it to the app unchanged.

    ``send`` is passed through untouched so the fault middleware inside still receives the server's own
    callable (it needs it to drop connections).

    A request whose client went away before its body was complete (``http.disconnect`` while reading — a
    sender SIGKILLed between writing the headers and the body) is logged with ``"incomplete": true`` and never
    reaches the platform: a real server does not hand a half-received request to its application, and a mock
    that did would judge a truncated body and count a rejection that no client ever asked for.
    """

    def __init__(self, app: ASGIApp, logs: Mapping[str, TrafficLog]) -> None:
        self.app = app
        self.logs = logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = native_platform(scope["path"], self.logs) if scope["type"] == "http" else None
        if name is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        complete = False
        while not complete:
            message = await receive()
            if message["type"] != "http.request":
                break  # http.disconnect: the client is gone before its request was whole
            chunks.append(message.get("body", b""))
            complete = not message.get("more_body", False)
        body = b"".join(chunks)
        entry: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "body": body.decode("utf-8", errors="replace"),
            "fault": None,
        }
        self.logs[name].append(entry)
        if not complete:
            entry["incomplete"] = True
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send)
        finally:
            entry["fault"] = scope.get(FAULT_SCOPE_KEY)
