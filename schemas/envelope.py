"""The canonical envelope every message travels in.

Attribute names are CloudEvents 1.0's (``id``, ``source``, ``type``, ``subject``, ``time``,
``specversion``, ``dataschema``) so that anyone who has seen a CloudEvent can read ours; the extensions
are what exactly-once relaying needs: the natural key of the business fact (``business_key``), which
version of it this is (``revision``), a hash of its normalised content (``content_hash``), who may see it
(``classification``), where it belongs (``region``) and which approval's closed loop it is part of
(``correlation_id``, ``causation_id``). A message relayed between gateways (city → province) also
says which gateways it left on the way (``via``): the same id, key, revision and hash at every hop.

The envelope id is derived, not random: the same native record decoded twice (a re-read page after a
crash, a retried push) yields the same id, which is what lets every layer below be idempotent.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from schemas.identifiers import STORED_RECORD, RegionCode

__all__ = [
    "SCHEMA_VERSION",
    "Classification",
    "Envelope",
    "EventPayload",
    "content_hash",
    "event_types",
    "payload_model",
]

SCHEMA_VERSION = "v1"
_ID_NAMESPACE = uuid.UUID("6f1c1b8e-7d1e-4b0c-9d43-5e6a0c2f7a11")


class Classification(StrEnum):
    """密级 as the gateway acts on it: ``secret`` never touches a network adapter (paper only)."""

    public = "public"
    internal = "internal"
    secret = "secret"


class EventPayload(BaseModel):
    """Base of every event payload: knows its event type, its natural key and its business time."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    event_type: ClassVar[str]
    _registry: ClassVar[dict[str, type[EventPayload]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if isinstance(event_type, str):
            EventPayload._registry[event_type] = cls

    def business_key(self) -> str:  # pragma: no cover - every payload overrides it
        """The natural key of the business fact this payload describes (same fact, same key)."""
        raise NotImplementedError

    def business_time(self) -> datetime | None:
        """When the fact happened at its source; orders two versions that share a revision number."""
        return None


def event_types() -> dict[str, type[EventPayload]]:
    """All known event types and their payload models."""
    return dict(EventPayload._registry)


def payload_model(event_type: str) -> type[EventPayload]:
    """The payload model of ``event_type``; ``ValueError`` naming the type when it is unknown."""
    try:
        return EventPayload._registry[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}") from None


# Where an envelope keeps the payload model it validated: an entry of the instance ``__dict__`` that is not a
# field, which pydantic leaves out of equality and serialisation (as it does for ``functools.cached_property``).
_TYPED = "_shenguan_typed_payload"
# Validation context key by which ``wrap`` hands over the payload it built ``data`` and the hash from.
_WRAPPED = "_shenguan_wrapped_payload"


def content_hash(data: dict[str, Any]) -> str:
    """SHA-256 of the normalised payload: sorted keys, compact separators, UTF-8."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Envelope(BaseModel):
    """One canonical message: CloudEvents attributes, shenguan's extensions, and the payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, description="Deterministic message id (uuid5 of source, type, key, revision, hash)")
    source: str = Field(min_length=1, description="Where the message came from, e.g. 'zwfw' or 'peer:city-320700'")
    type: str = Field(min_length=1, description="Event type, e.g. 'approval.decided'")
    subject: str | None = None
    time: AwareDatetime = Field(description="When the fact happened at its source (timezone-aware)")
    dataschema: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    business_key: str = Field(min_length=1, description="Natural key of the business fact")
    revision: int = Field(ge=1, description="1 for the first report, 2, 3, … for corrections (重报)")
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    classification: Classification = Classification.public
    region: RegionCode | None = None
    correlation_id: str = Field(min_length=1, description="Ties every message of one approval's loop")
    causation_id: str | None = None
    via: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = Field(
        default=(),
        max_length=64,
        description="Gateways this message left on its way here, oldest first: set by the shenguan peer adapter "
        "(adapters.peer) at each hop, read by the next one to refuse loops and over-long chains",
    )
    data: dict[str, Any]

    @model_validator(mode="after")
    def _payload_matches_type(self, info: ValidationInfo) -> Self:
        """``data`` must be a valid payload of ``type`` and hash to ``content_hash``; the payload model is kept.

        Keeping it is what makes ``payload()`` free for the adapter that encodes the envelope right after it
        was loaded, and ``wrap`` skips both checks because it derived ``data`` and the hash from a payload
        model that was validated already: on the relay's hot path each envelope used to be validated three
        or four times over (docs/benchmarks.md).
        """
        context = info.context if isinstance(info.context, dict) else {}
        wrapped = context.get(_WRAPPED)
        if isinstance(wrapped, EventPayload) and wrapped.event_type == self.type:
            typed = wrapped
        else:
            typed = payload_model(self.type).model_validate(self.data, context=context)
            if not context.get(STORED_RECORD) and content_hash(self.data) != self.content_hash:
                raise ValueError("content_hash does not match data")
        self.__dict__[_TYPED] = (self.type, self.data, typed)
        return self

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        source: str,
        revision: int = 1,
        classification: Classification = Classification.public,
        region: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        subject: str | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        """Build the envelope of ``payload`` with its derived id, key and content hash."""
        data = payload.model_dump(mode="json")
        digest = content_hash(data)
        key = payload.business_key()
        event_type = payload.event_type
        ident = uuid.uuid5(_ID_NAMESPACE, f"{source}|{event_type}|{key}|{revision}|{digest}")
        fields = {
            "id": str(ident),
            "source": source,
            "type": event_type,
            "subject": subject or key,
            "time": time or payload.business_time() or _missing_time(event_type),
            "dataschema": f"urn:shenguan:schema:{SCHEMA_VERSION}:{event_type}",
            "business_key": key,
            "revision": revision,
            "content_hash": digest,
            "classification": classification,
            "region": region,
            "correlation_id": correlation_id or key,
            "causation_id": causation_id,
            "data": data,
        }
        return cls.model_validate(fields, context={_WRAPPED: payload})

    @classmethod
    def from_stored(cls, body: str | bytes) -> Envelope:
        """An envelope read back from shenguan's own store, where it was written after full validation.

        Its structure and types are validated again (the typed payload is what adapters encode), but the
        identifier checksums and the content hash are not recomputed: they held when the message was
        accepted, and a stored envelope is never rewritten. On the relay's hot path they were about half
        the cost of loading each leased envelope (docs/benchmarks.md). Anything that did not come out of
        the store goes through ``model_validate`` or ``model_validate_json``.
        """
        return cls.model_validate_json(body, context={STORED_RECORD: True})

    @classmethod
    def from_stored_lazy(cls, body: str | bytes) -> Envelope:
        """An envelope read back from the store for its attributes and ``data`` alone: nothing is validated now.

        For readers that look at attributes and ``data`` and never encode the payload: the deadline tracker
        reads every stored message once or twice as it follows the audit chain, and validating the typed
        payload was half of its time (docs/benchmarks.md). ``payload()`` validates it when asked. Only for
        what shenguan stored itself; ``from_stored`` for anything handed to an adapter.
        """
        fields = json.loads(body)
        fields["time"] = datetime.fromisoformat(fields["time"])
        return cls.model_construct(**fields)

    def payload(self) -> EventPayload:
        """The typed payload: the model validated with the envelope, unless ``data`` was replaced since."""
        typed = self.__dict__.get(_TYPED)
        if typed is not None and typed[0] == self.type and typed[1] is self.data:
            return typed[2]  # type: ignore[no-any-return]
        return payload_model(self.type).model_validate(self.data)


def _missing_time(event_type: str) -> datetime:
    raise ValueError(f"{event_type}: no business time and no explicit envelope time")
