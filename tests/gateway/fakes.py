"""A scriptable destination adapter and the receiver behind it, for relay tests without HTTP.

The receiver counts effects the way the mocks do: a second record for a fact it already holds is a
duplicate creation, unless the request carries an idempotency key it has seen (a replay).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from adapters import (
    Capabilities,
    DeliveryReceipt,
    Direction,
    OutcomeUnknownError,
)
from schemas import Envelope


@dataclass
class Receiver:
    honours_keys: bool = True
    records: dict[str, int] = field(default_factory=dict)  # business key -> revision held
    seen_keys: set[str] = field(default_factory=set)
    duplicate_creations: int = 0
    requests: int = 0

    def apply(self, env: Envelope, key: str) -> bool:
        """Apply a request; returns whether it was a replay."""
        self.requests += 1
        if self.honours_keys and key in self.seen_keys:
            return True
        self.seen_keys.add(key)
        held = self.records.get(env.business_key)
        if held is not None and env.revision <= held:
            self.duplicate_creations += 1
        self.records[env.business_key] = max(held or 0, env.revision)
        return False

    def holds(self, key: str) -> bool:
        return key in self.seen_keys


# A script step: None = succeed; an exception instance = raise it before applying;
# ("after", exc) = apply, then raise exc (the dropped-response case).
Step = Any


class FakeDestination:
    version: ClassVar[str] = "0.0.1"
    capabilities: ClassVar[Capabilities] = Capabilities(
        direction=Direction.destination, event_types=("approval.decided",), idempotent_receiver=True, status_query=True
    )

    def __init__(
        self,
        receiver: Receiver,
        *,
        script: Callable[[Envelope, int], Step] | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.name = "fake"
        self.receiver = receiver
        self.script = script or (lambda _env, _n: None)
        self.calls = 0
        self.status_queries = 0
        if capabilities is not None:
            self.capabilities = capabilities  # type: ignore[misc]

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        return cls(Receiver())

    async def aclose(self) -> None:
        return None

    def encode(self, envelope: Envelope) -> dict[str, Any]:
        return {"key": envelope.business_key, "rev": envelope.revision}

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        self.calls += 1
        step = self.script(envelope, self.calls)
        if isinstance(step, tuple) and step[0] == "after":
            self.receiver.apply(envelope, idempotency_key)
            raise step[1]
        if isinstance(step, Exception):
            raise step
        replayed = self.receiver.apply(envelope, idempotency_key)
        return DeliveryReceipt(remote_id=f"T{envelope.business_key}", replayed=replayed)

    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        self.status_queries += 1
        return DeliveryReceipt(remote_id="T") if self.receiver.holds(idempotency_key) else None


DROPPED = ("after", OutcomeUnknownError("connection dropped after sending"))
