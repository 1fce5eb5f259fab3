"""The exchange's reply documents: hardened parsing, and what each result code tells the relay to do.

``service(xml)`` and ``query(sn)`` answer with an XML *string* inside the SOAP body, so it is parsed twice:
zeep parses the SOAP envelope (DTDs and entities forbidden in its settings), and this module parses the
inner document with defusedxml (``forbid_dtd``, ``forbid_entities``, ``forbid_external``). Both refuse a
``<!DOCTYPE>`` the moment they meet it: an XML bomb is never expanded and an external entity (XXE, e.g.
``file:///etc/passwd``) is never resolved. A refused or unreadable reply is an ``UnreadableReply``; the
caller decides what that means (for a send: the outcome is unknown).

Result codes and the relay's next step (documented for operators in docs/architecture.md):

====  ====================================  ===============================================================
code  meaning                               adapter verdict
====  ====================================  ===============================================================
0     accepted / query answered             receipt (``ReceiptNo`` is the remote id)
1001  token missing or unknown              log in again, ask ``query(sn)``, resend only if not held
1002  token expired                         same as 1001
1003  service id unknown                    ``RetryableError`` — a configuration fix (``service_id``)
2001  message not well-formed               ``PermanentError``
2002  header field missing or wrong         ``PermanentError`` (check ``sender``/``receiver``)
2003  body field invalid                    ``PermanentError``
3001  business rule refused                 ``PermanentError``
9001  busy, nothing processed               ``RetryableError``
9999  internal error, may have processed    ``OutcomeUnknownError`` — reconciled by ``query(sn)``
else  a code this table does not know       ``PermanentError`` — the receiver did not say it accepted
====  ====================================  ===============================================================
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import defusedxml.ElementTree as SafeET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden, NotSupportedError

__all__ = ["MAX_REPLY_CHARS", "RESULT_CODES", "Action", "Result", "UnreadableReply", "action_for", "parse_result"]

MAX_REPLY_CHARS = 1_000_000  # a status reply is a few hundred bytes; a megabyte is not a reply but an attack


class Action(StrEnum):
    """What a result code tells the adapter to do next."""

    accepted = "accepted"
    reauthenticate = "reauthenticate"
    retry = "retry"
    reject = "reject"
    unknown = "unknown"


RESULT_CODES: Mapping[str, tuple[Action, str]] = {
    "0": (Action.accepted, "accepted"),
    "1001": (Action.reauthenticate, "token missing or unknown"),
    "1002": (Action.reauthenticate, "token expired"),
    "1003": (Action.retry, "service id unknown to the exchange: fix the adapter's service_id"),
    "2001": (Action.reject, "message not well-formed"),
    "2002": (Action.reject, "message header refused (check sender, receiver, service_id)"),
    "2003": (Action.reject, "record field refused"),
    "3001": (Action.reject, "business rule refused"),
    "9001": (Action.retry, "exchange busy, nothing processed"),
    "9999": (Action.unknown, "exchange internal error; it may have processed the message"),
}


def action_for(code: str) -> tuple[Action, str]:
    """The verdict for a result code; an unknown code is a refusal (the receiver did not say 0)."""
    return RESULT_CODES.get(code, (Action.reject, "result code unknown to this adapter"))


class UnreadableReply(Exception):
    """The reply document could not be read, or was refused for safety; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Result:
    """A parsed ``<Result>``: the code, the platform's message, the ``Sn`` it names, and any other fields."""

    code: str
    message: str
    sn: str
    fields: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.fields.get(name) or None


def parse_result(document: object) -> Result:
    """Parse one reply document (``<Result><Code/>…</Result>``) or raise ``UnreadableReply``."""
    if not isinstance(document, str) or not document.strip():
        raise UnreadableReply("empty reply document")
    if len(document) > MAX_REPLY_CHARS:
        raise UnreadableReply(f"reply document of {len(document)} characters refused (limit {MAX_REPLY_CHARS})")
    try:
        root = SafeET.fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise UnreadableReply("reply document declares a DTD (<!DOCTYPE>); refused unparsed (XML hardening)") from None
    except EntitiesForbidden:
        raise UnreadableReply("reply document declares entities; refused without expanding them") from None
    except (ExternalReferenceForbidden, NotSupportedError):
        raise UnreadableReply("reply document refers to an external resource; refused without fetching it") from None
    except ET.ParseError as exc:
        raise UnreadableReply(f"reply document is not well-formed XML ({exc})") from None
    if root.tag != "Result":
        raise UnreadableReply(f"reply document is <{root.tag[:40]}>, not <Result>")
    values = {child.tag: (child.text or "").strip() for child in root if isinstance(child.tag, str)}
    code = values.pop("Code", "")
    if not code:
        raise UnreadableReply("reply document has no result Code")
    return Result(code=code, message=values.pop("Message", ""), sn=values.pop("Sn", ""), fields=values)
