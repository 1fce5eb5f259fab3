"""``PeerAdapter`` (registered as ``shenguan``): canonical envelopes between two gateways, e.g. a city's and
the province's.

One adapter, both directions, because both ends speak the same format (``adapters.peer.wire``):

- as a destination (the city's ``[destinations.province]``), ``deliver`` POSTs the envelope to the peer's
  ``/ingest/{source}`` with this gateway's credentials (an API key, or x-tif signed headers) over one
  shared ``httpx.AsyncClient``; ``deliver_batch`` POSTs up to ``MAX_BATCH`` at once as a JSON array, split
  to fit the peer's ``ingest_max_bytes``. The peer stores before it answers and deduplicates by content,
  so it is an idempotent receiver: a lost reply is resent, and the resend comes back ``duplicate``.
- as a source (the province's ``[sources.city]`` with ``mode = "push"``), ``decode`` takes a pushed
  envelope, checks it (integrity, loops) and keeps every attribute as the origin wrote it.

Options of the section (``from_config``):

- ``gateway_id`` (required): this gateway's name among its peers, e.g. ``"city-320700"``. A sender adds
  it to ``via``; a receiver refuses what already went through it.
- ``max_hops`` (default 8): a pushed message that has left more gateways than this is refused.
- ``base_url`` (sending): the peer gateway, e.g. ``"http://province.example:8780"``. Without it the
  adapter only receives, and ``deliver`` refuses with that reason.
- ``source`` (sending, required with ``base_url``): the push source the peer configured for us — the
  ``{source}`` of ``/ingest/{source}``.
- ``auth`` (``"api_key"`` or ``"tif"``; default: whichever credentials are given): ``api_key`` (sent as
  ``X-API-Key``), or ``paasid`` and ``secret`` (x-tif signed headers, signed afresh for every request).
- ``timeout_s`` (default 10), ``max_body_bytes`` (default 1048576: the peer's ``ingest_max_bytes``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import httpx
import structlog

from adapters.base import BatchResult, Capabilities, DeliveryReceipt, Direction, PollPage, RawRecord
from adapters.errors import (
    AdapterError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
    classify_transport_error,
)
from adapters.http import async_client
from adapters.options import base_url_option, positive_float_option, str_option
from adapters.peer.reply import TooLarge, results
from adapters.peer.wire import decode_envelope, dumps, encode_envelope
from adapters.tif import signed_headers
from schemas import Classification, Envelope, event_types

__all__ = ["MAX_BATCH", "PeerAdapter", "PeerLink"]

log = structlog.get_logger(__name__)

MAX_BATCH = 100  # envelopes per push; the peer's ingest takes up to 1000, 100 keeps one push well under a second
DEFAULT_MAX_HOPS = 8
DEFAULT_MAX_BODY = 1_048_576  # the gateway's default ingest_max_bytes
_SECRET = "a secret (涉密) message is never sent to a peer gateway; it belongs on paper"


@dataclass(frozen=True, slots=True)
class PeerLink:
    """Where and as whom this gateway pushes: the peer's base URL, our push source there, our credentials."""

    base_url: str
    source: str
    auth: Literal["api_key", "tif"]
    api_key: str | None = None
    paasid: str | None = None
    secret: str | None = None

    def headers(self) -> dict[str, str]:
        """Credentials for one request; x-tif headers are signed afresh each time (a resent signature is a replay)."""
        if self.auth == "api_key":
            assert self.api_key is not None
            return {"x-api-key": self.api_key}
        assert self.paasid is not None and self.secret is not None
        return signed_headers(paasid=self.paasid, token=self.secret)

    @property
    def path(self) -> str:
        return f"ingest/{self.source}"


