"""The 前置机 session token: obtained by ``login``, kept until the exchange refuses it.

Why no expiry time: ``login`` returns a bare token string and the exchange announces its lifetime nowhere;
it says so only by answering 1001/1002 to a call. So the token is cached until refused, and a refusal
replaces it — once, under a lock, so that a burst of concurrent deliveries meeting an expired token logs in
once and not once each.

A failure to log in is always ``RetryableError``: nothing was delivered, and refused credentials are an
operator's configuration fix, not a reason for messages to die.
"""

from __future__ import annotations

import structlog

from adapters.errors import AdapterError, RetryableError
from adapters.soap.client import ExchangeClient
from adapters.tokens import TokenCache

__all__ = ["LoginTokens"]

log = structlog.get_logger(__name__)


class LoginTokens(TokenCache):
    """``get`` returns the current token (logging in when there is none); ``refresh`` replaces a refused one."""

    def __init__(self, client: ExchangeClient, *, user: str, password: str) -> None:
        super().__init__(self._fetch)
        self._client = client
        self._user = user
        self._password = password

    async def _fetch(self) -> tuple[str, None]:
        # The exchange announces no lifetime, so the token is kept until a call is refused.
        return await self._login(), None

    async def _login(self) -> str:
        try:
            token = await self._client.login(self._user, self._password)
        except AdapterError as exc:
            if exc.code is not None and exc.code.startswith("Client"):
                raise RetryableError(
                    f"soap login refused ({exc.code}): fix user/password in the adapter config; deliveries wait "
                    "meanwhile",
                    code=exc.code,
                ) from exc
            raise RetryableError(
                f"soap login failed: {exc.reason}", code=exc.code, retry_after_s=exc.retry_after_s
            ) from exc
        if not isinstance(token, str) or not token.strip():
            raise RetryableError("soap login answered without a token")
        log.debug("soap.logged_in")
        return token.strip()
