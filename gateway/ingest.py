"""HTTP push ingest: ``POST /ingest/{source}`` for platforms that push instead of being polled.

The order of checks is the order of cost and of trust:

1. the source exists and accepts pushes (``mode = "push"`` or ``"both"``), else 404;
2. the caller is authenticated — x-tif signed headers (timestamp window, single-use nonce) or an API key —
   before a byte of the body is read, else 401 (403 for credentials of another source);
3. the body is read as a stream and refused with 413 as soon as it passes ``[gateway] ingest_max_bytes``
   (a declared ``Content-Length`` over the limit is refused without reading at all);
4. the body is parsed (JSON object = one record, JSON array = several; XML through defusedxml, entity
   declarations refused) and each record decoded by the source's adapter, exactly as a polled one;
5. records and rejections are stored in one transaction (``Store.ingest_page``), and only then is the
   request answered: 200 when every record was taken (duplicates included: a resend is not an error),
   422 when some records were rejected — every record, good or bad, is stored either way, and the body
   names, per record, its message id and dedup verdict or the field that was wrong.

A body that cannot be parsed at all (400) or has a content type we do not read (415) is stored as one
rejected input with the reason. Refused credentials and oversize bodies are not stored: they are not
input from the platform, and storing them would let anyone fill the store.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from adapters import RawRecord, SourceAdapter
from adapters.tif import MemoryNonceStore, NonceStore, TifRefused, TifVerifier
from gateway.config import IngestAuthConfig, SourceConfig
from gateway.poller import decode_records, raw_text
from gateway.store.base import Rejection

if TYPE_CHECKING:
    from gateway.runtime import Gateway

__all__ = ["IngestError", "IngestResponse", "ingest_router"]

log = structlog.get_logger("shenguan.ingest")

MAX_RECORDS = 1000
_XML_TYPES = frozenset({"application/xml", "text/xml"})


# -- response models (published in the OpenAPI document) -------------------------------------------------


class MessageOutcome(BaseModel):
    index: int = Field(description="position of the record in the pushed body (0 for a single object)")
    message_id: str
    type: str
    verdict: str = Field(description="new, revision, duplicate (already held) or stale (older than held)")
    original_message_id: str | None = Field(default=None, description="the stored message a suppressed one repeats")


class RejectedRecord(BaseModel):
    index: int | None = Field(description="position of the record in the body; null when the whole body")
    position: str = Field(description="where the rejected input is filed (push id and index)")
    reason: str = Field(description="which field is wrong and why; never echoes the value")


class IngestResponse(BaseModel):
    source: str
    push_id: str = Field(description="id of this push, the prefix of every stored position")
    received: int = Field(description="records in the body")
    accepted: int = Field(description="new facts and revisions stored for relay")
    duplicates: int
    stale: int
    rejected: int
    messages: list[MessageOutcome]
    rejections: list[RejectedRecord]


class IngestError(BaseModel):
    error: str = Field(
        description="unknown_source, unauthorized, forbidden, stale_timestamp, replayed_nonce, too_large, "
        "unsupported_media_type, malformed, not_ready"
    )
    detail: str
    push_id: str | None = Field(default=None, description="set when the refused body was stored as rejected")


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": IngestError, "description": text}
    for status, text in {
        400: "the body is not well-formed JSON or XML (stored as rejected)",
        401: "missing or wrong credentials, stale timestamp, or replayed nonce (nothing stored)",
        403: "credentials of another source (nothing stored)",
        404: "no such push source",
        413: "body larger than ingest_max_bytes (nothing stored)",
        415: "content type not read (stored as rejected)",
        503: "the gateway is starting or stopping",
    }.items()
}
_ERRORS[422] = {"model": IngestResponse, "description": "some records were rejected; every record is stored"}

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "one native record (JSON object), several (JSON array), or one XML document",
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "object"},
                    {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": MAX_RECORDS},
                ]
            }
        },
        "application/xml": {"schema": {"type": "string"}},
    },
}


class _Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


# -- authentication -------------------------------------------------------------------------------------


def _api_key_matches(presented: str, configured: str) -> bool:
    """Constant-time comparison against a ``sha256$<hex>`` hash (recommended) or a key kept in clear."""
    if configured.startswith("sha256$"):
        digest = hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()
        return hmac.compare_digest(digest.encode(), configured.removeprefix("sha256$").lower().encode())
    return hmac.compare_digest(presented.encode("utf-8", "replace"), configured.encode("utf-8"))


def _presented_key(headers: Mapping[str, str]) -> str | None:
    if key := headers.get("x-api-key"):
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class PushAuth:
    """Per-source credentials of every push source, so a caller can be told 401 (unknown to us) from
    403 (known, but for another source)."""

    def __init__(self, sources: Mapping[str, SourceConfig], nonces: NonceStore, *, clock: Any = None) -> None:
        self._auth: dict[str, IngestAuthConfig] = {n: s.ingest for n, s in sources.items() if s.ingest is not None}
        kwargs = {"clock": clock} if clock is not None else {}
        self._tif = {
            name: TifVerifier(
                {a.paasid: a.secret.get_secret_value()}, nonces, window_s=a.window_s, scope=name, **kwargs
            )
            for name, a in self._auth.items()
            if a.auth == "tif" and a.paasid and a.secret is not None
        }

    async def authenticate(self, source: str, headers: Mapping[str, str]) -> str:
        """Who is calling (paasid or ``api-key``); raises ``_Refused`` with the right status otherwise."""
        auth = self._auth[source]
        if auth.auth == "api_key":
            key = _presented_key(headers)
            if key is None:
                raise _Refused(401, "unauthorized", "send the API key in X-API-Key (or Authorization: Bearer)")
            if any(_api_key_matches(key, k.get_secret_value()) for k in auth.api_keys):
                return "api-key"
            if self._key_of_another(source, key):
                raise _Refused(403, "forbidden", f"this API key may not push to {source}")
            raise _Refused(401, "unauthorized", "API key not accepted")
        try:
            return await self._tif[source].verify(headers)
        except TifRefused as exc:
            if exc.kind == "unknown_paasid" and self._signed_for_another(source, headers):
                raise _Refused(403, "forbidden", f"x-tif-paasid may not push to {source}") from None
            error = exc.kind if exc.kind in ("stale_timestamp", "replayed_nonce") else "unauthorized"
            raise _Refused(401, error, exc.reason) from None

    def _key_of_another(self, source: str, key: str) -> bool:
        return any(
            _api_key_matches(key, k.get_secret_value())
            for name, a in self._auth.items()
            if name != source and a.auth == "api_key"
            for k in a.api_keys
        )

    def _signed_for_another(self, source: str, headers: Mapping[str, str]) -> bool:
        for name, verifier in self._tif.items():
            if name == source:
                continue
            try:
                verifier.check_signature(headers)
            except TifRefused:
                continue
            return True
        return False


# -- the body ------------------------------------------------------------------------------------------


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "too_large", f"body of {declared} bytes is over the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > limit:
            raise _Refused(413, "too_large", f"body is over the limit of {limit} bytes")
        body += chunk
    return bytes(body)


def _media_type(request: Request) -> tuple[str, str]:
    header = request.headers.get("content-type", "application/json")
    media, _, params = header.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"').lower()
    return media.strip().lower(), charset


def _records(body: bytes, media: str, charset: str, push_id: str) -> list[RawRecord]:
    """The pushed body as native records; ``_Refused`` (400/415) when it cannot be read at all."""
    if media in _XML_TYPES:
        try:
            SafeElementTree.fromstring(body, forbid_dtd=True)
        except DefusedXmlException as exc:
            raise _Refused(
                400, "malformed", f"XML refused: {type(exc).__name__} (DTDs and entities are not allowed)"
            ) from None
        except SafeElementTree.ParseError as exc:
            raise _Refused(400, "malformed", f"malformed XML: {exc}") from None
        return [RawRecord(body, position=f"push:{push_id}")]
    if media != "application/json" and not media.endswith("+json"):
        raise _Refused(415, "unsupported_media_type", f"content type {media!r} is not read; send application/json")
    try:
        codecs.lookup(charset)
        text = body.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise _Refused(400, "malformed", f"body is not valid {charset}: {type(exc).__name__}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Refused(400, "malformed", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise _Refused(400, "malformed", "malformed JSON: nested too deeply") from None
    if isinstance(data, dict):
        return [RawRecord(data, position=f"push:{push_id}#0")]
    if isinstance(data, list):
        if not data:
            raise _Refused(400, "malformed", "the array holds no records")
        if len(data) > MAX_RECORDS:
            raise _Refused(400, "malformed", f"at most {MAX_RECORDS} records per push, got {len(data)}")
        return [RawRecord(item, position=f"push:{push_id}#{i}") for i, item in enumerate(data)]
    raise _Refused(400, "malformed", f"body must be a JSON object or an array of objects, got {type(data).__name__}")


# -- the route ---------------------------------------------------------------------------------------


def ingest_router(gateway: Gateway) -> APIRouter:
    """The push route of ``gateway``; credentials are read from its configuration once, at mount."""
    router = APIRouter(tags=["ingest"])
    store = gateway.store
    nonces: NonceStore = store if hasattr(store, "use_nonce") else MemoryNonceStore()  # type: ignore[assignment]
    auth = PushAuth(gateway.config.sources, nonces)
    limit = gateway.config.gateway.ingest_max_bytes

    def refuse(source: str, status: int, error: str, detail: str, push_id: str | None = None) -> JSONResponse:
        gateway.metrics.ingest_requests.labels(source, str(status)).inc()
        log.info("ingest.refused", source=source, status=status, error=error, detail=detail, push_id=push_id)
        return JSONResponse(IngestError(error=error, detail=detail, push_id=push_id).model_dump(), status_code=status)

    @router.post(
        "/ingest/{source}",
        summary="Push native records of a source",
        response_model=IngestResponse,
        responses=_ERRORS,
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def ingest(
        request: Request,
        source: Annotated[str, Path(description="a configured source with mode push or both", max_length=200)],
        x_tif_paasid: Annotated[str | None, Header(alias="x-tif-paasid")] = None,
        x_tif_timestamp: Annotated[str | None, Header(alias="x-tif-timestamp")] = None,
        x_tif_nonce: Annotated[str | None, Header(alias="x-tif-nonce")] = None,
        x_tif_signature: Annotated[str | None, Header(alias="x-tif-signature")] = None,
        x_api_key: Annotated[str | None, Header(alias="x-api-key")] = None,
    ) -> JSONResponse:
        """Authenticate, read (bounded), decode and store; answer only once the records are durable.

        The header parameters are declared for the OpenAPI document; they are read from ``request.headers``.
        """
        config = gateway.config.sources.get(source)
        adapter = gateway.sources.get(source)
        if config is None or config.mode == "poll":
            return refuse(source, 404, "unknown_source", f"no source {source!r} accepts pushes")
        if adapter is None or gateway.relay is None:
            return refuse(source, 503, "not_ready", "the gateway is starting or stopping; retry shortly")
        push_id = uuid.uuid4().hex
        try:
            caller = await auth.authenticate(source, request.headers)
            body = await _read_limited(request, limit)
        except _Refused as exc:
            return refuse(source, exc.status, exc.error, exc.detail)
        media, charset = _media_type(request)
        try:
            records = _records(body, media, charset, push_id)
        except _Refused as exc:
            # Authenticated input that cannot be read is still input: kept with its reason.
            rejection = Rejection(source, exc.detail, raw_text(body), f"push:{push_id}")
            result = await store.ingest_page(source, [], [rejection], None, gateway.router)
            gateway.metrics.ingested(source, result)
            gateway.wake_alerts()
            return refuse(source, exc.status, exc.error, exc.detail, push_id)
        return await _store(gateway, source, adapter, records, push_id, caller)

    return router


async def _store(
    gateway: Gateway, source: str, adapter: SourceAdapter, records: list[RawRecord], push_id: str, caller: str
) -> JSONResponse:
    envelopes = []
    rejections: list[Rejection] = []
    env_index: list[int] = []
    rej_index: list[int] = []
    for i, record in enumerate(records):
        envs, rejs = decode_records(source, adapter, [record])
        envelopes.extend(envs)
        env_index.extend([i] * len(envs))
        rejections.extend(rejs)
        rej_index.extend([i] * len(rejs))
    result = await gateway.store.ingest_page(source, envelopes, rejections, None, gateway.router)
    # Durable from here on: the store committed before we answer.
    gateway.metrics.ingested(source, result)
    if result.accepted and gateway.relay is not None:
        gateway.relay.wake()
    if result.rejected or result.unrouted:
        gateway.wake_alerts()
    response = IngestResponse(
        source=source,
        push_id=push_id,
        received=len(records),
        accepted=result.accepted,
        duplicates=result.duplicates,
        stale=result.stale,
        rejected=result.rejected,
        messages=[
            MessageOutcome(
                index=i,
                message_id=v.message_id,
                type=v.type,
                verdict=v.verdict,
                original_message_id=v.original_message_id,
            )
            for i, v in zip(env_index, result.verdicts, strict=False)
        ],
        rejections=[
            RejectedRecord(index=i, position=r.position or f"push:{push_id}", reason=r.reason)
            for i, r in zip(rej_index, rejections, strict=True)
        ],
    )
    status = 422 if rejections else 200
    gateway.metrics.ingest_requests.labels(source, str(status)).inc()
    log.info(
        "ingest.push",
        source=source,
        caller=caller,
        push_id=push_id,
        status=status,
        records=len(records),
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=result.rejected,
    )
    for rej in rejections:
        log.warning("ingest.rejected", source=source, position=rej.position, reason=rej.reason)
    return JSONResponse(response.model_dump(), status_code=status)
