"""``CreditAdapter``: uploads 双公示 records to the 公共信用信息平台 in batches, one verdict per record.

Every record carries its delivery's idempotency key as ``recordId``, and the platform answers a ``recordId`` it
has judged with that same verdict — in whatever batch it comes again. Batch composition therefore never
matters for correctness: a record resent after a lost reply, alone or among others, cannot become a second
record. The batch id is derived from the record ids, so the very same batch resent carries the same id.

Classification, per record and per batch:

- a record ``accepted`` → ``DeliveryReceipt`` (``replayed`` when the platform had judged it before);
- a record ``rejected`` → a ``PermanentError`` result with the platform's (masked) reason; the rest stands;
- a record without a verdict in an otherwise readable reply → an ``OutcomeUnknownError`` result;
- the batch: connection refused, 429/502/503/504, 401 after a fresh token, 413 (batch too large for this
  platform: a configuration fix) → ``RetryableError``; a 500, a dropped connection or an unreadable 200 →
  ``OutcomeUnknownError`` (some records may have been applied); any other 4xx → ``PermanentError``.

The status query (``query_status_batch``) asks for many ``recordId`` at once and tells accepted, rejected (with
the reason) and never seen apart, so the relay can settle a batch whose reply was lost without resending a
record the platform has already judged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import httpx
import structlog

from adapters.base import BatchResult, Capabilities, DeliveryReceipt, Direction
from adapters.credit.auth import AppTokenCache
from adapters.credit.codec import ACCEPTED_TYPES, NotPublishable, Publisher, encode_entry
from adapters.errors import (
    AdapterError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
    classify_transport_error,
)
from adapters.http import async_client, retry_after_s
from adapters.masking import mask_text
from adapters.options import base_url_option, positive_float_option, str_option
from schemas import Classification, Envelope, LicenseCategory
from schemas.identifiers import check_uscc, normalise_code

__all__ = ["MAX_BATCH", "CreditAdapter"]

log = structlog.get_logger(__name__)

TOKEN_PATH = "api/v1/auth/token"
BATCHES_PATH = "api/v1/batches"
QUERY_PATH = "api/v1/records/query"
MAX_BATCH = 500  # the platform's limit per upload and per status query
_BUSY = frozenset({429, 502, 503, 504})  # refused or lost before processing: safe to resend
_CATEGORY_TEXT = {
    "普通": LicenseCategory.general,
    "特许": LicenseCategory.franchise,
    "认可": LicenseCategory.recognition,
    "核准": LicenseCategory.verification,
    "登记": LicenseCategory.registration,
    "其他": LicenseCategory.other,
}


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _short(value: Any) -> str:
    """Platform text, masked and shortened: it is stored with the delivery and logged."""
    return mask_text(value[:300]) if isinstance(value, str) else ""


def batch_id(record_ids: Sequence[str]) -> str:
    """The same records in the same order give the same batch id (a resent batch is recognisably the same)."""
    return hashlib.sha256("\x1f".join(record_ids).encode()).hexdigest()[:32]


def _uscc_option(options: Mapping[str, Any], key: str, *, adapter: str, required: bool) -> str | None:
    if key not in options and not required:
        return None
    value = normalise_code(str_option(options, key, adapter=adapter))
    try:
        return check_uscc(value)
    except ValueError as exc:
        raise ValueError(f"{adapter}: option {key!r}: {exc}") from None


def _publisher(options: Mapping[str, Any], adapter: str) -> Publisher:
    authorities_option = options.get("authorities", {})
    if not isinstance(authorities_option, Mapping):
        raise ValueError(f"{adapter}: option 'authorities' must be a table of 统一社会信用代码 = name")
    authorities: dict[str, str] = {}
    for code, name in authorities_option.items():
        checked = _uscc_option({"code": code}, "code", adapter=f"{adapter} authorities", required=True)
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{adapter}: authorities.{code} must be a non-empty name")
        authorities[str(checked)] = name.strip()
    category_text = options.get("license_category", LicenseCategory.general.value)
    category = _CATEGORY_TEXT.get(category_text) if isinstance(category_text, str) else None
    if category is None:
        try:
            category = LicenseCategory(category_text)
        except ValueError:
            choices = ", ".join([*(c.value for c in LicenseCategory), *_CATEGORY_TEXT])
            raise ValueError(f"{adapter}: option 'license_category' must be one of {choices}") from None
    return Publisher(
        authority_name=str_option(options, "authority_name", adapter=adapter),
        authority_code=str(_uscc_option(options, "authority_code", adapter=adapter, required=True)),
        authorities=authorities,
        source_unit_name=str_option(options, "source_unit_name", adapter=adapter)
        if "source_unit_name" in options
        else None,
        source_unit_code=_uscc_option(options, "source_unit_code", adapter=adapter, required=False),
        license_category=category,
    )


class CreditAdapter:
    """Batch destination adapter for ``credit``: one reused ``httpx.AsyncClient``, shared with the token cache."""

    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.destination,
        event_types=ACCEPTED_TYPES,
        idempotent_receiver=True,
        status_query=True,
        max_batch_size=MAX_BATCH,
    )

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        publisher: Publisher,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.publisher = publisher
        self._client = async_client(base_url=base_url, timeout_s=timeout_s, transport=transport)
        self._tokens = AppTokenCache(self._client, token_url=TOKEN_PATH, app_key=app_key, app_secret=app_secret)

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Options: ``base_url``, ``app_key``, ``app_secret``, ``authority_name``, ``authority_code`` (the
        行政审批局 that grants the approvals), optional ``authorities`` (统一社会信用代码 → name of other
        许可机关), ``source_unit_name``/``source_unit_code`` (数据来源单位, default: the authority),
        ``license_category`` (许可类别, default 普通) and ``timeout_s`` (default 30)."""
        adapter = f"credit adapter {name!r}"
        return cls(
            name,
            base_url=base_url_option(options, adapter=adapter),
            app_key=str_option(options, "app_key", adapter=adapter),
            app_secret=str_option(options, "app_secret", adapter=adapter),
            publisher=_publisher(options, adapter),
            timeout_s=positive_float_option(options, "timeout_s", 30.0, adapter=adapter),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def encode(self, envelope: Envelope) -> dict[str, Any]:
        """The upload entry ``{"kind": "XK"|"CF", "version", "data"}`` (see ``credit.codec``); ``PermanentError``
        when the message has no 双公示 record."""
        try:
            return encode_entry(envelope, self.publisher)
        except NotPublishable as exc:
            raise PermanentError(str(exc), code="NOT_PUBLISHABLE") from None

    # -- delivery -------------------------------------------------------------------------------------------
    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        """A batch of one; its record's verdict is the outcome."""
        (result,) = await self.deliver_batch([(envelope, idempotency_key)])
        if isinstance(result, AdapterError):
            raise result
        return result

    async def deliver_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult]:
        """Upload ``items`` in one request (``len(items)`` ≤ ``MAX_BATCH``); one result per item, in order."""
        if len(items) > MAX_BATCH:
            raise ValueError(f"credit takes at most {MAX_BATCH} records per batch, got {len(items)}")
        results: list[BatchResult | None] = [None] * len(items)
        entries: list[dict[str, Any]] = []
        positions: list[int] = []
        for position, (envelope, key) in enumerate(items):
            try:
                entries.append({"recordId": key, **self._entry(envelope)})
            except PermanentError as exc:
                results[position] = exc  # nothing to publish for this one; the others still go
                continue
            positions.append(position)
        if entries:
            record_ids = [e["recordId"] for e in entries]
            bid = batch_id(record_ids)
            try:
                response = await self._send("POST", BATCHES_PATH, json={"batchId": bid, "records": entries})
                verdicts = self._verdicts(response, record_ids)
            except AdapterError as exc:
                log.info(
                    "credit.batch_failed",
                    adapter=self.name,
                    batch_id=bid,
                    records=len(entries),
                    kind=exc.kind,
                    code=exc.code,
                    reason=exc.reason,
                )
                raise
            for position, verdict in zip(positions, verdicts, strict=True):
                results[position] = verdict
            log.info(
                "credit.batch_sent",
                adapter=self.name,
                batch_id=bid,
                records=len(entries),
                accepted=sum(isinstance(v, DeliveryReceipt) for v in verdicts),
                rejected=sum(isinstance(v, PermanentError) for v in verdicts),
                replayed=sum(isinstance(v, DeliveryReceipt) and v.replayed for v in verdicts),
            )
        assert all(r is not None for r in results), "every item has a result"
        return results  # type: ignore[return-value]

    def _entry(self, envelope: Envelope) -> dict[str, Any]:
        if envelope.type not in ACCEPTED_TYPES:
            raise PermanentError(f"credit does not accept {envelope.type}", code="NOT_PUBLISHABLE")
        if envelope.classification is Classification.secret:
            # Defence in depth: routing sends 涉密 messages to paper; a network adapter must never carry one.
            raise PermanentError("credit must not receive a secret (涉密) message; it belongs on paper", code="SECRET")
        return self.encode(envelope)

    def _verdicts(self, response: httpx.Response, record_ids: Sequence[str]) -> list[BatchResult]:
        status = response.status_code
        body = _json_object(response)
        if status == 200:
            if body is None:
                raise OutcomeUnknownError("credit HTTP 200 with an unreadable body; it may hold the records")
            results = body.get("results")
            code = body.get("code")
            if isinstance(code, str) and code != "0":
                # A refusal of the whole upload hidden in a 200: judged, not lost.
                raise PermanentError(f"credit business error {code}: {_short(body.get('message'))}", code=code)
            if code != "0" or not isinstance(results, list):
                raise OutcomeUnknownError("credit HTTP 200 without a result code and per-record results")
            by_id = {r.get("recordId"): r for r in results if isinstance(r, dict)}
            return [_verdict(by_id.get(record_id), record_id) for record_id in record_ids]
        raise _batch_error(status, body, response)

    # -- status query ---------------------------------------------------------------------------------------
    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        """Whether credit holds this record: a receipt, or ``None`` (never seen, or seen and rejected)."""
        (answer,) = await self.query_status_batch([(envelope, idempotency_key)])
        return answer if isinstance(answer, DeliveryReceipt) else None

    async def query_status_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult | None]:
        """Per item: a receipt (accepted), a ``PermanentError`` (rejected, with the reason) or ``None`` (never
        seen); ``RetryableError`` when the platform could not be asked."""
        answers: list[BatchResult | None] = []
        keys = [key for _, key in items]
        for start in range(0, len(keys), MAX_BATCH):
            chunk = keys[start : start + MAX_BATCH]
            try:
                response = await self._send("POST", QUERY_PATH, json={"recordIds": chunk})
            except AdapterError as exc:
                raise RetryableError(f"credit status query failed: {exc.reason}", code=exc.code) from exc
            body = _json_object(response)
            results = body.get("results") if response.status_code == 200 and body is not None else None
            if not isinstance(results, list):
                raise RetryableError(
                    f"credit status query answered HTTP {response.status_code} without results",
                    code=str(response.status_code),
                )
            by_id = {r.get("recordId"): r for r in results if isinstance(r, dict)}
            for key in chunk:
                found = by_id.get(key)
                state = found.get("status") if found is not None else None
                if state == "unknown":
                    answers.append(None)
                elif state in ("accepted", "rejected"):
                    answers.append(_verdict(found | {"replayed": True}, key))
                else:
                    raise RetryableError(f"credit status query gave no usable answer for record {key}")
        return answers

    async def _send(self, method: str, path: str, *, json: Any) -> httpx.Response:
        """Send with the current token; on 401 get a new one and send the identical request once more.

        A 401 is a refusal before processing, so repeating the request is safe. Transport failures come out
        already classified.
        """
        token = await self._tokens.get()
        try:
            response = await self._client.request(method, path, json=json, headers={"X-Credit-Token": token})
            if response.status_code == 401:
                log.info("credit.token_refused", adapter=self.name)
                token = await self._tokens.refresh(stale=token)
                response = await self._client.request(method, path, json=json, headers={"X-Credit-Token": token})
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc) from exc
        except OSError as exc:  # a raw socket error from a custom transport: the request may have arrived
            raise OutcomeUnknownError(f"no reply: {type(exc).__name__}: {exc}") from exc
        return response


