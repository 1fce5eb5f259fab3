"""``SoapAdapter``: delivers decided approvals to a legacy SOAP exchange (前置机) that is not idempotent.

The exchange creates a record for every ``service(xml)`` call it accepts — a resend of a message it already
holds is a second record, a duplicate the law forbids (不得重复报送). What it offers instead is ``query(sn)``.
So this adapter never resends blindly:

- every attempt of one delivery carries the same ``Sn``, derived from the idempotency key
  (``codec.serial_number``);
- a send whose outcome is unknown (timeout, dropped connection, unreadable or refused reply, SOAP server
  fault, 5xx other than 503) raises ``OutcomeUnknownError``. The capabilities say ``status_query=True`` and
  ``idempotent_receiver=False``, so the relay calls ``query_status`` before any further attempt and
  resends only when the exchange says it does not hold the ``Sn``;
- the same rule holds inside ``deliver`` when the token turns out to be expired: log in again, ask
  ``query(sn)``, and resend only if the first attempt did not land.

Result codes are classified by the table in ``adapters.soap.reply``; XML hardening is in
``adapters.soap.client`` (SOAP envelopes) and ``adapters.soap.reply`` (reply documents).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import httpx
import structlog

from adapters.base import Capabilities, DeliveryReceipt, Direction
from adapters.errors import AdapterError, OutcomeUnknownError, PermanentError, RetryableError
from adapters.http import async_client
from adapters.masking import mask_text
from adapters.options import base_url_option, positive_float_option, str_option
from adapters.soap.auth import LoginTokens
from adapters.soap.client import ExchangeClient
from adapters.soap.codec import ACCEPTED_TYPE, encode, exchange_message, serial_number
from adapters.soap.reply import Action, Result, UnreadableReply, action_for, parse_result
from schemas import Classification, Envelope

__all__ = ["SERVICE_ID_HEADER", "TOKEN_HEADER", "SoapAdapter"]

log = structlog.get_logger(__name__)

TOKEN_HEADER = "X-Token"
SERVICE_ID_HEADER = "X-Service-Id"
_RECEIVED, _NOT_FOUND, _REJECTED = "RECEIVED", "NOT_FOUND", "REJECTED"


def _short(text: str) -> str:
    """A platform-supplied message, masked and shortened: it is stored with the delivery and logged."""
    return mask_text(text[:200])


def _optional_str(options: Mapping[str, Any], key: str, default: str, *, adapter: str) -> str:
    return str_option(options, key, adapter=adapter) if key in options else default


class SoapAdapter:
    """Destination adapter for the legacy SOAP exchange (``soap``); see the module docstring for the rules."""

    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.destination,
        event_types=(ACCEPTED_TYPE,),
        idempotent_receiver=False,
        status_query=True,
    )

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        user: str,
        password: str,
        service_id: str,
        receiver: str,
        sender: str = "shenguan",
        auth_path: str = "auth",
        exchange_path: str = "exchange",
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._service_id = service_id
        self._sender = sender
        self._receiver = receiver
        self._clock = clock
        self._http = async_client(timeout_s=timeout_s, transport=transport)
        self._exchange = ExchangeClient(
            self._http,
            base_url=base_url.rstrip("/"),
            auth_path=auth_path.strip("/"),
            exchange_path=exchange_path.strip("/"),
        )
        self._tokens = LoginTokens(self._exchange, user=user, password=password)

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Options: ``base_url`` (e.g. ``http://127.0.0.1:8700/soap``), ``user``, ``password``, ``service_id``,
        ``receiver`` (the 前置机's node code); optional ``sender`` (our node code, default ``shenguan``),
        ``auth_path`` / ``exchange_path`` (default ``auth`` / ``exchange``; WSDLs at ``…?wsdl``) and
        ``timeout_s`` (default 10)."""
        adapter = f"soap adapter {name!r}"
        return cls(
            name,
            base_url=base_url_option(options, adapter=adapter),
            user=str_option(options, "user", adapter=adapter),
            password=str_option(options, "password", adapter=adapter),
            service_id=str_option(options, "service_id", adapter=adapter),
            receiver=str_option(options, "receiver", adapter=adapter),
            sender=_optional_str(options, "sender", "shenguan", adapter=adapter),
            auth_path=_optional_str(options, "auth_path", "auth", adapter=adapter),
            exchange_path=_optional_str(options, "exchange_path", "exchange", adapter=adapter),
            timeout_s=positive_float_option(options, "timeout_s", 10.0, adapter=adapter),
        )

    async def aclose(self) -> None:
        await self._exchange.aclose()
        await self._http.aclose()

    def encode(self, envelope: Envelope) -> str:
        """The ``<Body>`` document of an ``approval.decided`` envelope; see ``adapters.soap.codec``."""
        return encode(envelope)

    # -- delivery ---------------------------------------------------------------------------------------------
    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        """Hand one ``ExchangeMessage`` to ``service(xml)``; after a refused token, reconcile before resending."""
        if envelope.type != ACCEPTED_TYPE:
            raise PermanentError(f"soap does not accept {envelope.type}")
        if envelope.classification is Classification.secret:
            # Defence in depth: routing sends 涉密 messages to paper; a network adapter must never carry one.
            raise PermanentError("soap must not receive a secret (涉密) message; it belongs on paper")
        sn = serial_number(idempotency_key)
        try:
            receipt = await self._deliver(envelope, sn)
        except AdapterError as exc:
            # One line per attempt at info: the relay raises the alert once, when the delivery changes state.
            log.info(
                "soap.deliver_failed",
                adapter=self.name,
                message_id=envelope.id,
                sn=sn,
                kind=exc.kind,
                code=exc.code,
                reason=exc.reason,
            )
            raise
        log.debug("soap.delivered", adapter=self.name, message_id=envelope.id, sn=sn, receipt_no=receipt.remote_id)
        return receipt

    async def _deliver(self, envelope: Envelope, sn: str) -> DeliveryReceipt:
        try:
            message = exchange_message(
                envelope,
                sn=sn,
                service_id=self._service_id,
                sender=self._sender,
                receiver=self._receiver,
                send_time=datetime.fromtimestamp(int(self._clock()), UTC),
            )
        except ValueError as exc:  # lxml: a value XML 1.0 cannot carry (a control character)
            raise PermanentError(f"record cannot be written as XML 1.0: {exc}") from None
        token = await self._tokens.get()
        result = await self._send(message, token, sn)
        if action_for(result.code)[0] is Action.reauthenticate:
            token = await self._tokens.refresh(stale=token)
            try:
                held = await self._held(sn, token)
            except _Reauthenticate as again:
                raise RetryableError(f"soap refused a freshly issued token ({again.code})", code=again.code) from None
            if held is not None:
                log.info("soap.reconciled", adapter=self.name, message_id=envelope.id, sn=sn)
                return held
            result = await self._send(message, token, sn)
            if action_for(result.code)[0] is Action.reauthenticate:
                raise RetryableError(f"soap refused a freshly issued token ({result.code})", code=result.code)
        return self._outcome(result, sn)

    async def _send(self, message: str, token: str, sn: str) -> Result:
        reply = await self._exchange.service(message, self._headers(token))
        try:
            return parse_result(reply)
        except UnreadableReply as exc:
            raise OutcomeUnknownError(f"soap service reply for {sn}: {exc.reason}") from None

    @staticmethod
    def _outcome(result: Result, sn: str) -> DeliveryReceipt:
        action, meaning = action_for(result.code)
        reason = f"soap result {result.code} ({meaning}): {_short(result.message)}"
        if action is Action.accepted:
            if result.sn and result.sn != sn:
                raise OutcomeUnknownError(f"soap accepted Sn {result.sn[:64]!r}, not {sn}", code=result.code)
            receipt_no = result.get("ReceiptNo")
            return DeliveryReceipt(remote_id=receipt_no, detail={"sn": sn, "receiptNo": receipt_no})
        if action is Action.retry:
            raise RetryableError(reason, code=result.code)
        if action is Action.unknown:
            raise OutcomeUnknownError(reason, code=result.code)
        raise PermanentError(reason, code=result.code)

    # -- status query ---------------------------------------------------------------------------------------
    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        """Ask ``query(sn)``: a receipt when the exchange received this ``Sn``, ``None`` when it did not (or
        rejected it, so a resend changes nothing); ``RetryableError`` when the question got no answer."""
        sn = serial_number(idempotency_key)
        token = await self._tokens.get()
        try:
            return await self._held(sn, token)
        except _Reauthenticate:
            token = await self._tokens.refresh(stale=token)
            try:
                return await self._held(sn, token)
            except _Reauthenticate as again:
                raise RetryableError(f"soap refused a freshly issued token ({again.code})", code=again.code) from None

    async def _held(self, sn: str, token: str) -> DeliveryReceipt | None:
        try:
            reply = await self._exchange.query(sn, self._headers(token))
            result = parse_result(reply)
        except AdapterError as exc:
            raise RetryableError(f"soap status query failed: {exc.reason}", code=exc.code) from exc
        except UnreadableReply as exc:
            raise RetryableError(f"soap status query reply for {sn}: {exc.reason}") from None
        action, meaning = action_for(result.code)
        if action is Action.reauthenticate:
            raise _Reauthenticate(result.code)
        if action is not Action.accepted:
            raise RetryableError(
                f"soap status query refused, result {result.code} ({meaning}): {_short(result.message)}",
                code=result.code,
            )
        if result.sn != sn:
            raise RetryableError(f"soap status query answered for Sn {result.sn[:64]!r}, not {sn}")
        status = result.get("Status")
        if status == _RECEIVED:
            receipt_no = result.get("ReceiptNo")
            return DeliveryReceipt(remote_id=receipt_no, replayed=True, detail={"sn": sn, "receiptNo": receipt_no})
        if status in (_NOT_FOUND, _REJECTED):
            return None
        raise RetryableError(f"soap status query answered an unknown Status {(status or '')[:40]!r}")

    def _headers(self, token: str) -> dict[str, str]:
        return {TOKEN_HEADER: token, SERVICE_ID_HEADER: self._service_id}


class _Reauthenticate(Exception):
    """The exchange refused the token during a status query (internal control flow of ``query_status``)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
