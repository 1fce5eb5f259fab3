"""Wrapping transports: how the kit puts a platform fault between an adapter and its receiver.

They sit at httpx's transport boundary — the one point every request crosses — so the kit needs no
knowledge of an adapter's internals and works with any receiver (an ASGI mock, respx, a real sandbox).
"""

from __future__ import annotations

import httpx

from adapters.conformance.common import ReplyFactory, RequestMatcher

__all__ = ["CannedReplyTransport", "DropAfterApplyTransport"]


class CannedReplyTransport(httpx.AsyncBaseTransport):
    """Answers matching requests with a canned reply; passes the others (token fetch, …) to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None, matches: RequestMatcher, respond: ReplyFactory) -> None:
        self.inner = inner
        self.matches = matches
        self.respond = respond
        self.answered = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.matches(request):
            self.answered += 1
            await request.aread()
            return self.respond(request)
        if self.inner is None:
            return httpx.Response(404, json={"error": "not served by the conformance kit"}, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


class DropAfterApplyTransport(httpx.AsyncBaseTransport):
    """The crash between send and acknowledgement: the receiver applies the request, the reply is lost.

    The first ``drops`` matching requests are forwarded and fully processed by the receiver, then the
    connection "dies" the way httpx reports a server that vanished mid-exchange
    (``RemoteProtocolError``). Later requests pass through untouched, as after a reconnect.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, matches: RequestMatcher, drops: int = 1) -> None:
        self.inner = inner
        self.matches = matches
        self.remaining = drops
        self.dropped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.remaining > 0 and self.matches(request):
            self.remaining -= 1
            self.dropped += 1
            await response.aread()
            await response.aclose()
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
