"""The ``shenguan`` peer adapter: pushing canonical envelopes to another gateway and taking them back.

Three layers: respx fakes of the peer's ``/ingest`` answers (every status class, batches, splitting), the
pure source side (what a pushed envelope must be to be taken, and that it is taken unchanged), and a real
province gateway in process (its ingest route over ASGI, its store, its relay to the hlwjg mock) so the
whole hop — dedup, revisions, loop refusals — is the gateway's own behaviour, not a fake's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from adapters.base import DeliveryReceipt, DestinationAdapter, RawRecord, SourceAdapter
from adapters.conformance import DestinationConformance, ErrorCase, Receiver, SourceConformance, reply
from adapters.errors import DecodeError, OutcomeUnknownError, PermanentError, RetryableError
from adapters.peer import MAX_BATCH, PeerAdapter, PeerLink
from adapters.registry import load
from adapters.tif import MemoryNonceStore, TifVerifier
from factories import envelope
from gateway.config import Config, RouteConfig
from gateway.http import create_app
from gateway.routing import ConfigRouter
from gateway.runtime import Gateway
from gateway.store.base import MessageQuery
from mock_platforms.server import run_in_background
from schemas import Classification, Envelope
from schemas.envelope import content_hash

PEER = "http://province.test"
INGEST = f"{PEER}/ingest/city"
API_KEY = "city-push-key-4e1f"
CITY = "city-320700"
PROVINCE = "province-320000"
RESIDENT_ID = "320706199003071237"
MOBILE = "13912345678"
NATURAL_PERSON = {
    "kind": "natural",
    "name": "张三",
    "id_type": "resident_id",
    "id_number": RESIDENT_ID,
    "phone": MOBILE,
}


def city_adapter(transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> PeerAdapter:
    link = PeerLink(options.pop("base_url", PEER), "city", "api_key", api_key=API_KEY)
    return PeerAdapter("province", gateway_id=CITY, link=link, transport=transport, **options)


def province_source(**options: Any) -> PeerAdapter:
    return PeerAdapter("city", gateway_id=PROVINCE, **options)


def answer(envelopes: list[Envelope], *verdicts: str, rejected: dict[int, str] | None = None) -> httpx.Response:
    """The body gateway/ingest.py answers: per-record verdicts and rejections."""
    rejected = rejected or {}
    messages = [
        {"index": i, "message_id": env.id, "type": env.type, "verdict": v, "original_message_id": None}
        for i, (env, v) in enumerate(zip(envelopes, verdicts, strict=False))
        if i not in rejected
    ]
    rejections = [{"index": i, "position": f"push:x#{i}", "reason": r} for i, r in rejected.items()]
    body = {
        "source": "city",
        "push_id": "x",
        "received": len(envelopes),
        "accepted": 0,
        "duplicates": 0,
        "stale": 0,
        "rejected": len(rejections),
        "messages": messages,
        "rejections": rejections,
    }
    return httpx.Response(422 if rejections else 200, json=body)


def refusal(status: int, error: str, detail: str = "", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "detail": detail, "push_id": None}, headers=headers)


@pytest.fixture
def peer() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def adapter() -> AsyncIterator[PeerAdapter]:
    a = city_adapter()
    yield a
    await a.aclose()


def sent(route: respx.Route, n: int = -1) -> Any:
    return json.loads(route.calls[n].request.content)


# -- construction ----------------------------------------------------------------------------------------


def test_registered_as_shenguan_in_both_directions() -> None:
    cls = load("shenguan")
    assert cls is PeerAdapter
    a = PeerAdapter.from_config("province", {"gateway_id": CITY, "base_url": PEER, "source": "city", "api_key": "k"})
    assert isinstance(a, DestinationAdapter) and isinstance(a, SourceAdapter)
    caps = PeerAdapter.capabilities
    assert caps.direction == "both" and caps.idempotent_receiver and not caps.status_query
    assert caps.max_batch_size == MAX_BATCH and "approval.decided" in caps.event_types


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({}, "gateway_id"),
        ({"gateway_id": " "}, "gateway_id"),
        ({"gateway_id": CITY, "source": "city"}, "no base_url"),
        ({"gateway_id": CITY, "base_url": PEER, "api_key": "k"}, "'source'"),
        ({"gateway_id": CITY, "base_url": PEER, "source": "city"}, "'api_key'"),
        ({"gateway_id": CITY, "base_url": PEER, "source": "city", "auth": "tif", "paasid": "p"}, "'secret'"),
        ({"gateway_id": CITY, "base_url": PEER, "source": "city", "auth": "basic"}, "'auth'"),
        ({"gateway_id": CITY, "base_url": "province:8780", "source": "city", "api_key": "k"}, "base_url"),
        ({"gateway_id": CITY, "max_hops": 0}, "max_hops"),
        ({"gateway_id": CITY, "max_hops": "8"}, "max_hops"),
    ],
)
def test_from_config_names_the_bad_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        PeerAdapter.from_config("p", options)


def test_a_receive_only_adapter_refuses_to_deliver_with_the_reason() -> None:
    a = PeerAdapter.from_config("city", {"gateway_id": PROVINCE})
    with pytest.raises(PermanentError, match="no base_url"):
        asyncio.run(a.deliver(envelope(), "k"))


async def test_poll_says_the_source_takes_pushes_only() -> None:
    with pytest.raises(PermanentError, match='mode = "push"'):
        await province_source().poll(None, 10)


# -- destination side: one envelope ----------------------------------------------------------------------


async def test_deliver_posts_the_envelope_unchanged_but_for_via(adapter: PeerAdapter, peer: respx.MockRouter) -> None:
    env = envelope(revision=2, applicant=NATURAL_PERSON, commitment=None)
    route = peer.post(INGEST).mock(return_value=answer([env], "new"))
    receipt = await adapter.deliver(env, "idem-1")
    assert receipt == DeliveryReceipt(detail={"verdict": "new", "message_id": env.id})
    assert receipt.remote_id is None, "no taskNo: a hand-over to a gateway must not start a claim period"
    request = route.calls.last.request
    assert request.headers["x-api-key"] == API_KEY and request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body == env.model_dump(mode="json") | {"via": [CITY]}
    assert body["data"]["applicant"]["id_number"] == RESIDENT_ID, "the canonical payload travels whole"


async def test_x_tif_credentials_are_signed_afresh_for_every_attempt(peer: respx.MockRouter) -> None:
    route = peer.post(INGEST).mock(side_effect=lambda request: answer([envelope()], "duplicate"))
    link = PeerLink(PEER, "city", "tif", paasid="city-pusher", secret="tif-secret-9a")
    a = PeerAdapter("province", gateway_id=CITY, link=link)
    try:
        await a.deliver(envelope(), "k")
        await a.deliver(envelope(), "k")
    finally:
        await a.aclose()
    verifier = TifVerifier({"city-pusher": "tif-secret-9a"}, MemoryNonceStore())
    for call in route.calls:
        assert await verifier.verify(call.request.headers) == "city-pusher", "valid, and each nonce used once"


@pytest.mark.parametrize("verdict", ["duplicate", "stale"])
async def test_a_peer_that_already_holds_it_is_a_delivery(
    adapter: PeerAdapter, peer: respx.MockRouter, verdict: str
) -> None:
    env = envelope()
    held = {"index": 0, "message_id": env.id, "type": env.type, "verdict": verdict, "original_message_id": "m-0"}
    peer.post(INGEST).mock(return_value=httpx.Response(200, json={"messages": [held], "rejections": []}))
    receipt = await adapter.deliver(env, "k")
    assert receipt.replayed and receipt.detail == {
        "verdict": verdict,
        "message_id": env.id,
        "original_message_id": "m-0",
    }


ERRORS = [
    ("401 stale timestamp", refusal(401, "stale_timestamp", "clock skew"), RetryableError, "signed afresh"),
    ("401 replayed nonce", refusal(401, "replayed_nonce", "nonce seen"), RetryableError, "signed afresh"),
    ("401 unauthorized", refusal(401, "unauthorized", "API key not accepted"), PermanentError, "API key not accepted"),
    ("403 forbidden", refusal(403, "forbidden", "this API key may not push to city"), PermanentError, "may not push"),
    (
        "404 unknown source",
        refusal(404, "unknown_source", "no source 'city' accepts pushes"),
        PermanentError,
        "no source",
    ),
    ("413 too large", refusal(413, "too_large", "over the limit of 1024"), PermanentError, "ingest_max_bytes"),
    ("400 malformed", refusal(400, "malformed", "malformed JSON"), PermanentError, "malformed JSON"),
    ("415", refusal(415, "unsupported_media_type", "not read"), PermanentError, "415"),
    ("503 not ready", refusal(503, "not_ready", "starting", **{"Retry-After": "2"}), RetryableError, "not_ready"),
    ("429", httpx.Response(429), RetryableError, "429"),
    ("500", httpx.Response(500, text="Internal Server Error"), OutcomeUnknownError, "may have stored"),
    ("502 from a proxy", httpx.Response(502), OutcomeUnknownError, "502"),
    ("302", httpx.Response(302, headers={"location": "/login"}), PermanentError, "redirect"),
    ("200 unreadable", httpx.Response(200, content=b'{"messages": ['), OutcomeUnknownError, "readable"),
    ("200 without messages", httpx.Response(200, json={"source": "city"}), OutcomeUnknownError, "readable"),
]


@pytest.mark.parametrize(("name", "response", "expected", "says"), ERRORS, ids=[e[0] for e in ERRORS])
async def test_each_status_class(
    adapter: PeerAdapter, peer: respx.MockRouter, name: str, response: httpx.Response, expected: type, says: str
) -> None:
    peer.post(INGEST).mock(return_value=response)
    with pytest.raises(expected, match=says) as caught:
        await adapter.deliver(envelope(), "k")
    assert type(caught.value) is expected or issubclass(type(caught.value), expected)
    if name.startswith("503"):
        assert caught.value.retry_after_s == 2.0


async def test_a_rejection_is_permanent_with_the_peers_reason(adapter: PeerAdapter, peer: respx.MockRouter) -> None:
    env = envelope()
    peer.post(INGEST).mock(return_value=answer([env], rejected={0: "via: loop — this gateway already relayed it"}))
    with pytest.raises(PermanentError, match="peer rejected it: via: loop"):
        await adapter.deliver(env, "k")


async def test_a_peer_that_renumbers_ids_is_refused(adapter: PeerAdapter, peer: respx.MockRouter) -> None:
    env = envelope()
    other = {"index": 0, "message_id": "not-" + env.id, "type": env.type, "verdict": "new"}
    peer.post(INGEST).mock(return_value=httpx.Response(200, json={"messages": [other], "rejections": []}))
    with pytest.raises(PermanentError, match="another message id"):
        await adapter.deliver(env, "k")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused"), RetryableError),
        (httpx.ReadTimeout("slow"), OutcomeUnknownError),
        (httpx.RemoteProtocolError("dropped"), OutcomeUnknownError),
    ],
)
async def test_transport_failures(
    adapter: PeerAdapter, peer: respx.MockRouter, error: Exception, expected: type
) -> None:
    peer.post(INGEST).mock(side_effect=error)
    with pytest.raises(expected):
        await adapter.deliver(envelope(), "k")


async def test_a_secret_message_is_never_sent(adapter: PeerAdapter, peer: respx.MockRouter) -> None:
    route = peer.post(INGEST).mock(return_value=answer([envelope()], "new"))
    secret = envelope(classification=Classification.secret)
    with pytest.raises(PermanentError, match="涉密"):
        await adapter.deliver(secret, "k")
    [result] = await adapter.deliver_batch([(secret, "k")])
    assert isinstance(result, PermanentError)
    assert route.call_count == 0


def test_the_router_gives_secret_messages_to_paper_only_even_on_a_peer_route() -> None:
    router = ConfigRouter([RouteConfig(type="approval.decided", destinations=["province"])])
    [public] = router(envelope())
    [secret] = router(envelope(classification=Classification.secret))
    assert (public.destination, public.channel) == ("province", "platform")
    assert (secret.destination, secret.channel) == ("province", "paper")


# -- destination side: batches ---------------------------------------------------------------------------


def envelopes(n: int, first: int = 0) -> list[Envelope]:
    return [envelope(f"32070026112100{first + i:07d}") for i in range(n)]


async def test_a_batch_is_one_array_and_each_record_gets_its_own_answer(
    adapter: PeerAdapter, peer: respx.MockRouter
) -> None:
    batch = envelopes(3)
    route = peer.post(INGEST).mock(return_value=answer(batch, "new", "duplicate", rejected={2: "data.region: bad"}))
    out = await adapter.deliver_batch([(e, f"k{i}") for i, e in enumerate(batch)])
    assert [e["id"] for e in sent(route)] == [e.id for e in batch] and all(e["via"] == [CITY] for e in sent(route))
    assert isinstance(out[0], DeliveryReceipt) and not out[0].replayed
    assert isinstance(out[1], DeliveryReceipt) and out[1].replayed
    assert isinstance(out[2], PermanentError) and "data.region" in out[2].reason


async def test_a_batch_answer_that_skips_a_record_leaves_it_unknown(
    adapter: PeerAdapter, peer: respx.MockRouter
) -> None:
    batch = envelopes(2)
    peer.post(INGEST).mock(return_value=answer(batch[:1], "new"))
    out = await adapter.deliver_batch([(e, "k") for e in batch])
    assert isinstance(out[0], DeliveryReceipt) and isinstance(out[1], OutcomeUnknownError)


async def test_batches_are_cut_to_the_peers_body_limit(peer: respx.MockRouter) -> None:
    batch = envelopes(10)
    one = len(json.dumps(batch[0].model_dump(mode="json") | {"via": [CITY]}, ensure_ascii=False).encode())
    limit = one * 3 + 50  # three records per push
    route = peer.post(INGEST).mock(side_effect=lambda r: answer(pushed_envelopes(r), *["new"] * 3))
    a = city_adapter(max_body_bytes=limit)
    try:
        out = await a.deliver_batch([(e, "k") for e in batch])
    finally:
        await a.aclose()
    assert all(isinstance(r, DeliveryReceipt) for r in out)
    assert [len(pushed_envelopes(call.request)) for call in route.calls] == [3, 3, 3, 1]
    assert all(len(call.request.content) <= limit for call in route.calls)


def pushed_envelopes(request: httpx.Request) -> list[Envelope]:
    """What one push carried: an object for one envelope, an array for several."""
    body = json.loads(request.content)
    return [Envelope.model_validate(e) for e in (body if isinstance(body, list) else [body])]


async def test_a_413_halves_the_batch_until_it_fits(adapter: PeerAdapter, peer: respx.MockRouter) -> None:
    def small_peer(request: httpx.Request) -> httpx.Response:
        records = pushed_envelopes(request)
        if len(records) > 2:
            return refusal(413, "too_large", "over the limit")
        return answer(records, "new", "new")

    route = peer.post(INGEST).mock(side_effect=small_peer)
    batch = envelopes(5)
    out = await adapter.deliver_batch([(e, "k") for e in batch])
    assert all(isinstance(r, DeliveryReceipt) for r in out)
    assert [r.detail["message_id"] for r in out] == [e.id for e in batch]  # type: ignore[union-attr]
    assert route.call_count == 1 + 1 + 2 + 1  # 5 → (3 → 2 + 1) + 2


async def test_a_failed_first_push_fails_the_batch_a_failed_later_one_only_its_records(peer: respx.MockRouter) -> None:
    batch = envelopes(6)
    one = len(json.dumps(batch[0].model_dump(mode="json") | {"via": [CITY]}, ensure_ascii=False).encode())
    a = city_adapter(max_body_bytes=one * 2 + 50)  # two records per push: three pushes
    try:
        refused = peer.post(INGEST).mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(RetryableError):
            await a.deliver_batch([(e, "k") for e in batch])
        assert refused.call_count == 1
        peer.reset()

        replies = iter([answer(batch[:2], "new", "new"), httpx.Response(500)])
        route = peer.post(INGEST).mock(side_effect=lambda r: next(replies))
        out = await a.deliver_batch([(e, "k") for e in batch])
    finally:
        await a.aclose()
    assert route.call_count == 2, "nothing more is pushed after a failure"
    assert all(isinstance(r, DeliveryReceipt) for r in out[:2])
    assert all(isinstance(r, OutcomeUnknownError) for r in out[2:4])
    assert all(isinstance(r, RetryableError) and "not sent" in r.reason for r in out[4:])


async def test_no_personal_data_in_logs_of_a_failed_push(adapter: PeerAdapter, peer: respx.MockRouter) -> None:
    env = envelope(applicant=NATURAL_PERSON, commitment=None)
    peer.post(INGEST).mock(return_value=answer([env], rejected={0: f"data.applicant.phone: {MOBILE} is bad"}))
    with capture_logs() as logs, pytest.raises(PermanentError) as caught:
        await adapter.deliver(env, "k")
    text = json.dumps(logs, ensure_ascii=False, default=str) + caught.value.reason
    assert logs and MOBILE not in text and RESIDENT_ID not in text


# -- source side -----------------------------------------------------------------------------------------


def pushed(env: Envelope, via: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    return env.model_dump(mode="json") | {"via": [CITY] if via is None else via} | changes


def test_decode_keeps_every_attribute_as_the_origin_wrote_it() -> None:
    payload = envelope("320700261121000012345", revision=3, applicant=NATURAL_PERSON, commitment=None).payload()
    env = Envelope.wrap(
        payload,
        source="zwfw",
        revision=3,
        region="320706",
        correlation_id="corr-1",
        causation_id="cause-1",
        subject="subj-1",
    )
    [got] = province_source().decode(RawRecord(pushed(env)))
    assert got.model_dump(exclude={"via"}) == env.model_dump(exclude={"via"})
    assert (got.id, got.source, got.revision, got.content_hash) == (env.id, "zwfw", 3, env.content_hash)
    assert got.via == (CITY,)


def test_blank_optional_attributes_mean_absent() -> None:
    env = envelope()
    [got] = province_source().decode(RawRecord(pushed(env, subject="", region="", causation_id="")))
    assert (got.subject, got.region, got.causation_id) == (None, None, None)


def test_a_payload_under_a_hash_that_is_not_its_own_is_refused() -> None:
    body = pushed(envelope())
    body["data"]["result_description"] = "不予许可"
    with pytest.raises(DecodeError, match="content_hash does not match"):
        province_source().decode(RawRecord(body))


def test_a_payload_filed_under_another_facts_key_is_refused() -> None:
    body = pushed(envelope("320700261121000000001"), business_key="320700261121000000002")
    with pytest.raises(DecodeError, match="business_key: not the natural key"):
        province_source().decode(RawRecord(body))


def test_an_invalid_payload_is_refused_naming_the_field_not_the_value() -> None:
    body = pushed(envelope(applicant=NATURAL_PERSON, commitment=None))
    body["data"]["applicant"]["id_number"] = RESIDENT_ID[:-1] + ("0" if RESIDENT_ID[-1] != "0" else "1")
    body["content_hash"] = content_hash(body["data"])  # a consistent hash over an invalid payload
    with pytest.raises(DecodeError) as caught:
        province_source().decode(RawRecord(body))
    assert "data" in caught.value.reason and "id_number" in caught.value.reason
    assert body["data"]["applicant"]["id_number"] not in caught.value.reason


@pytest.mark.parametrize(
    ("via", "says"),
    [
        (None, "via: missing"),
        ([], "via: empty"),
        ("city-320700", "list of gateway ids"),
        ([CITY, ""], "list of gateway ids"),
        ([PROVINCE, CITY], rf"loop — this gateway \({PROVINCE}\) already relayed it \(via {PROVINCE} → {CITY}\)"),
        (["county-320706", CITY, "county-320706"], "appears twice"),
        ([f"hop-{i}" for i in range(9)], "9 hops .* more than max_hops = 8"),
    ],
)
def test_loops_and_overlong_chains_are_refused(via: Any, says: str) -> None:
    body = pushed(envelope())
    if via is None:
        del body["via"]
    else:
        body["via"] = via
    with pytest.raises(DecodeError, match=says):
        province_source().decode(RawRecord(body))


def test_max_hops_is_configurable() -> None:
    body = pushed(envelope(), via=["county-320706", CITY])
    assert province_source(max_hops=2).decode(RawRecord(body))[0].via == ("county-320706", CITY)
    with pytest.raises(DecodeError, match="max_hops = 1"):
        province_source(max_hops=1).decode(RawRecord(body))


def test_a_secret_message_pushed_by_a_peer_is_refused() -> None:
    with pytest.raises(DecodeError, match="涉密"):
        province_source().decode(RawRecord(pushed(envelope(classification=Classification.secret))))


def test_another_schema_version_is_refused() -> None:
    env = envelope()
    body = pushed(env, dataschema=f"urn:shenguan:schema:v2:{env.type}")
    with pytest.raises(DecodeError, match="schema version v2"):
        province_source().decode(RawRecord(body))


@pytest.mark.parametrize("payload", [b"not json", "[1, 2]", ["a"], 42, b'{"id": '])
def test_anything_but_an_envelope_object_is_refused(payload: Any) -> None:
    with pytest.raises(DecodeError):
        province_source().decode(RawRecord(payload))


def test_the_envelope_as_json_text_is_read_too() -> None:
    env = envelope()
    [got] = province_source().decode(RawRecord(json.dumps(pushed(env), ensure_ascii=False)))
    assert got.id == env.id


# -- the conformance kit -----------------------------------------------------------------------------------


def sha(key: str) -> str:
    return "sha256$" + hashlib.sha256(key.encode()).hexdigest()


def province_config(db: Path, *, hlwjg: str | None = None, max_hops: int | None = None) -> Config:
    """A province gateway: push source ``city`` (adapter shenguan) and, given a mocks URL, hlwjg behind it."""
    city: dict[str, Any] = {
        "adapter": "shenguan",
        "mode": "push",
        "gateway_id": PROVINCE,
        "ingest": {"auth": "api_key", "api_keys": [sha(API_KEY)]},
    }
    if max_hops is not None:
        city["max_hops"] = max_hops
    raw: dict[str, Any] = {
        "gateway": {"db": str(db), "shutdown_grace_s": 1},
        "deadlines": {"enabled": False},
        "alerts": {"scan_interval_s": 0.2},
        "sources": {"city": city},
    }
    if hlwjg is not None:
        raw["destinations"] = {
            "hlwjg": {
                "adapter": "hlwjg",
                "base_url": f"{hlwjg}/hlwjg",
                "client_id": "shenguan",
                "client_secret": "hlwjg-mock-secret",
                "backoff_initial_s": 0.05,
                "backoff_max_s": 0.2,
                "backoff_jitter_s": 0.01,
            }
        }
        raw["routes"] = [{"type": "approval.decided", "destinations": ["hlwjg"]}]
    return Config.model_validate(raw)


async def facts_report(gateway: Gateway) -> dict[str, Any]:
    """A gateway as the kit's receiver: distinct facts held, and messages that repeat a (fact, revision)."""
    rows, _ = await gateway.store.find_messages(MessageQuery(limit=10_000))  # type: ignore[attr-defined]
    versions = [(r["type"], r["business_key"], r["revision"]) for r in rows]
    return {
        "accepted": len({(t, k) for t, k, _ in versions}),
        "duplicate_creations": len(versions) - len(set(versions)),
        "messages": rows,
    }


