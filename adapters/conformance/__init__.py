"""The adapter conformance kit: one set of checks every adapter — ours and third parties' — passes.

Like Singer's and Airbyte's standard tests (DESIGN §6), an author turns it on by subclassing a kit class
in a test module and setting a few class attributes; pytest collects the inherited ``test_*`` methods:

- ``DestinationConformance``: round trip through ``encode`` and an inverse codec, canonical samples,
  same fact twice = one effect, a lost reply is ``OutcomeUnknownError`` and redelivery creates no
  duplicate, declared error classification, no personal data in logs.
- ``SourceConformance``: round trip (with an inverse), deterministic decode, canonical output, the
  standard awkward-input corpus (``adapters.conformance.corpus``), ``""`` = ``null``, poll error
  classification, no personal data in logs or rejection reasons.

The pytest plugin (``adapters.conformance.plugin``, registered as ``shenguan_conformance``) marks these
tests ``conformance`` so ``pytest -m conformance`` runs just the kit. The kit imports nothing of
``gateway``: adapters may not depend on it, and neither may their tests.
"""

from adapters.conformance import corpus
from adapters.conformance.common import ErrorCase, Receiver, every_request, personal_values, reply, transport_error
from adapters.conformance.destination import STANDARD_DESTINATION_ERRORS, DestinationConformance, idempotency_key
from adapters.conformance.source import STANDARD_SOURCE_ERRORS, SourceConformance
from adapters.conformance.transports import CannedReplyTransport, DropAfterApplyTransport

__all__ = [
    "STANDARD_DESTINATION_ERRORS",
    "STANDARD_SOURCE_ERRORS",
    "CannedReplyTransport",
    "DestinationConformance",
    "DropAfterApplyTransport",
    "ErrorCase",
    "Receiver",
    "SourceConformance",
    "corpus",
    "every_request",
    "idempotency_key",
    "personal_values",
    "reply",
    "transport_error",
]
