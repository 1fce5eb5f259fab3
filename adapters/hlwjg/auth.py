"""OAuth2 client-credentials token cache for 互联网+监管.

Why a cache with a lock: tokens expire (the mock can make them expire within seconds), and many
concurrent deliveries share one adapter. Without the lock, every delivery that met a 401 would fetch its
own token at once; with it, one refresh is in flight and the others wait for and reuse its result.

A failure to obtain a token is always ``RetryableError``: nothing was delivered, and even refused
credentials (``invalid_client``) are an operator's configuration fix, not a reason for messages to die.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from adapters.errors import OutcomeUnknownError, RetryableError, classify_transport_error
from adapters.http import retry_after_s

__all__ = ["TOKEN_PATH", "TokenCache", "send_authorized"]

log = structlog.get_logger(__name__)

TOKEN_PATH = "oauth2/token"
_DEFAULT_EXPIRES_IN_S = 300.0


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # monotonic clock


class TokenCache:
    """Holds the current bearer token; ``get`` returns it, fetching a new one shortly before expiry."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        leeway_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
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
        """Replace ``stale`` (a token the API just refused) or an expired token; one fetch at a time.

        If another task already replaced ``stale`` while this one waited for the lock, its token is used
        instead of fetching again.
        """
        async with self._lock:
            token = self._token
            if token is not None and token.value != stale and self._clock() < token.refresh_at:
                return token.value
            self._token = None
            token = await self._fetch()
            self._token = token
            return token.value

    async def _fetch(self) -> _Token:
        try:
            response = await self._client.post(self._token_url, data=self._form)
        except httpx.HTTPError as exc:
            reason = classify_transport_error(exc).reason
            raise RetryableError(f"hlwjg token endpoint unreachable: {reason}") from exc
        except OSError as exc:  # raw socket error from a custom transport; fetching a token applies nothing
            raise RetryableError(f"hlwjg token endpoint unreachable: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status != 200:
            error = _oauth_error(response)
            if status in (400, 401) and error in ("invalid_client", "unauthorized_client", "invalid_grant"):
                raise RetryableError(
                    f"hlwjg refused the client credentials ({error}): fix client_id/client_secret in the "
                    "adapter config; deliveries wait meanwhile",
                    code=error,
                )
            if status == 401:
                raise RetryableError(
                    "hlwjg token endpoint answered 401: check client_id/client_secret", code=error or "401"
                )
            raise RetryableError(
                f"hlwjg token endpoint HTTP {status}", code=error or str(status),
                retry_after_s=retry_after_s(response),
            )
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            raise RetryableError("hlwjg token reply is not JSON") from None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise RetryableError("hlwjg token reply lacks access_token")
        expires_in = _seconds(body.get("expires_in"))
        # Refresh a little early so a token does not expire in flight; short-lived tokens get a
        # proportionally shorter margin so they are still used at all.
        margin = min(self._leeway_s, expires_in / 5)
        log.debug("hlwjg.token_fetched", expires_in=expires_in)
        return _Token(value, self._clock() + expires_in - margin)


async def send_authorized(
    client: httpx.AsyncClient,
    tokens: TokenCache,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
    adapter: str = "hlwjg",
) -> httpx.Response:
    """Send with the current bearer token; on 401 get a new one and send the same request once more.

    A 401 means the API refused before processing, so repeating the identical request is safe. Transport
    failures come out already classified (``adapters.errors``); the caller decides what a reply means.
    """
    token = await tokens.get()
    try:
        response = await client.request(method, path, json=json, params=params, headers=_bearer(token))
        if response.status_code == 401:
            log.info("hlwjg.token_refused", adapter=adapter)
            token = await tokens.refresh(stale=token)
            response = await client.request(method, path, json=json, params=params, headers=_bearer(token))
    except httpx.HTTPError as exc:
        raise classify_transport_error(exc) from exc
    except OSError as exc:
        # httpx's own transports wrap socket errors; a raw one comes from a custom transport (e.g. an
        # in-process ASGI app aborting mid-reply) and means the same: the request may have arrived.
        raise OutcomeUnknownError(f"no reply: {type(exc).__name__}: {exc}") from exc
    return response


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _seconds(value: object) -> float:
    """``expires_in`` as a positive number of seconds (some servers send a string); a default otherwise."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return _DEFAULT_EXPIRES_IN_S
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _DEFAULT_EXPIRES_IN_S
    if not math.isfinite(value) or value <= 0:
        return _DEFAULT_EXPIRES_IN_S
    return float(value)


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None
