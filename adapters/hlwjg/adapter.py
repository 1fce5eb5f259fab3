"""``HlwjgAdapter``: delivers decided approvals to 互联网+监管, which opens a supervision task for each, claims
recorded elsewhere (a default claim, 默认认领, the gateway recorded when a claim deadline ran out), and the approval
side's messages of the closed loop (feedback, 批前确认 and 智慧踏勘 requests, guidance; ``adapters.hlwjg.loop``).

The receiver honours ``requestId`` as an idempotency key and can be asked whether it holds a request, so
a send whose outcome is unknown (timeout, dropped connection, unreadable reply) is safe to repeat with
the same key. The classification below therefore errs towards ``OutcomeUnknownError`` whenever the
receiver may have acted, and reserves ``PermanentError`` for refusals of the content itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import quote

import httpx
import structlog

from adapters.base import Capabilities, DeliveryReceipt, Direction
from adapters.errors import (
    AdapterError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
)
from adapters.hlwjg.auth import TOKEN_PATH, TokenCache, send_authorized
from adapters.hlwjg.claims import encode_claim
from adapters.hlwjg.codec import encode
from adapters.hlwjg.loop import KIND_OF, encode_message
from adapters.http import async_client, retry_after_s
from adapters.masking import mask_text
from adapters.options import base_url_option, positive_float_option, str_option
from schemas import Classification, Envelope

__all__ = ["HlwjgAdapter"]

log = structlog.get_logger(__name__)

RECORDS_PATH = "api/v1/approval-records"
CLAIMS_PATH = "api/v1/task-claims"
LOOP_PATH = "api/v1/loop-messages"
ACCEPTED_TYPE = "approval.decided"
CLAIM_TYPE = "supervision.task.claimed"
# Event type → (path, body key, encoder): an approval opens a task; a claim (默认认领 recorded elsewhere) marks one.
# Every other message of the loop goes to one intake, its kind inside.
_ROUTES = {
    ACCEPTED_TYPE: (RECORDS_PATH, "record", encode),
    CLAIM_TYPE: (CLAIMS_PATH, "claim", encode_claim),
    **{event_type: (LOOP_PATH, "message", encode_message) for event_type in KIND_OF},
}
_OK = "0"
_BUSY = frozenset({429, 503})  # refused before processing: safe to resend


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _short(value: Any) -> str:
    """A platform-supplied message, masked and shortened: it is stored with the delivery and logged."""
    return mask_text(value[:200]) if isinstance(value, str) else ""


def _code(body: Mapping[str, Any]) -> str | None:
    code = body.get("code")
    if isinstance(code, bool) or not isinstance(code, str | int):
        return None
    return str(code)


def _receipt(body: Mapping[str, Any] | None, *, replayed: bool | None = None) -> DeliveryReceipt | None:
    """The receipt in a ``{"code": "0", "data": {"taskNo"/"messageId": …}}`` body, or ``None`` if it has none."""
    data = body.get("data") if body is not None else None
    if not isinstance(data, dict):
        return None
    remote = data.get("messageId") or data.get("taskNo")
    if isinstance(remote, int) and not isinstance(remote, bool):
        remote = str(remote)
    if not isinstance(remote, str) or not remote:
        return None
    was_replayed = replayed if replayed is not None else data.get("replayed") is True
    key = "messageId" if data.get("messageId") else "taskNo"
    return DeliveryReceipt(remote_id=remote, replayed=was_replayed, detail={key: remote})


class HlwjgAdapter:
    """Destination adapter for ``hlwjg``: one reused ``httpx.AsyncClient``, shared with the token cache."""

    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.destination,
        event_types=(ACCEPTED_TYPE, CLAIM_TYPE, *KIND_OF),
        idempotent_receiver=True,
        status_query=True,
    )

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._client = async_client(base_url=base_url, timeout_s=timeout_s, transport=transport)
        self._tokens = TokenCache(
            self._client, token_url=TOKEN_PATH, client_id=client_id, client_secret=client_secret
        )

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Options: ``base_url``, ``client_id``, ``client_secret``, optional ``timeout_s`` (default 10)."""
        adapter = f"hlwjg adapter {name!r}"
        return cls(
            name,
            base_url=base_url_option(options, adapter=adapter),
            client_id=str_option(options, "client_id", adapter=adapter),
            client_secret=str_option(options, "client_secret", adapter=adapter),
            timeout_s=positive_float_option(options, "timeout_s", 10.0, adapter=adapter),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def encode(self, envelope: Envelope) -> dict[str, Any]:
        """The native body part: the approval ``record`` (``hlwjg.codec``) or the task ``claim`` (``hlwjg.claims``)."""
        if envelope.type not in _ROUTES:
            raise TypeError(f"hlwjg does not accept {envelope.type}")
        return _ROUTES[envelope.type][2](envelope)

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        """POST the record or claim with ``requestId = idempotency_key``; one attempt (plus one re-auth on 401)."""
        if envelope.type not in _ROUTES:
            raise PermanentError(f"hlwjg does not accept {envelope.type}")
        if envelope.classification is Classification.secret:
            # Defence in depth: routing sends 涉密 messages to paper; a network adapter must never carry one.
            raise PermanentError("hlwjg must not receive a secret (涉密) message; it belongs on paper")
        path, key, _encoder = _ROUTES[envelope.type]
        body = {"requestId": idempotency_key, key: self.encode(envelope)}
        try:
            response = await self._send("POST", path, json=body)
            receipt = self._delivery_outcome(response)
        except AdapterError as exc:
            # One line per attempt at info: the relay raises the alert once, when the delivery changes state.
            log.info(
                "hlwjg.deliver_failed",
                adapter=self.name, message_id=envelope.id, request_id=idempotency_key,
                kind=exc.kind, code=exc.code, reason=exc.reason,
            )
            raise
        log.debug(
            "hlwjg.delivered",
            adapter=self.name, message_id=envelope.id, request_id=idempotency_key,
            task_no=receipt.remote_id, replayed=receipt.replayed,
        )
        return receipt

    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        """Whether hlwjg holds ``requestId = idempotency_key``: a receipt, ``None``, or ``RetryableError``."""
        path = f"{RECORDS_PATH}/by-request/{quote(idempotency_key, safe='')}"
        try:
            response = await self._send("GET", path)
        except (RetryableError, OutcomeUnknownError) as exc:
            raise RetryableError(f"hlwjg status query failed: {exc.reason}", code=exc.code) from exc
        if response.status_code == 404:
            return None
        body = _json_object(response)
        receipt = None
        if response.status_code == 200 and body is not None and _code(body) == _OK:
            # Found by a status query means the receiver already held it: a replay by definition.
            receipt = _receipt(body, replayed=True)
        if receipt is None:
            raise RetryableError(
                f"hlwjg status query answered HTTP {response.status_code} without a record",
                code=str(response.status_code),
            )
        log.info(
            "hlwjg.status_found", adapter=self.name, message_id=envelope.id, request_id=idempotency_key,
            task_no=receipt.remote_id,
        )
        return receipt

    async def _send(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        """One request with token refresh on 401 (see ``auth.send_authorized``)."""
        return await send_authorized(self._client, self._tokens, method, path, json=json, adapter=self.name)

    @staticmethod
    def _delivery_outcome(response: httpx.Response) -> DeliveryReceipt:
        status = response.status_code
        body = _json_object(response)
        if status in (200, 201):
            if body is None:
                raise OutcomeUnknownError(f"hlwjg HTTP {status}, unreadable body; it may hold the record")
            code = _code(body)
            if code != _OK:
                if code is None:
                    raise OutcomeUnknownError(f"hlwjg HTTP {status} without a result code")
                message = _short(body.get("message") or body.get("msg"))
                raise PermanentError(f"hlwjg business error {code}: {message}", code=code)
            receipt = _receipt(body)
            if receipt is None:
                raise OutcomeUnknownError(f"hlwjg HTTP {status} code 0 without taskNo")
            return receipt
        if status in (400, 422):
            body = body or {}
            code = _code(body) or str(status)
            field = body.get("field")
            where = f" field {field}" if isinstance(field, str) and field else ""
            raise PermanentError(f"hlwjg {code}{where}: {_short(body.get('message'))}", code=code)
        if status == 401:
            raise RetryableError("hlwjg refused a freshly issued token (401)", code="401")
        if status in _BUSY:
            raise RetryableError(
                f"hlwjg HTTP {status}", code=str(status), retry_after_s=retry_after_s(response)
            )
        if status == 408:
            raise RetryableError("hlwjg HTTP 408: request not received in time", code="408")
        if status >= 500:
            raise OutcomeUnknownError(f"hlwjg HTTP {status}; it may have applied it", code=str(status))
        if 400 <= status < 500:
            message = _short((body or {}).get("message"))
            code = _code(body or {}) or str(status)
            raise PermanentError(f"hlwjg HTTP {status} {code}: {message}", code=code)
        raise RetryableError(f"hlwjg unexpected HTTP {status} (check base_url)", code=str(status))