def _verdict(result: Mapping[str, Any] | None, record_id: str) -> BatchResult:
    """One record's result object → receipt, ``PermanentError`` (rejected) or ``OutcomeUnknownError``."""
    status = result.get("status") if result is not None else None
    if result is None or status not in ("accepted", "rejected"):
        return OutcomeUnknownError(f"credit reply has no verdict for record {record_id}")
    if status == "rejected":
        reason = _short(result.get("reason")) or "no reason given"
        return PermanentError(f"credit rejected the record: {reason}", code="REJECTED")
    key = result.get("key")
    return DeliveryReceipt(
        remote_id=key if isinstance(key, str) else None,
        replayed=result.get("replayed") is True,
        detail={"recordId": record_id},
    )


def _batch_error(status: int, body: Mapping[str, Any] | None, response: httpx.Response) -> AdapterError:
    """The error of a batch the platform did not judge record by record."""
    code = body.get("code") if body is not None and isinstance(body.get("code"), str) else str(status)
    message = _short((body or {}).get("message"))
    if status == 401:
        return RetryableError("credit refused a freshly issued token (401)", code=code)
    if status in _BUSY:
        return RetryableError(f"credit HTTP {status}", code=code, retry_after_s=retry_after_s(response))
    if status == 413:
        return RetryableError(
            f"credit refused the batch as too large ({message}): lower batch_size for this destination", code=code
        )
    if status == 408:
        return RetryableError("credit HTTP 408: request not received in time", code=code)
    if status >= 500:
        return OutcomeUnknownError(f"credit HTTP {status}; it may have applied some records", code=code)
    if 400 <= status < 500:
        return PermanentError(f"credit refused the batch: HTTP {status} {code}: {message}", code=code)
    return RetryableError(f"credit unexpected HTTP {status} (check base_url)", code=code)
