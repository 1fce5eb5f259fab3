"""OAuth2 client-credentials token cache for 互联网+监管.

Why a cache with a lock: tokens expire (the mock can make them expire within seconds), and many
concurrent deliveries share one adapter. Without the lock, every delivery that met a 401 would fetch its
own token at once; with it, one refresh is in flight and the others wait for and reuse its result.

A failure to obtain a token is always ``RetryableError``: nothing was delivered, and even refused
credentials (``invalid_client``) are an operator's configuration fix, not a reason for messages to die.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from adapters import tokens
from adapters.errors import OutcomeUnknownError, RetryableError, classify_transport_error
from adapters.http import retry_after_s

__all__ = ["TOKEN_PATH", "TokenCache", "send_authorized"]

log = structlog.get_logger(__name__)

TOKEN_PATH = "oauth2/token"


class TokenCache(tokens.TokenCache):
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
        super().__init__(self._fetch, leeway_s=leeway_s, clock=clock)
        self._client = client
        self._token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }

    async def _fetch(self) -> tuple[str, float]:
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
        expires_in = tokens.expires_in_seconds(body.get("expires_in"))
        log.debug("hlwjg.token_fetched", expires_in=expires_in)
        return value, expires_in


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


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None
