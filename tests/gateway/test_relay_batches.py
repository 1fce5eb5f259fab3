"""The relay with a batching destination: per-record outcomes, what is (never) resent, batching by size and age.

The fake receiver judges every record on its own, like the 公共信用信息平台: it refuses some for their content,
answers a key it has judged with the same verdict, and counts every submission — so each test can say exactly
what reached it and how often.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import pytest

from adapters import (
    AdapterError,
    BatchResult,
    Capabilities,
    DeliveryReceipt,
    Direction,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
)
from factories import envelope
from gateway.config import DestinationConfig
from gateway.relay import Destination, Relay
from gateway.store import Route
from gateway.store.sqlite import SQLiteStore
from schemas import Envelope

FAST = {
    "adapter": "fake-batch",
    "concurrency": 2,
    "max_attempts": 5,
    "backoff_initial_s": 0.01,
    "backoff_max_s": 0.02,
    "backoff_jitter_s": 0.0,
    "breaker_failures": 1000,
    "batch_size": 4,
    "batch_max_age_s": 0.05,
}
BATCHING = Capabilities(
    direction=Direction.destination, idempotent_receiver=True, status_query=True, max_batch_size=100
)


@dataclass
class BatchReceiver:
    """Judges records by idempotency key; a business key in ``invalid`` is refused for its content."""

    invalid: set[str] = field(default_factory=set)
    honours_keys: bool = True
    verdicts: dict[str, bool] = field(default_factory=dict)  # key -> accepted?
    held: Counter[str] = field(default_factory=Counter)  # business key -> records created
    submissions: Counter[str] = field(default_factory=Counter)  # business key -> times judged or replayed
    duplicate_creations: int = 0

    def judge(self, env: Envelope, key: str) -> BatchResult:
        self.submissions[env.business_key] += 1
        if self.honours_keys and key in self.verdicts:
            return self._result(env, self.verdicts[key], replayed=True)
        accepted = env.business_key not in self.invalid
        self.verdicts[key] = accepted
        if accepted:
            if self.held[env.business_key]:
                self.duplicate_creations += 1
            self.held[env.business_key] += 1
        return self._result(env, accepted, replayed=False)

    @staticmethod
    def _result(env: Envelope, accepted: bool, *, replayed: bool) -> BatchResult:
        if accepted:
            return DeliveryReceipt(remote_id=f"R-{env.business_key}", replayed=replayed)
        return PermanentError(f"{env.business_key}: 统一社会信用代码机构类别码与登记管理部门码不匹配", code="REJECTED")


# A script step for one batch call: None = the receiver judges every record; an exception = raised before
# anything is applied; ("after", exc) = applied, then exc (the dropped reply); a callable = per-record results.
Step = Any


class FakeBatchDestination:
    version: ClassVar[str] = "0.0.1"
    capabilities: ClassVar[Capabilities] = BATCHING

    def __init__(
        self,
        receiver: BatchReceiver,
        *,
        script: Callable[[int, Sequence[tuple[Envelope, str]]], Step] | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.name = "fake-batch"
        self.receiver = receiver
        self.script = script or (lambda _n, _items: None)
        self.batches: list[list[str]] = []  # business keys of every deliver_batch call
        self.status_queries: list[list[str]] = []
        self.single_calls = 0
        if capabilities is not None:
            self.capabilities = capabilities  # type: ignore[misc]

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any]) -> Self:
        return cls(BatchReceiver())

    async def aclose(self) -> None:
        return None

    def encode(self, envelope: Envelope) -> dict[str, Any]:
        return {"key": envelope.business_key, "version": envelope.revision}

    async def deliver(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt:
        self.single_calls += 1
        (result,) = await self.deliver_batch([(envelope, idempotency_key)])
        if isinstance(result, AdapterError):
            raise result
        return result

    async def deliver_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult]:
        self.batches.append([env.business_key for env, _ in items])
        step = self.script(len(self.batches), items)
        if isinstance(step, Exception):
            raise step
        if callable(step):
            return [step(env, key) for env, key in items]
        results = [self.receiver.judge(env, key) for env, key in items]
        if isinstance(step, tuple) and step[0] == "after":
            raise step[1]
        return results

    async def query_status_batch(self, items: Sequence[tuple[Envelope, str]]) -> list[BatchResult | None]:
        self.status_queries.append([env.business_key for env, _ in items])
        answers: list[BatchResult | None] = []
        for env, key in items:
            if key in self.receiver.verdicts:
                answers.append(BatchReceiver._result(env, self.receiver.verdicts[key], replayed=True))
            else:
                answers.append(None)
        return answers

    async def query_status(self, envelope: Envelope, idempotency_key: str) -> DeliveryReceipt | None:
        (answer,) = await self.query_status_batch([(envelope, idempotency_key)])
        return answer if isinstance(answer, DeliveryReceipt) else None


DROPPED = ("after", OutcomeUnknownError("connection dropped after sending"))


class StepClock:
    """Wall-clock time plus an offset the test moves: batch ages advance without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[tuple[str, int, str]] = []

    def on_outcome(self, destination: str, delivery: Any, outcome: Any) -> None:
        self.outcomes.append((destination, delivery.id, outcome.state.value))

    def on_breaker_open(self, destination: str) -> None:
        return None


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(tmp_path / "b.db", synchronous="NORMAL")
    await s.open()
    yield s
    await s.close()


