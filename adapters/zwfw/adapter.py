"""``ZwfwAdapter``: pulls decided approvals (办结 办件) from the 政务服务一体化平台 change feed.

The platform answers every call with HTTP 200 and hides the outcome in ``{"code", "msg", "data"}``, so the
status line says little; this adapter reads the body to decide what the relay should do. A poll only
reads, so nothing can have been applied by a failed one: every failure that may heal by itself
(server error, expired timestamp, replayed nonce, unreadable reply, network trouble) is retryable, and
only a refusal of our credentials or an unknown platform error is permanent (an operator must act).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx
import structlog

from adapters.base import Capabilities, Direction, PollPage, RawRecord
from adapters.errors import (
    AdapterError,
    DecodeError,
    PermanentError,
    RetryableError,
    classify_transport_error,
)
from adapters.http import retry_after_s
from adapters.masking import mask_text
from adapters.options import base_url_option, positive_float_option, str_option
from adapters.zwfw.codec import to_envelope
from adapters.zwfw.signing import signed_headers
from schemas import Envelope

__all__ = ["ZwfwAdapter"]

log = structlog.get_logger(__name__)

CHANGES_PATH = "api/v1/banjian/changes"
_OK = "200"
# Codes after which the same request, freshly signed, can succeed.
_RETRYABLE_CODES: dict[str, str] = {
    "500": "platform internal error",
    "4011": "timestamp expired (clock skew?); the next request is signed afresh",
    "4012": "nonce replayed; the next request is signed afresh",
}
_CREDENTIALS_CODE = "4010"
_RETRYABLE_STATUS = frozenset({408, 425, 429})


def _platform_msg(body: Mapping[str, Any]) -> str:
    """The platform's ``msg``, masked and shortened: it ends up in stored reasons and logs."""
    msg = body.get("msg")
    text = msg if isinstance(msg, str) else ""
    return mask_text(text[:200])


class ZwfwAdapter:
    """Source adapter for ``zwfw``. One ``httpx.AsyncClient`` per instance, reused for every poll."""

    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.source, event_types=("approval.decided",)
    )

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        paasid: str,
        token: str,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._paasid = paasid
        self._token = token
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Options: ``base_url``, ``paasid``, ``token``, optional ``timeout_s`` (default 10)."""
        adapter = f"zwfw adapter {name!r}"
        return cls(
            name,
            base_url=base_url_option(options, adapter=adapter),
            paasid=str_option(options, "paasid", adapter=adapter),
            token=str_option(options, "token", adapter=adapter),
            timeout_s=positive_float_option(options, "timeout_s", 10.0, adapter=adapter),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        """One page of the change feed after ``cursor``; ``RetryableError`` / ``PermanentError`` otherwise."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        try:
            response = await self._client.get(
                CHANGES_PATH, params=params, headers=signed_headers(paasid=self._paasid, token=self._token)
            )
        except httpx.HTTPError as exc:
            # A read cannot have changed anything, so even an unknown outcome is simply retryable.
            raise self._failed(cursor, RetryableError(classify_transport_error(exc).reason)) from exc
        except OSError as exc:  # raw socket error from a custom transport (httpx's own wrap theirs)
            raise self._failed(cursor, RetryableError(f"no reply: {type(exc).__name__}: {exc}")) from exc
        try:
            page = self._page(response, cursor)
        except AdapterError as exc:
            raise self._failed(cursor, exc) from None
        log.debug(
            "zwfw.poll", adapter=self.name, cursor=cursor, records=len(page.records),
            next_cursor=page.next_cursor, has_more=page.has_more,
        )
        return page

    def decode(self, record: RawRecord) -> list[Envelope]:
        """One feed item → one ``approval.decided`` envelope (see ``adapters.zwfw.codec``)."""
        try:
            envelope = to_envelope(record.payload, source=self.name)
        except DecodeError as exc:
            log.info("zwfw.decode_rejected", adapter=self.name, position=record.position, reason=exc.reason)
            raise
        return [envelope]

    def _failed(self, cursor: str | None, exc: AdapterError) -> AdapterError:
        log.info(
            "zwfw.poll_failed",
            adapter=self.name, cursor=cursor, kind=exc.kind, code=exc.code, reason=exc.reason,
        )
        return exc

    def _page(self, response: httpx.Response, cursor: str | None) -> PollPage:
        """Classify a reply and, if it is a page, parse it."""
        status = response.status_code
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise RetryableError(
                f"zwfw HTTP {status}", code=str(status), retry_after_s=retry_after_s(response)
            )
        if status != 200:
            raise PermanentError(f"zwfw HTTP {status} (check base_url and credentials)", code=str(status))
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            raise RetryableError("zwfw reply is not JSON") from None
        if not isinstance(body, dict):
            raise RetryableError("zwfw reply is not a JSON object")
        code = body.get("code")
        code = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
        if code != _OK:
            raise self._platform_error(code, body)
        data = body.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise RetryableError("zwfw reply lacks data.items")
        items: list[Any] = data["items"]
        next_cursor = data.get("next_cursor")
        if isinstance(next_cursor, int) and not isinstance(next_cursor, bool):
            next_cursor = str(next_cursor)
        if next_cursor is not None and not isinstance(next_cursor, str):
            raise RetryableError("zwfw reply has a next_cursor that is not a string")
        if not next_cursor:
            if items:
                # Advancing to "nothing" would restart the feed; staying put would loop. Neither is safe.
                raise RetryableError("zwfw reply has items but no next_cursor")
            next_cursor = cursor
        at = cursor if cursor is not None else "start"
        records = [RawRecord(item, position=f"{at}+{i}") for i, item in enumerate(items)]
        return PollPage(records=records, next_cursor=next_cursor, has_more=data.get("has_more") is True)

    @staticmethod
    def _platform_error(code: str | None, body: Mapping[str, Any]) -> AdapterError:
        msg = _platform_msg(body)
        if code in _RETRYABLE_CODES:
            return RetryableError(f"zwfw code {code}: {_RETRYABLE_CODES[code]} ({msg})", code=code)
        if code == _CREDENTIALS_CODE:
            return PermanentError(
                f"zwfw code {code}: signature or credentials refused; check paasid and token ({msg})",
                code=code,
            )
        if code is None:
            return RetryableError("zwfw reply has no code")
        return PermanentError(f"zwfw code {code}: {msg}", code=code)
