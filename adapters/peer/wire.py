"""The peer wire format: a canonical envelope as JSON, plus the hop it is taking.

What one gateway pushes to another is the stored envelope itself (``Envelope.model_dump(mode="json")``),
so nothing is translated and nothing can be lost in translation: id, type, business key, revision,
content hash, correlation and causation ids, classification, region, time and ``source`` arrive exactly
as the origin wrote them. The one attribute a hop changes is ``via``, the gateways the message has left,
oldest first: the sender appends its own ``gateway_id``.

Decisions, and why:

- ``source`` keeps the origin's name (``zwfw``, ``shenguan`` for a default claim …), not the hop's, so a
  trace anywhere in the network shows where the fact entered it and a route's ``sources`` filter means
  the same thing at every gateway (a city's default claims are still ``shenguan``). Which gateways it
  came through is ``via``'s job.
- Integrity: the receiver re-validates the payload against the model of its type, recomputes the content
  hash over ``data`` and refuses a mismatch, and refuses a ``business_key`` that is not the payload's own
  natural key — a peer can neither smuggle another payload under a known hash nor file a payload under
  another fact's key (the dedup ledger is keyed on it).
- Loops: a message whose ``via`` already names the receiving gateway, names one gateway twice, or is
  longer than ``max_hops`` is refused with the reason. The dedup ledger would suppress an exact re-entry
  anyway; the explicit refusal turns a routing mistake into a rejected input and a dead delivery an
  operator sees, instead of a silent suppression, and bounds a chain of gateways that each see it new.
- ``secret`` (涉密) messages never cross the network: the sender refuses to send one and the receiver
  refuses to take one (the router already gives them only to paper).
- The envelope id is not re-derived: a gateway that numbered a correction (revision bumped by the dedup
  ledger) keeps the original id, so the id cannot be recomputed from the fields, only preserved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from adapters.errors import DecodeError
from adapters.masking import mask_text
from schemas import SCHEMA_VERSION, Classification, Envelope, describe_validation_error, event_types, payload_model

__all__ = ["decode_envelope", "dumps", "encode_envelope", "encoded_size"]

# Optional attributes for which a blank value means "absent" (CloudEvents: if present, non-empty).
_BLANK_IS_ABSENT = ("subject", "dataschema", "region", "causation_id")
MAX_REVISION = 2**31 - 1
_DATASCHEMA = re.compile(r"^urn:shenguan:schema:(?P<version>[^:]+):(?P<type>.+)$")


def encode_envelope(envelope: Envelope, *, gateway_id: str) -> dict[str, Any]:
    """The body that carries ``envelope`` to the next gateway: the envelope, with ``gateway_id`` added to ``via``."""
    body = envelope.model_dump(mode="json")
    body["via"] = [*envelope.via, gateway_id]
    return body


def encoded_size(body: Any) -> int:
    """Bytes of ``body`` as sent (compact UTF-8 JSON): what the peer's ``ingest_max_bytes`` counts."""
    return len(dumps(body))


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_envelope(payload: Any, *, gateway_id: str, max_hops: int) -> Envelope:
    """A pushed canonical envelope, checked; ``DecodeError`` naming the attribute (never its value) otherwise."""
    fields = _object(payload)
    _check_via(fields.get("via"), gateway_id=gateway_id, max_hops=max_hops)
    _check_text(fields)
    fields = {k: (None if k in _BLANK_IS_ABSENT and v == "" else v) for k, v in fields.items()}
    try:
        # Validates the payload against its type's model and recomputes the content hash over ``data``.
        envelope = Envelope.model_validate(fields)
    except ValidationError as exc:
        raise DecodeError(f"not a valid canonical envelope: {_described(exc, fields)}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"not a valid canonical envelope: {type(exc).__name__}") from None
    if envelope.revision > MAX_REVISION:
        raise DecodeError(
            f"revision: more than {MAX_REVISION} (stores keep it as a 64-bit integer; no fact has that many)"
        )
    if envelope.business_key != envelope.payload().business_key():
        raise DecodeError(f"business_key: not the natural key of its {envelope.type} payload")
    if envelope.classification is Classification.secret:
        raise DecodeError("classification: a secret (涉密) message never crosses the network; it belongs on paper")
    _check_dataschema(envelope)
    return envelope


def _described(exc: ValidationError, fields: Mapping[str, Any]) -> str:
    """The error, with a payload error located under ``data.`` (the envelope's validator reports it bare).

    Only on this error path is the payload validated a second time, to tell the two apart.
    """
    data, event_type = fields.get("data"), fields.get("type")
    if isinstance(data, Mapping) and isinstance(event_type, str) and event_type in event_types():
        try:
            payload_model(event_type).model_validate(data)
        except ValidationError as payload_exc:
            return describe_validation_error(payload_exc, prefix="data")
    return describe_validation_error(exc)


def _object(payload: Any) -> dict[str, Any]:
    if isinstance(payload, bytes | bytearray | str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):
            raise DecodeError("a peer push must be a canonical envelope as JSON; this is not JSON") from None
    if not isinstance(payload, Mapping):
        raise DecodeError(f"a peer push must be a canonical envelope (a JSON object), got {type(payload).__name__}")
    return dict(payload)


def _check_via(via: Any, *, gateway_id: str, max_hops: int) -> None:
    if via is None:
        raise DecodeError(
            "via: missing; a peer names the gateways the message left (itself last) — is the sender a shenguan "
            "peer destination with a gateway_id?"
        )
    if not isinstance(via, list) or not all(isinstance(hop, str) and hop.strip() for hop in via):
        raise DecodeError("via: must be a list of gateway ids (non-empty strings)")
    if not via:
        raise DecodeError("via: empty; the sending gateway must add its gateway_id")
    path = " → ".join(_shown(hop) for hop in via)
    if gateway_id in via:
        raise DecodeError(f"via: loop — this gateway ({_shown(gateway_id)}) already relayed it (via {path})")
    if len(set(via)) != len(via):
        raise DecodeError(f"via: loop — a gateway appears twice (via {path})")
    if len(via) > max_hops:
        raise DecodeError(f"via: {len(via)} hops (via {path}), more than max_hops = {max_hops}")


def _check_text(fields: Mapping[str, Any]) -> None:
    """Every string must be encodable as UTF-8: JSON lets a lone surrogate (``\\ud800``) through, and an
    envelope holding one could be stored but never serialised again."""
    for key, value in fields.items():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise DecodeError(f"{_shown(str(key))}: text that is not valid Unicode (a lone surrogate)") from None
        except (TypeError, ValueError, RecursionError):
            pass  # not JSON-shaped: the envelope's own validation names it


def _check_dataschema(envelope: Envelope) -> None:
    if envelope.dataschema is None:
        return
    match = _DATASCHEMA.match(envelope.dataschema)
    if match is None:
        return  # not one of ours: the payload model of ``type`` has been checked, which is what counts
    if match["version"] != SCHEMA_VERSION:
        raise DecodeError(
            f"dataschema: schema version {_shown(match['version'])} is not read here (this gateway reads "
            f"{SCHEMA_VERSION})"
        )
    if match["type"] != envelope.type:
        raise DecodeError(f"dataschema: names another event type than type {envelope.type}")


def _shown(text: str, limit: int = 80) -> str:
    """A peer-supplied id as it may appear in a reason: masked and short (reasons are stored and logged)."""
    return mask_text(text[:limit])