def make_relay(store, adapter, clock: Callable[[], float] = time.time, observers=(), **config) -> Relay:
    dest = Destination("fake-batch", adapter, DestinationConfig.model_validate(FAST | config))
    return Relay(store, {"fake-batch": dest}, owner="test", idle_s=0.01, clock=clock, observers=observers)


async def ingest(store, keys: Sequence[str]) -> None:
    await store.ingest_page("src", [envelope(k) for k in keys], [], "1", lambda _e: [Route("fake-batch")])


async def settle(store, relay: Relay, *, timeout_s: float = 10.0) -> dict[str, int]:
    await relay.recover()
    task = asyncio.create_task(relay.run())
    for _ in range(int(timeout_s / 0.01)):
        if not await store.open_deliveries():
            break
        await asyncio.sleep(0.01)
    relay.stop()
    await task
    return (await store.status())["deliveries"]


async def deliveries(store) -> dict[str, dict[str, Any]]:
    """business key → the delivery row's state and last error."""
    conn = store._connection()
    rows = conn.execute(
        "SELECT m.business_key, d.state, d.last_error, d.attempts "
        "FROM deliveries d JOIN messages m ON m.id = d.message_id"
    ).fetchall()
    return {key: {"state": state, "error": error, "attempts": attempts} for key, state, error, attempts in rows}


KEYS = [f"A{i}" for i in range(6)]


async def test_partial_success_delivers_the_good_and_kills_the_bad_with_the_receivers_reason(store) -> None:
    receiver = BatchReceiver(invalid={"A1", "A4"})
    adapter = FakeBatchDestination(receiver)
    recorder = Recorder()
    await ingest(store, KEYS)
    states = await settle(store, make_relay(store, adapter, observers=[recorder], batch_size=10))
    assert states["delivered"] == 4 and states["dead"] == 2
    assert adapter.batches == [KEYS], "one batch, one call"
    rows = await deliveries(store)
    for key in ("A1", "A4"):
        assert rows[key]["state"] == "dead" and "机构类别码" in rows[key]["error"] and key in rows[key]["error"]
    assert all(count == 1 for count in receiver.submissions.values()), "nothing was sent twice"
    assert len(recorder.outcomes) == 6, "observers hear of every record"


async def test_per_record_retryable_results_resend_only_those(store) -> None:
    receiver = BatchReceiver()

    def script(n: int, _items: Sequence[tuple[Envelope, str]]) -> Step:
        if n == 1:  # the receiver was busy for A2 and A3 only
            return lambda env, key: (
                RetryableError("忙") if env.business_key in {"A2", "A3"} else receiver.judge(env, key)
            )
        return None

    adapter = FakeBatchDestination(receiver, script=script)
    await ingest(store, KEYS)
    states = await settle(store, make_relay(store, adapter, batch_size=10))
    assert states["delivered"] == 6
    assert adapter.batches[0] == KEYS and sorted(k for b in adapter.batches[1:] for k in b) == ["A2", "A3"]
    assert receiver.duplicate_creations == 0 and set(receiver.submissions.values()) == {1}


