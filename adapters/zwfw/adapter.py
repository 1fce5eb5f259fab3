"""``ZwfwAdapter``: pulls decided approvals (办结 办件) from the 政务服务一体化平台 change feed, and delivers the
supervision side's messages of the closed loop to its linkage inbox (``adapters.zwfw.linkage``).

The platform answers every call with HTTP 200 and hides the outcome in ``{"code", "msg", "data"}``, so the
status line says little; this adapter reads the body to decide what the relay should do. A poll only
reads, so nothing can have been applied by a failed one: every failure that may heal by itself
(server error, expired timestamp, replayed nonce, unreadable reply, network trouble) is retryable, and
only a refusal of our credentials or an unknown platform error is permanent (an operator must act).

A delivery writes, so there the question is whether the platform may have applied it. The inbox honours
``requestId`` (a replay answers with the first receipt) and answers status queries by it, so an unknown outcome —
a dropped connection, an unreadable reply, the platform's own ``code`` 500 — is settled by asking or resending
with the same id, never by a second record. Refused credentials and a stale signature are retryable (nothing was
applied; an operator fixes the credentials), a refusal of the content (``4001``, other codes) is permanent.
``ZwfwLinkageAdapter`` (``zwfw-linkage``) reads the approval bureau's own linkage feed: feedback and requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx
import structlog

from adapters.base import Capabilities, DeliveryReceipt, Direction, PollPage, RawRecord
from adapters.errors import (
    AdapterError,
    DecodeError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
    classify_transport_error,
)
from adapters.http import async_client, retry_after_s
from adapters.masking import mask_text
from adapters.options import base_url_option, positive_float_option, str_option
from adapters.zwfw import linkage
from adapters.zwfw.codec import to_envelope
from adapters.zwfw.signing import signed_headers
from schemas import Classification, Envelope

__all__ = ["ZwfwAdapter", "ZwfwLinkageAdapter"]

log = structlog.get_logger(__name__)

CHANGES_PATH = "api/v1/banjian/changes"
LINKAGE_CHANGES_PATH = "api/v1/linkage/changes"
INBOX_PATH = "api/v1/linkage/inbox"
_NOT_FOUND = "4004"
_INVALID = "4001"
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
    """Source (办件 feed) and destination (linkage inbox) adapter for ``zwfw``; one reused ``httpx.AsyncClient``."""

    version: ClassVar[str] = "0.2.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.both,
        event_types=("approval.decided", *linkage.MSGTYPE_OF),
        idempotent_receiver=True,
        status_query=True,
    )
    feed_path: ClassVar[str] = CHANGES_PATH

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
        self._client = async_client(base_url=base_url, timeout_s=timeout_s, transport=transport)

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
                self.feed_path, params=params, headers=signed_headers(paasid=self._paasid, token=self._token)
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

    # -- destination: the linkage inbox -------------------------------------------------------------------------

    def encode(self, envelope: Envelope) -> dict[str, Any]:
        """The native linkage item for ``envelope`` (``adapters.zwfw.linkage``)."""
        return linkage.encode_item(envelope)

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        """POST ``{"requestId": idempotency_key, "item": …}`` to the linkage inbox; one attempt."""
        if envelope.type not in linkage.MSGTYPE_OF:
            raise PermanentError(f"zwfw does not accept {envelope.type}")
        if envelope.classification is Classification.secret:
            raise PermanentError("zwfw must not receive a secret (涉密) message; it belongs on paper")
        body = {"requestId": idempotency_key, "item": self.encode(envelope)}
        try:
            response = await self._signed("POST", INBOX_PATH, json=body)
            receipt = self._receipt(response, sending=True)
        except AdapterError as exc:
            log.info(
                "zwfw.deliver_failed",
                adapter=self.name, message_id=envelope.id, request_id=idempotency_key,
                kind=exc.kind, code=exc.code, reason=exc.reason,
            )
            raise
        assert receipt is not None
        log.debug(
            "zwfw.delivered", adapter=self.name, message_id=envelope.id, request_id=idempotency_key,
            receipt_no=receipt.remote_id, replayed=receipt.replayed,
        )
        return receipt

    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        """Whether the inbox holds ``requestId = idempotency_key``: a receipt, ``None``, or ``RetryableError``."""
        try:
            response = await self._signed("GET", f"{INBOX_PATH}/{quote(idempotency_key, safe='')}")
            receipt = self._receipt(response, sending=False)
        except (OutcomeUnknownError, PermanentError) as exc:
            raise RetryableError(f"zwfw status query failed: {exc.reason}", code=exc.code) from exc
        if receipt is not None:
            receipt = DeliveryReceipt(remote_id=receipt.remote_id, replayed=True, detail=receipt.detail)
        return receipt

    async def _signed(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        """One signed request (a fresh nonce each time); transport failures classified by whether it may have left."""
        headers = signed_headers(paasid=self._paasid, token=self._token)
        try:
            return await self._client.request(method, path, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc) from exc
        except OSError as exc:  # a raw socket error from a custom transport: the request may have left
            raise OutcomeUnknownError(f"no reply: {type(exc).__name__}: {exc}") from exc

    def _receipt(self, response: httpx.Response, *, sending: bool) -> DeliveryReceipt | None:
        """Classify an inbox reply: a receipt, ``None`` (status query: not held), or the taxonomy's error."""
        status = response.status_code
        if status in _RETRYABLE_STATUS or status == 503:
            raise RetryableError(f"zwfw HTTP {status}", code=str(status), retry_after_s=retry_after_s(response))
        if status >= 500:
            raise OutcomeUnknownError(f"zwfw HTTP {status}; it may have applied it", code=str(status))
        if status != 200:
            raise PermanentError(f"zwfw HTTP {status} (check base_url)", code=str(status))
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            raise OutcomeUnknownError("zwfw reply is not JSON; it may hold the message") from None
        if not isinstance(body, dict):
            raise OutcomeUnknownError("zwfw reply is not a JSON object; it may hold the message")
        code = body.get("code")
        code = str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
        msg = _platform_msg(body)
        if code == _OK:
            data = body.get("data")
            receipt_no = data.get("receiptNo") if isinstance(data, dict) else None
            if not isinstance(receipt_no, str) or not receipt_no:
                raise OutcomeUnknownError("zwfw code 200 without data.receiptNo")
            return DeliveryReceipt(
                remote_id=receipt_no, replayed=data.get("replayed") is True, detail={"receiptNo": receipt_no}
            )
        if code == _NOT_FOUND and not sending:
            return None
        if code == "500" or code is None:
            # 系统繁忙 on a write: the platform may have applied it before failing; the requestId makes asking safe.
            raise OutcomeUnknownError(f"zwfw code {code or 'missing'}: {msg}", code=code)
        if code in _RETRYABLE_CODES or code == _CREDENTIALS_CODE:
            reason = _RETRYABLE_CODES.get(code, "signature or credentials refused; check paasid and token")
            raise RetryableError(f"zwfw code {code}: {reason} ({msg})", code=code)
        raise PermanentError(f"zwfw code {code}: {msg}", code=code)

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


class ZwfwLinkageAdapter(ZwfwAdapter):
    """Source adapter for the platform's linkage feed (``zwfw-linkage``): what the approval bureau sends to supervision.

    Same signed, cursor-paged feed as 办件 (same classification of failures), at ``api/v1/linkage/changes``; each item
    is one linkage message (``MSGTYPE``): feedback, 批前确认 and site inspection requests, guidance.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.source,
        event_types=tuple(linkage.MSGTYPES[t] for t in linkage.APPROVAL_SIDE),
    )
    feed_path: ClassVar[str] = LINKAGE_CHANGES_PATH

    def decode(self, record: RawRecord) -> list[Envelope]:
        """One linkage item → one envelope in its approval's loop (see ``adapters.zwfw.linkage``)."""
        try:
            envelope = linkage.to_envelope(record.payload, source=self.name)
        except DecodeError as exc:
            log.info("zwfw.decode_rejected", adapter=self.name, position=record.position, reason=exc.reason)
            raise
        return [envelope]