class ProvinceTransport(httpx.AsyncBaseTransport):
    """A real province gateway behind an ASGI transport, started on the first request, stopped at ``aclose``.

    Started lazily because the kit builds its receiver outside the event loop each check runs on.
    """

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="shenguan-province-"))
        self.gateway: Gateway | None = None
        self._inner: httpx.ASGITransport | None = None

    async def _started(self) -> tuple[Gateway, httpx.ASGITransport]:
        if self.gateway is None or self._inner is None:
            self.gateway = Gateway(province_config(self._dir / "province.db"))
            await self.gateway.start()
            self._inner = httpx.ASGITransport(app=create_app(self.gateway))
        return self.gateway, self._inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _, inner = await self._started()
        return await inner.handle_async_request(request)

    async def report(self) -> dict[str, Any]:
        gateway, _ = await self._started()
        return await facts_report(gateway)

    async def aclose(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop(0)
            self.gateway = None
        shutil.rmtree(self._dir, ignore_errors=True)


def province_receiver() -> Receiver:
    transport = ProvinceTransport()
    return Receiver(transport=transport, inspect=transport.report)


def is_ingest(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/ingest/city"


def decode_as_province(native: Any) -> Envelope:
    return province_source().decode(RawRecord(native))[0]


class TestPeerDestinationConformance(DestinationConformance):
    adapter_factory = staticmethod(lambda transport: city_adapter(transport, base_url="http://province"))
    receiver_factory = staticmethod(province_receiver)
    samples = (
        envelope(),
        envelope("320700261121000099999", revision=2, applicant=NATURAL_PERSON, commitment=None),
    )
    decode_native = staticmethod(decode_as_province)
    target_request = staticmethod(is_ingest)
    error_cases = tuple(
        ErrorCase(name, reply(r.status_code, content=r.content, headers=dict(r.headers)), expected)
        for name, r, expected, _ in ERRORS
    )


class TestPeerSourceConformance(SourceConformance):
    adapter_factory = staticmethod(lambda transport: province_source())
    native_samples = (
        pushed(envelope()),
        pushed(envelope("320700261121000099999", revision=2, applicant=NATURAL_PERSON, commitment=None)),
    )
    encode_native = staticmethod(lambda env: env.model_dump(mode="json"))
    standard_error_cases = False  # a push source is never polled: there is no poll reply to classify


# -- through a real province gateway -------------------------------------------------------------------------


@pytest.fixture
async def mocks() -> AsyncIterator[str]:
    server = await run_in_background()
    try:
        yield server.base_url
    finally:
        await server.stop()


@pytest.fixture
async def province(mocks: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(province_config(tmp_path / "province.db", hlwjg=mocks))
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop(1)


@pytest.fixture
async def city(province: Gateway) -> AsyncIterator[PeerAdapter]:
    a = city_adapter(httpx.ASGITransport(app=create_app(province)), base_url="http://province")
    yield a
    await a.aclose()


async def hlwjg_holds(mocks: str, want: dict[str, int], within_s: float = 20.0) -> dict[str, Any]:
    """Wait until the hlwjg mock holds exactly ``want`` (approval no → dataVersion); its report."""
    async with httpx.AsyncClient(base_url=mocks) as client:
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            report = (await client.get("/hlwjg/_mock/records")).json()
            held = {r["approvalNo"]: r["dataVersion"] for r in report["records"]}
            if held == want or asyncio.get_running_loop().time() > deadline:
                return report | {"held": held}
            await asyncio.sleep(0.05)


async def test_a_fact_crosses_the_hop_with_its_id_and_revision_and_reaches_hlwjg_once(
    city: PeerAdapter, province: Gateway, mocks: str
) -> None:
    first = envelope("320700261121000000001")
    receipt = await city.deliver(first, "k1")
    assert receipt.detail["verdict"] == "new" and not receipt.replayed
    again = await city.deliver(first, "k1")
    assert again.replayed and again.detail["verdict"] == "duplicate", "a resend is a duplicate, and a success"

    correction = envelope("320700261121000000001", revision=2, result_description="准予许可（更正）")
    assert (await city.deliver(correction, "k2")).detail["verdict"] == "revision"

    stored = await province.store.message(correction.id)  # type: ignore[attr-defined]
    assert stored is not None and stored["envelope"]["id"] == correction.id
    assert stored["envelope"]["revision"] == 2 and stored["envelope"]["via"] == [CITY]
    assert stored["envelope"]["source"] == "zwfw", "the origin's source, not the hop's"
    assert (await facts_report(province))["duplicate_creations"] == 0

    report = await hlwjg_holds(mocks, {"320700261121000000001": 2})
    assert report["held"] == {"320700261121000000001": 2}
    assert report["accepted"] == 1 and report["duplicate_creations"] == 0


async def test_an_older_revision_arriving_late_is_stale_and_not_relayed(
    city: PeerAdapter, province: Gateway, mocks: str
) -> None:
    newer = envelope("320700261121000000002", revision=2, result_description="更正")
    older = envelope("320700261121000000002")
    assert (await city.deliver(newer, "k2")).detail["verdict"] == "new"
    late = await city.deliver(older, "k1")
    assert late.replayed and late.detail["verdict"] == "stale"
    report = await hlwjg_holds(mocks, {"320700261121000000002": 2})
    assert report["held"] == {"320700261121000000002": 2} and report["duplicate_creations"] == 0


async def test_a_batch_through_the_real_ingest(city: PeerAdapter, province: Gateway, mocks: str) -> None:
    batch = envelopes(30, first=100)
    out = await city.deliver_batch([(e, f"k{i}") for i, e in enumerate(batch)])
    assert [r.detail["verdict"] for r in out if isinstance(r, DeliveryReceipt)] == ["new"] * 30
    again = await city.deliver_batch([(e, f"k{i}") for i, e in enumerate(batch)])
    assert all(isinstance(r, DeliveryReceipt) and r.replayed for r in again)
    report = await hlwjg_holds(mocks, {e.business_key: 1 for e in batch})
    assert report["accepted"] == 30 and report["duplicate_creations"] == 0


async def test_a_message_coming_back_is_refused_and_kept_as_rejected(city: PeerAdapter, province: Gateway) -> None:
    # A message the province relayed before (province → city), now pushed back by the city: a routing loop.
    came_back = envelope("320700261121000000003").model_copy(update={"via": (PROVINCE,)})
    with pytest.raises(PermanentError, match=f"peer rejected it: via: loop — this gateway \\({PROVINCE}\\)"):
        await city.deliver(came_back, "k")
    status = await province.store.status()
    assert status["messages"] == 0 and status["rejected"] == 1
    [kept] = await province.store.rejected()  # type: ignore[attr-defined]
    assert kept["source"] == "city" and "loop" in kept["reason"]
    assert json.loads(kept["raw"])["id"] == came_back.id, "the refused input is kept whole for the operator"


async def test_the_hop_limit_is_enforced_by_the_real_ingest(tmp_path: Path) -> None:
    gw = Gateway(province_config(tmp_path / "p.db", max_hops=2))
    await gw.start()
    a = city_adapter(httpx.ASGITransport(app=create_app(gw)), base_url="http://province")
    try:
        assert (await a.deliver(envelope().model_copy(update={"via": ("county",)}), "k")).detail["verdict"] == "new"
        too_far = envelope("320700261121000000004").model_copy(update={"via": ("county-a", "county-b")})
        with pytest.raises(PermanentError, match="3 hops"):
            await a.deliver(too_far, "k")
    finally:
        await a.aclose()
        await gw.stop(0)


async def test_wrong_credentials_are_permanent_and_store_nothing(province: Gateway) -> None:
    link = PeerLink("http://province", "city", "api_key", api_key="not-the-key")
    a = PeerAdapter("province", gateway_id=CITY, link=link, transport=httpx.ASGITransport(app=create_app(province)))
    try:
        with pytest.raises(PermanentError, match="401 unauthorized"):
            await a.deliver(envelope(), "k")
    finally:
        await a.aclose()
    status = await province.store.status()
    assert status["messages"] == 0 and status["rejected"] == 0