async def test_a_whole_batch_failure_retries_every_record_and_never_a_delivered_one(store) -> None:
    receiver = BatchReceiver(invalid={"A5"})
    failing = {2, 3}  # the second and third uploads fail before anything is applied

    def script(n: int, _items: Sequence[tuple[Envelope, str]]) -> Step:
        return RetryableError("HTTP 503") if n in failing else None

    adapter = FakeBatchDestination(receiver, script=script)
    await ingest(store, KEYS)
    states = await settle(store, make_relay(store, adapter, batch_size=3, concurrency=1))
    assert states["delivered"] == 5 and states["dead"] == 1
    delivered_at: dict[str, int] = {}
    for n, batch in enumerate(adapter.batches, start=1):
        for key in batch:
            assert key not in delivered_at, f"{key} was delivered in batch {delivered_at.get(key)} and sent again"
            if n not in failing and key != "A5":
                delivered_at[key] = n
    assert sorted(delivered_at) == ["A0", "A1", "A2", "A3", "A4"]
    assert receiver.submissions["A5"] == 1, "a content rejection is never resent"


async def test_retry_budget_is_spent_per_record(store) -> None:
    adapter = FakeBatchDestination(BatchReceiver(), script=lambda _n, _i: RetryableError("HTTP 503"))
    await ingest(store, KEYS[:3])
    states = await settle(store, make_relay(store, adapter, max_attempts=3, batch_size=10))
    assert states["dead"] == 3 and len(adapter.batches) == 3
    assert all("retry budget of 3 attempts spent" in r["error"] for r in (await deliveries(store)).values())


async def test_a_lost_reply_is_settled_by_one_status_query_without_resubmitting(store) -> None:
    receiver = BatchReceiver(invalid={"A2"})
    adapter = FakeBatchDestination(receiver, script=lambda n, _i: DROPPED if n == 1 else None)
    await ingest(store, KEYS[:4])
    states = await settle(store, make_relay(store, adapter, batch_size=10))
    assert states["delivered"] == 3 and states["dead"] == 1
    assert adapter.batches == [KEYS[:4]], "nothing was uploaded a second time"
    assert adapter.status_queries == [KEYS[:4]], "one question settled the whole batch"
    assert set(receiver.submissions.values()) == {1} and receiver.duplicate_creations == 0
    assert "机构类别码" in (await deliveries(store))["A2"]["error"]


async def test_a_lost_reply_half_applied_resends_only_what_the_receiver_never_saw(store) -> None:
    receiver = BatchReceiver()

    def script(n: int, items: Sequence[tuple[Envelope, str]]) -> Step:
        if n == 1:  # the receiver applied the first two records, then the connection broke
            for env, key in items[:2]:
                receiver.judge(env, key)
            return OutcomeUnknownError("connection reset")
        return None

    adapter = FakeBatchDestination(receiver, script=script)
    await ingest(store, KEYS[:4])
    states = await settle(store, make_relay(store, adapter, batch_size=10))
    assert states["delivered"] == 4
    assert adapter.batches == [KEYS[:4], KEYS[2:4]]
    assert set(receiver.submissions.values()) == {1}


async def test_idempotent_receiver_without_status_query_gets_the_batch_again(store) -> None:
    caps = Capabilities(direction=Direction.destination, idempotent_receiver=True, max_batch_size=100)
    receiver = BatchReceiver()
    adapter = FakeBatchDestination(receiver, script=lambda n, _i: DROPPED if n == 1 else None, capabilities=caps)
    await ingest(store, KEYS[:3])
    states = await settle(store, make_relay(store, adapter, batch_size=10))
    assert states["delivered"] == 3 and adapter.status_queries == []
    assert adapter.batches == [KEYS[:3], KEYS[:3]] and receiver.duplicate_creations == 0


