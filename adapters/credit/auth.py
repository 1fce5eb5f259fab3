"""App-key token cache for the 公共信用信息平台.

The platform exchanges an ``appKey``/``appSecret`` pair for a token that expires (sometimes within seconds,
see the mock's ``token_ttl_s``). Batches are sent concurrently, so the cache holds one token and a lock: when
a batch meets a 401, one refresh is made and the others wait for and reuse it rather than each fetching its
own.

Failing to get a token is always ``RetryableError``: nothing was delivered, and even refused credentials are an
operator's configuration fix, not a reason for the records to die.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import structlog

from adapters.errors import RetryableError, classify_transport_error
from adapters.http import retry_after_s

__all__ = ["AppTokenCache"]

log = structlog.get_logger(__name__)

_DEFAULT_EXPIRES_IN_S = 300.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # monotonic clock


class AppTokenCache:
    """Holds the current token; ``get`` returns it, fetching a new one shortly before it expires."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token_url: str,
        app_key: str,
        app_secret: str,
        leeway_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._token_url = token_url
        self._credentials = {"appKey": app_key, "appSecret": app_secret}
        self._leeway_s = leeway_s
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        return await self.refresh(stale=None)

    async def refresh(self, *, stale: str | None) -> str:
        """Replace ``stale`` (just refused) or an expired token; reuse one another task fetched meanwhile."""
        async with self._lock:
            token = self._token
            if token is not None and token.value != stale and self._clock() < token.refresh_at:
                return token.value
            self._token = None
            self._token = await self._fetch()
            return self._token.value

    async def _fetch(self) -> _Token:
        try:
            response = await self._client.post(self._token_url, json=self._credentials)
        except httpx.HTTPError as exc:
            raise RetryableError(f"credit token endpoint unreachable: {classify_transport_error(exc).reason}") from exc
        except OSError as exc:  # a raw socket error from a custom transport; fetching a token applies nothing
            raise RetryableError(f"credit token endpoint unreachable: {type(exc).__name__}: {exc}") from exc
        body = _json(response)
        if response.status_code == 401:
            raise RetryableError(
                "credit refused the app credentials: fix app_key/app_secret in the destination's config; "
                "deliveries wait meanwhile",
                code=_code(body) or "401",
            )
        if response.status_code != 200:
            raise RetryableError(
                f"credit token endpoint HTTP {response.status_code}",
                code=_code(body) or str(response.status_code),
                retry_after_s=retry_after_s(response),
            )
        data = body.get("data") if body is not None else None
        value = data.get("token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise RetryableError("credit token reply lacks data.token")
        expires_in = _seconds(data.get("expiresIn") if isinstance(data, dict) else None)
        # Refresh a little early so a token does not expire in flight; short-lived tokens get a proportionally
        # shorter margin so that they are used at all.
        log.debug("credit.token_fetched", expires_in=expires_in)
        return _Token(value, self._clock() + expires_in - min(self._leeway_s, expires_in / 5))


def _json(response: httpx.Response) -> dict[str, object] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _code(body: dict[str, object] | None) -> str | None:
    code = body.get("code") if body is not None else None
    return code if isinstance(code, str) else None


def _seconds(value: object) -> float:
    """``expiresIn`` as positive seconds (numbers may come as strings); a default when it is odd."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return _DEFAULT_EXPIRES_IN_S
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return _DEFAULT_EXPIRES_IN_S
    return float(value)
