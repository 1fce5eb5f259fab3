"""One cached access token shared by concurrent deliveries, refreshed once when it expires or is refused.

Why shared: several platforms hand out a token (OAuth2 client credentials, an app key exchange, a SOAP
login) and deliveries run concurrently. Each adapter used to carry its own copy of the same lock-and-reuse
logic; this module holds it once, and an adapter supplies only how to fetch a token. The lock matters: when
a burst of deliveries meets a 401 together, one refresh is in flight and the others wait for and reuse its
result instead of each fetching its own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_EXPIRES_IN_S", "TokenCache", "TokenFetch", "expires_in_seconds"]

DEFAULT_EXPIRES_IN_S = 300.0

TokenFetch = Callable[[], Awaitable[tuple[str, float | None]]]
"""Fetches a new token: its value and its lifetime in seconds, or ``None`` when it lasts until refused."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # on the cache's clock; ``math.inf`` when only a refusal ends the token


class TokenCache:
    """Holds the current token; ``get`` returns it, fetching a new one shortly before it expires.

    ``fetch`` raises whatever error the adapter wants a failed fetch to be (in practice ``RetryableError``);
    the cache then holds no token, so the next ``get`` fetches again.
    """

    def __init__(
        self,
        fetch: TokenFetch,
        *,
        leeway_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch_token = fetch
        self._leeway_s = leeway_s
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A token believed valid: the cached one, or a freshly fetched one."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        return await self.refresh(stale=None)

    async def refresh(self, *, stale: str | None) -> str:
        """Replace ``stale`` (a token the platform just refused) or an expired token; one fetch at a time.

        If another task already replaced ``stale`` while this one waited for the lock, its token is used
        instead of fetching again.
        """
        async with self._lock:
            token = self._token
            if token is not None and token.value != stale and self._clock() < token.refresh_at:
                return token.value
            self._token = None
            value, expires_in = await self._fetch_token()
            if expires_in is None:
                refresh_at = math.inf
            else:
                # Refresh a little early so a token does not expire in flight; short-lived tokens get a
                # proportionally shorter margin so that they are still used at all.
                refresh_at = self._clock() + expires_in - min(self._leeway_s, expires_in / 5)
            self._token = _Token(value, refresh_at)
            return value


def expires_in_seconds(value: object, *, default: float = DEFAULT_EXPIRES_IN_S) -> float:
    """A reply's token lifetime as positive seconds (some servers send a string); ``default`` when it is odd."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return default
    return float(value)