async def test_unknown_outcome_without_idempotency_or_status_query_is_uncertain(store) -> None:
    caps = Capabilities(direction=Direction.destination, max_batch_size=100)
    receiver = BatchReceiver(honours_keys=False)
    adapter = FakeBatchDestination(receiver, script=lambda _n, _i: DROPPED, capabilities=caps)
    await ingest(store, KEYS[:3])
    states = await settle(store, make_relay(store, adapter, batch_size=10))
    assert states["uncertain"] == 3 and len(adapter.batches) == 1, "never resent blindly"


async def test_batches_by_size(store) -> None:
    adapter = FakeBatchDestination(BatchReceiver())
    keys = [f"S{i}" for i in range(7)]
    await ingest(store, keys)
    states = await settle(store, make_relay(store, adapter, batch_size=3, concurrency=1))
    assert states["delivered"] == 7
    assert [len(b) for b in adapter.batches] == [3, 3, 1] and [k for b in adapter.batches for k in b] == keys


async def test_a_batch_waits_for_its_age_then_goes_partly_filled(store) -> None:
    clock = StepClock()
    adapter = FakeBatchDestination(BatchReceiver())
    relay = make_relay(store, adapter, clock=clock, batch_size=10, batch_max_age_s=30)
    await ingest(store, ["T0", "T1"])
    await relay.recover()
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.2)
        assert adapter.batches == [], "a young, unfilled batch waits"
        await ingest(store, ["T2"])
        relay.wake()
        await asyncio.sleep(0.1)
        assert adapter.batches == [] and len(relay.destinations["fake-batch"].forming) == 3, "it keeps filling"
        clock.offset += 30
        for _ in range(100):
            if adapter.batches:
                break
            await asyncio.sleep(0.01)
        assert adapter.batches == [["T0", "T1", "T2"]], "of age: sent as it is"
    finally:
        relay.stop()
        await task
    assert (await store.status())["deliveries"]["delivered"] == 3


async def test_graceful_stop_sends_the_forming_batch(store) -> None:
    adapter = FakeBatchDestination(BatchReceiver())
    relay = make_relay(store, adapter, batch_size=10, batch_max_age_s=50)
    await ingest(store, ["G0", "G1"])
    await relay.recover()
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.1)
    assert adapter.batches == []
    relay.stop()
    await task
    assert adapter.batches == [["G0", "G1"]]
    states = (await store.status())["deliveries"]
    assert states["delivered"] == 2 and states["in_flight"] == 0


async def test_after_a_crash_the_interrupted_batch_is_verified_before_anything_is_resent(store) -> None:
    receiver = BatchReceiver()
    await ingest(store, KEYS[:4])
    # A previous process leased all four and the receiver applied two of them before the process died.
    leased = await store.lease_due(owner="dead-process", destination="fake-batch", limit=10, lease_s=60)
    for row in leased[:2]:
        receiver.judge(row.envelope(), row.idempotency_key)
    adapter = FakeBatchDestination(receiver)
    states = await settle(store, make_relay(store, adapter, batch_size=10))
    assert states["delivered"] == 4
    assert adapter.status_queries == [KEYS[:4]] and adapter.batches == [KEYS[2:4]]
    assert set(receiver.submissions.values()) == {1}


async def test_a_failed_batch_is_one_failure_for_the_breaker(store) -> None:
    adapter = FakeBatchDestination(BatchReceiver(), script=lambda n, _i: RetryableError("503") if n == 1 else None)
    relay = make_relay(store, adapter, batch_size=10, breaker_failures=2, breaker_cooldown_s=60)
    await ingest(store, KEYS)
    states = await settle(store, relay)
    assert states["delivered"] == 6 and len(adapter.batches) == 2, "the breaker stayed closed: one failure, not six"


async def test_a_batch_adapter_configured_for_batches_of_one_uses_single_deliveries(store) -> None:
    adapter = FakeBatchDestination(BatchReceiver())
    await ingest(store, KEYS[:3])
    states = await settle(store, make_relay(store, adapter, batch_size=1))
    assert states["delivered"] == 3 and adapter.single_calls == 3


async def test_batch_age_must_fit_in_the_lease() -> None:
    with pytest.raises(ValueError, match="batch_max_age_s"):
        DestinationConfig.model_validate(FAST | {"batch_max_age_s": 60, "lease_s": 100})