class PeerAdapter:
    """Destination and push source ``shenguan``: one reused ``httpx.AsyncClient`` for every push it makes."""

    version: ClassVar[str] = "0.1.0"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.both,
        event_types=tuple(sorted(event_types())),
        idempotent_receiver=True,  # the peer stores before answering and suppresses a resend as a duplicate
        status_query=False,  # nothing to ask: resending is how a lost reply is settled
        max_batch_size=MAX_BATCH,
    )

    def __init__(
        self,
        name: str,
        *,
        gateway_id: str,
        link: PeerLink | None = None,
        max_hops: int = DEFAULT_MAX_HOPS,
        timeout_s: float = 10.0,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not gateway_id.strip():
            raise ValueError("gateway_id must not be blank")
        if max_hops < 1:
            raise ValueError("max_hops must be at least 1")
        self.name = name
        self.gateway_id = gateway_id
        self.max_hops = max_hops
        self._link = link
        self._max_body = max_body_bytes
        self._client = (
            async_client(base_url=link.base_url, timeout_s=timeout_s, transport=transport)
            if link is not None
            else None
        )

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        """Build from the section's options (see the module docstring)."""
        adapter = f"shenguan peer adapter {name!r}"
        gateway_id = str_option(options, "gateway_id", adapter=adapter)
        max_hops = _int_option(options, "max_hops", DEFAULT_MAX_HOPS, adapter=adapter, low=1, high=64)
        link = _link(options, adapter=adapter)
        return cls(
            name,
            gateway_id=gateway_id,
            link=link,
            max_hops=max_hops,
            timeout_s=positive_float_option(options, "timeout_s", 10.0, adapter=adapter),
            max_body_bytes=_int_option(options, "max_body_bytes", DEFAULT_MAX_BODY, adapter=adapter, low=1024),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- source side ----------------------------------------------------------------------------------

    async def poll(self, cursor: str | None, limit: int) -> PollPage:
        """Nothing to poll: a peer pushes. ``PermanentError`` says how to configure the source instead."""
        raise PermanentError(f'source {self.name!r} (adapter shenguan) takes pushes only: set mode = "push"')

    def decode(self, record: RawRecord) -> list[Envelope]:
        """A pushed canonical envelope, checked and kept as is (``adapters.peer.wire.decode_envelope``)."""
        try:
            envelope = decode_envelope(record.payload, gateway_id=self.gateway_id, max_hops=self.max_hops)
        except AdapterError as exc:
            log.info("peer.decode_rejected", adapter=self.name, position=record.position, reason=exc.reason)
            raise
        return [envelope]

    # -- destination side -----------------------------------------------------------------------------

    def encode(self, envelope: Envelope) -> dict[str, Any]:
        """The envelope as the peer receives it: unchanged but for this gateway added to ``via``."""
        return encode_envelope(envelope, gateway_id=self.gateway_id)

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        """Push one envelope; a receipt for new, revision, duplicate and stale alike (the peer holds it)."""
        (result,) = await self._push([(envelope, idempotency_key)])
        if isinstance(result, AdapterError):
            self._failed([envelope], result)
            raise result
        log.debug(
            "peer.delivered",
            adapter=self.name,
            message_id=envelope.id,
            verdict=result.detail.get("verdict"),
        )
        return result

    async def deliver_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult]:
        """Push ``items`` as JSON arrays that fit ``max_body_bytes``; one result per item, in order.

        Raises only when nothing could be pushed (the first push failed as a whole). When a later push fails,
        its records carry that error and the records after it a ``RetryableError`` (not sent): each record's
        result is what happened to it.
        """
        secret = Classification.secret
        out: dict[int, BatchResult] = {
            i: PermanentError(_SECRET) for i, (env, _) in enumerate(items) if env.classification is secret
        }
        parts = self._parts([i for i in range(len(items)) if i not in out], items)
        for n, part in enumerate(parts):
            try:
                answers = await self._push([items[i] for i in part])
            except AdapterError as exc:
                self._failed([items[i][0] for i in part], exc)
                if n == 0 and not out:
                    raise
                out.update(dict.fromkeys(part, exc))
                skipped = RetryableError(f"not sent: an earlier push of this batch failed ({exc.kind})")
                out.update({i: skipped for later in parts[n + 1 :] for i in later})
                break
            for i, answer in zip(part, answers, strict=True):
                out[i] = answer
                if isinstance(answer, AdapterError):
                    self._failed([items[i][0]], answer)
        return [out[i] for i in range(len(items))]

    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        """Not offered (``capabilities.status_query`` is false): the answer is to resend, which the peer
        recognises as a duplicate. ``RetryableError`` if asked anyway."""
        raise RetryableError("a shenguan peer offers no status query; resend instead (it suppresses duplicates)")

    async def query_status_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult | None]:
        """See ``query_status``."""
        raise RetryableError("a shenguan peer offers no status query; resend instead (it suppresses duplicates)")

    # -- the push itself ------------------------------------------------------------------------------

    def _parts(self, indices: Sequence[int], items: Sequence[tuple[Envelope, str]]) -> list[list[int]]:
        """``indices`` of ``items`` cut into consecutive pushes whose JSON array fits ``max_body_bytes``."""
        parts: list[list[int]] = []
        size = 0
        for i in indices:
            cost = len(dumps(self.encode(items[i][0]))) + 1  # and its comma (or a bracket)
            if not parts or size + cost + 1 > self._max_body:
                parts.append([])
                size = 1  # the opening bracket
            parts[-1].append(i)
            size += cost
        return parts

    async def _push(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult]:
        """One POST (an object for one envelope, an array for several); a 413 halves a batch and tries again."""
        envelopes = [env for env, _ in items]
        if any(env.classification is Classification.secret for env in envelopes):
            # Defence in depth: routing sends 涉密 messages to paper; this adapter must never carry one.
            raise PermanentError(_SECRET)
        if self._client is None or self._link is None:
            raise PermanentError(f"destination {self.name!r} has no base_url: this shenguan adapter only receives")
        bodies = [self.encode(env) for env in envelopes]
        content = dumps(bodies[0] if len(bodies) == 1 else bodies)
        headers = self._link.headers() | {"content-type": "application/json"}
        if len(items) == 1:
            headers["idempotency-key"] = items[0][1]  # for the peer's logs; it deduplicates by content
        try:
            response = await self._client.post(self._link.path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise classify_transport_error(exc) from exc
        except OSError as exc:  # a raw socket error from a custom transport: it may have left
            raise OutcomeUnknownError(f"no reply: {type(exc).__name__}: {exc}") from exc
        try:
            return results(response, envelopes)
        except TooLarge:
            if len(items) == 1:
                raise
            half = math.ceil(len(items) / 2)
            return [*await self._push(items[:half]), *await self._push(items[half:])]

    def _failed(self, envelopes: Sequence[Envelope], exc: AdapterError) -> None:
        # One line per attempt at info: the relay raises the alert once, when the delivery changes state.
        log.info(
            "peer.deliver_failed",
            adapter=self.name,
            message_ids=[env.id for env in envelopes[:20]],
            records=len(envelopes),
            kind=exc.kind,
            code=exc.code,
            reason=exc.reason,
        )


def _link(options: Mapping[str, Any], *, adapter: str) -> PeerLink | None:
    sending = ("source", "auth", "api_key", "paasid", "secret")
    if options.get("base_url") is None:
        given = [key for key in sending if options.get(key) is not None]
        if given:
            raise ValueError(f"{adapter}: {', '.join(given)} set but no base_url to push to")
        return None
    base_url = base_url_option(options, adapter=adapter)
    source = str_option(options, "source", adapter=adapter)
    auth = options.get("auth") or ("tif" if options.get("paasid") is not None else "api_key")
    if auth == "api_key":
        return PeerLink(base_url, source, "api_key", api_key=str_option(options, "api_key", adapter=adapter))
    if auth == "tif":
        return PeerLink(
            base_url,
            source,
            "tif",
            paasid=str_option(options, "paasid", adapter=adapter),
            secret=str_option(options, "secret", adapter=adapter),
        )
    raise ValueError(f"{adapter}: option 'auth' must be 'api_key' or 'tif'")


def _int_option(
    options: Mapping[str, Any], key: str, default: int, *, adapter: str, low: int, high: int | None = None
) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{adapter}: option {key!r} must be an integer {bounds}")
    return value
