"""App-key token cache for the 公共信用信息平台.

The platform exchanges an ``appKey``/``appSecret`` pair for a token that expires (sometimes within seconds,
see the mock's ``token_ttl_s``). Batches are sent concurrently, so the cache holds one token and a lock: when
a batch meets a 401, one refresh is made and the others wait for and reuse it rather than each fetching its
own.

Failing to get a token is always ``RetryableError``: nothing was delivered, and even refused credentials are an
operator's configuration fix, not a reason for the records to die.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import structlog

from adapters.errors import RetryableError, classify_transport_error
from adapters.http import retry_after_s
from adapters.tokens import TokenCache, expires_in_seconds

__all__ = ["AppTokenCache"]

log = structlog.get_logger(__name__)


class AppTokenCache(TokenCache):
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
        super().__init__(self._fetch, leeway_s=leeway_s, clock=clock)
        self._client = client
        self._token_url = token_url
        self._credentials = {"appKey": app_key, "appSecret": app_secret}

    async def _fetch(self) -> tuple[str, float]:
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
        expires_in = expires_in_seconds(data.get("expiresIn") if isinstance(data, dict) else None)
        log.debug("credit.token_fetched", expires_in=expires_in)
        return value, expires_in


def _json(response: httpx.Response) -> dict[str, object] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _code(body: dict[str, object] | None) -> str | None:
    code = body.get("code") if body is not None else None
    return code if isinstance(code, str) else None
