"""The admin API: credentials and roles, every action with its audit entry, filters, 404/409/422.

Runs in-process against the gateway's ASGI app over a temporary SQLite store; where an action must make
something happen (a retried dead delivery goes out), a relay runs against a scripted destination and the
receiver counts what it got.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters import PermanentError
from factories import envelope
from fakes import FakeDestination, Receiver
from gateway.admin.auth import hash_password, new_api_key
from gateway.config import Config, DestinationConfig
from gateway.http import create_app
from gateway.relay import Destination, Relay
from gateway.runtime import Gateway
from gateway.store import DeliveryState, Outcome, Route
from gateway.store.sqlite import SQLiteStore
from schemas import Classification

API = "/admin/api/v1"
OPERATOR_PASSWORD = "correct horse battery"
OPERATOR_KEY, OPERATOR_KEY_HASH = new_api_key()
VIEWER_KEY, VIEWER_KEY_HASH = new_api_key()
OPERATOR_HASH = hash_password(OPERATOR_PASSWORD)
AS_OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
AS_VIEWER = {"X-API-Key": VIEWER_KEY}


def admin_config(tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "gateway": {"db": str(tmp_path / "g.db")},
            "paper": {"dir": str(tmp_path / "paper")},
            "admin": {
                "users": {
                    "wang": {"role": "operator", "password_hash": OPERATOR_HASH, "api_key_hash": OPERATOR_KEY_HASH},
                    "li": {"role": "viewer", "api_key_hash": VIEWER_KEY_HASH},
                }
            },
            "destinations": {
                "hlwjg": {"adapter": "hlwjg", "base_url": "http://127.0.0.1:9/hlwjg"},
                "credit": {"adapter": "credit", "base_url": "http://127.0.0.1:9/credit"},
            },
            "routes": [{"type": "approval.decided", "destinations": ["hlwjg"]}],
        }
    )


@dataclass
class Env:
    gateway: Gateway
    store: SQLiteStore
    client: httpx.AsyncClient
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def ingest(self, *envelopes: Any, routes: tuple[str, ...] = ("hlwjg",)) -> list[str]:
        result = await self.store.ingest_page("zwfw", envelopes, [], None, lambda _e: [Route(r) for r in routes])
        return result.message_ids

    async def settle(self, state: DeliveryState, **leasing: Any) -> int:
        """Lease the one due hlwjg delivery and record ``state`` for it (the relay's part, by hand)."""
        [row] = await self.store.lease_due(owner="t", destination="hlwjg", limit=1, lease_s=60)
        await self.store.complete("t", [Outcome(row.id, state, error="refused", error_kind="permanent", **leasing)])
        return row.id

    def run_relay(self, adapter: FakeDestination) -> None:
        config = DestinationConfig(adapter="fake", max_attempts=1, backoff_initial_s=0.01, breaker_failures=1000)
        relay = Relay(self.store, {"hlwjg": Destination("hlwjg", adapter, config)}, owner="t", idle_s=0.05)
        self.gateway.relay = relay
        self.gateway.destinations["hlwjg"] = adapter  # type: ignore[assignment]

        async def run() -> None:
            await relay.recover()
            await relay.run()

        self.tasks.append(asyncio.create_task(run()))

    async def audit(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(e.subject, json.loads(e.detail)) for e in await self.store.audit_entries() if e.kind == kind]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    config = admin_config(tmp_path)
    store = SQLiteStore(config.gateway.db, synchronous="NORMAL")
    await store.open()
    gateway = Gateway(config, store=store)
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        e = Env(gateway, store, client)
        try:
            yield e
        finally:
            if gateway.relay is not None:
                gateway.relay.stop()
            await asyncio.gather(*e.tasks)
    await store.close()


async def wait_for_state(env: Env, delivery_id: int, state: str, timeout_s: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            body = (await env.client.get(f"{API}/deliveries/{delivery_id}", headers=AS_VIEWER)).json()
            if body["state"] == state:
                return body
            await asyncio.sleep(0.02)


# -- credentials and roles --------------------------------------------------------------------------------


async def test_no_or_wrong_credentials_get_401_and_say_nothing_about_why(env: Env) -> None:
    anonymous = await env.client.get(f"{API}/overview")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    wrong_password = await env.client.get(f"{API}/overview", auth=("wang", "not the password"))
    unknown_user = await env.client.get(f"{API}/overview", auth=("zhao", OPERATOR_PASSWORD))
    wrong_key = await env.client.get(f"{API}/overview", headers={"Authorization": "Bearer sg_nope"})
    garbled = await env.client.get(f"{API}/overview", headers={"Authorization": "Basic !!!"})
    for response in (wrong_password, unknown_user, wrong_key, garbled):
        assert response.status_code == 401
    assert wrong_password.json() == unknown_user.json() == wrong_key.json(), "no hint which half was wrong"


async def test_viewers_read_operators_act(env: Env) -> None:
    assert (await env.client.get(f"{API}/whoami", headers=AS_VIEWER)).json() == {"name": "li", "role": "viewer"}
    by_password = await env.client.get(f"{API}/whoami", auth=("wang", OPERATOR_PASSWORD))
    assert by_password.json() == {"name": "wang", "role": "operator"}
    [message_id] = await env.ingest(envelope("A"))
    delivery_id = await env.settle(DeliveryState.dead)

    refused = await env.client.post(f"{API}/deliveries/{delivery_id}/retry", headers=AS_VIEWER)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert (
        await env.client.post(f"{API}/messages/{message_id}/replay", headers=AS_VIEWER, json={"destination": "hlwjg"})
    ).status_code == 403
    assert (await env.store.delivery(delivery_id))["state"] == "dead", "a refused action changes nothing"
    assert (await env.client.post(f"{API}/deliveries/{delivery_id}/retry", headers=AS_OPERATOR)).status_code == 200


# -- finding things ---------------------------------------------------------------------------------------


async def test_find_messages_by_key_state_correlation_and_time(env: Env) -> None:
    [a, _b] = await env.ingest(envelope("A"), envelope("B"))
    await env.settle(DeliveryState.dead)  # the first due delivery: A's

    async def find(**params: Any) -> dict[str, Any]:
        response = await env.client.get(f"{API}/messages", params=params, headers=AS_VIEWER)
        assert response.status_code == 200, response.text
        return response.json()

    assert (await find())["total"] == 2
    by_key = await find(business_key="A")
    assert [m["id"] for m in by_key["items"]] == [a] and by_key["items"][0]["deliveries"][0]["state"] == "dead"
    assert [m["business_key"] for m in (await find(state="dead"))["items"]] == ["A"]
    assert [m["business_key"] for m in (await find(state="pending", destination="hlwjg"))["items"]] == ["B"]
    assert (await find(correlation_id="B"))["total"] == 1 and (await find(id=a))["total"] == 1
    assert (await find(received_from="2099-01-01T00:00:00"))["total"] == 0
    assert (await find(received_to="2099-01-01T00:00:00+08:00"))["total"] == 2
    assert len((await find(limit=1, offset=1))["items"]) == 1
    bad = await env.client.get(f"{API}/messages", params={"state": "lost"}, headers=AS_VIEWER)
    assert bad.status_code == 422


async def test_a_message_its_delivery_attempts_and_its_closed_loop(env: Env) -> None:
    [a] = await env.ingest(envelope("A"))
    delivery_id = await env.settle(DeliveryState.dead)
    message = (await env.client.get(f"{API}/messages/{a}", headers=AS_VIEWER)).json()
    assert message["envelope"]["business_key"] == "A" and message["deliveries"][0]["id"] == delivery_id
    assert message["received_at"].endswith("+08:00"), "times in Beijing time"
    delivery = (await env.client.get(f"{API}/deliveries/{delivery_id}", headers=AS_VIEWER)).json()
    assert [(x["attempt"], x["outcome"], x["error"]) for x in delivery["attempt_log"]] == [(1, "dead", "refused")]
    assert delivery["actions"] == ["retry", "replay"]
    trace = (await env.client.get(f"{API}/messages/{a}/trace", headers=AS_VIEWER)).json()
    assert trace["correlation_id"] == "A" and [m["id"] for m in trace["messages"]] == [a]
    assert (await env.client.get(f"{API}/traces/A", headers=AS_VIEWER)).json() == trace
    dead = (await env.client.get(f"{API}/deliveries", params={"state": "dead"}, headers=AS_VIEWER)).json()
    assert dead["total"] == 1 and dead["items"][0]["id"] == delivery_id


async def test_unknown_ids_are_404_with_a_sentence(env: Env) -> None:
    for path in ("/messages/nope", "/messages/nope/trace", "/traces/nope", "/deliveries/12345"):
        response = await env.client.get(API + path, headers=AS_VIEWER)
        assert response.status_code == 404 and response.json()["detail"], path
    retry = await env.client.post(f"{API}/deliveries/12345/retry", headers=AS_OPERATOR)
    assert retry.status_code == 404 and "no delivery 12345" in retry.json()["detail"]
    replay = await env.client.post(f"{API}/messages/nope/replay", headers=AS_OPERATOR, json={"destination": "hlwjg"})
    assert replay.status_code == 404


async def test_personal_data_is_masked_in_what_the_api_shows(env: Env) -> None:
    [a] = await env.ingest(envelope("A"))  # the factory's applicant phone is 13800138000
    text = (await env.client.get(f"{API}/messages/{a}", headers=AS_VIEWER)).text
    assert "13800138000" not in text and "138****8000" in text


# -- actions ----------------------------------------------------------------------------------------------


async def test_retrying_a_dead_delivery_sends_it_and_the_receiver_holds_one_record(env: Env) -> None:
    receiver = Receiver()
    refuse = {"on": True}
    adapter = FakeDestination(
        receiver, script=lambda _e, _n: PermanentError("统一社会信用代码 unknown") if refuse["on"] else None
    )
    env.run_relay(adapter)
    await env.ingest(envelope("A"))
    async with asyncio.timeout(10):
        while not (dead := (await env.store.deliveries(state="dead"))[0]):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    delivery_id = dead[0]["id"]
    assert receiver.records == {}

    refuse["on"] = False  # the cause is fixed at the receiver
    response = await env.client.post(f"{API}/deliveries/{delivery_id}/retry", headers=AS_OPERATOR)
    assert response.status_code == 200 and response.json()["state"] in ("pending", "in_flight", "delivered")
    delivered = await wait_for_state(env, delivery_id, "delivered")
    assert [a["outcome"] for a in delivered["attempt_log"]] == ["dead", "delivered"]
    assert receiver.records == {"A": 1} and receiver.duplicate_creations == 0
    assert await env.audit("delivery.retried") == [(str(delivery_id), {"actor": "api:wang", "previous": "dead"})]

    again = await env.client.post(f"{API}/deliveries/{delivery_id}/retry", headers=AS_OPERATOR)
    assert again.status_code == 409 and "it is delivered" in again.json()["detail"]


async def test_resolving_uncertain_deliveries(env: Env) -> None:
    await env.ingest(envelope("A"))
    first = await env.settle(DeliveryState.uncertain)
    await env.ingest(envelope("B"))
    second = await env.settle(DeliveryState.uncertain)

    bad = await env.client.post(f"{API}/deliveries/{first}/resolve", headers=AS_OPERATOR, json={"resolution": "maybe"})
    assert bad.status_code == 422
    done = await env.client.post(
        f"{API}/deliveries/{first}/resolve", headers=AS_OPERATOR, json={"resolution": "delivered"}
    )
    assert done.status_code == 200 and done.json()["state"] == "delivered"
    resend = await env.client.post(
        f"{API}/deliveries/{second}/resolve", auth=("wang", OPERATOR_PASSWORD), json={"resolution": "resend"}
    )
    assert resend.json()["state"] == "pending" and resend.json()["budget_used"] == 0
    twice = await env.client.post(
        f"{API}/deliveries/{first}/resolve", headers=AS_OPERATOR, json={"resolution": "resend"}
    )
    assert twice.status_code == 409
    assert [(s, d["resolution"], d["actor"]) for s, d in await env.audit("delivery.resolved")] == [
        (str(first), "delivered", "api:wang"),
        (str(second), "resend", "api:wang"),
    ]


async def test_replay_uses_the_same_idempotency_key_and_refuses_unsafe_cases(env: Env) -> None:
    [a] = await env.ingest(envelope("A"))
    delivery_id = await env.settle(DeliveryState.delivered)
    key = (await env.store.delivery(delivery_id))["idempotency_key"]

    unknown = await env.client.post(f"{API}/messages/{a}/replay", headers=AS_OPERATOR, json={"destination": "nowhere"})
    assert unknown.status_code == 404 and "not configured" in unknown.json()["detail"]
    replayed = await env.client.post(f"{API}/messages/{a}/replay", headers=AS_OPERATOR, json={"destination": "hlwjg"})
    assert replayed.status_code == 200
    assert replayed.json()["id"] == delivery_id and replayed.json()["idempotency_key"] == key
    assert replayed.json()["state"] == "pending"
    busy = await env.client.post(f"{API}/messages/{a}/replay", headers=AS_OPERATOR, json={"destination": "hlwjg"})
    assert busy.status_code == 409 and "already on its way" in busy.json()["detail"]
    new = await env.client.post(f"{API}/messages/{a}/replay", headers=AS_OPERATOR, json={"destination": "credit"})
    assert new.status_code == 200 and new.json()["destination"] == "credit" and new.json()["id"] != delivery_id
    assert [d["destination"] for _s, d in await env.audit("delivery.replayed")] == ["hlwjg", "credit"]


async def test_replay_to_a_receiver_without_idempotency_needs_force(env: Env) -> None:
    from adapters import Capabilities, Direction

    caps = Capabilities(direction=Direction.destination, idempotent_receiver=False, status_query=False)
    env.gateway.destinations["hlwjg"] = FakeDestination(Receiver(), capabilities=caps)  # type: ignore[assignment]
    [a] = await env.ingest(envelope("A"))
    await env.settle(DeliveryState.delivered)
    refused = await env.client.post(f"{API}/messages/{a}/replay", headers=AS_OPERATOR, json={"destination": "hlwjg"})
    assert refused.status_code == 409 and "second record" in refused.json()["detail"]
    forced = await env.client.post(
        f"{API}/messages/{a}/replay", headers=AS_OPERATOR, json={"destination": "hlwjg", "force": True}
    )
    assert forced.status_code == 200 and forced.json()["state"] == "pending"


async def test_paper_queue_render_confirm_recall_and_return(env: Env) -> None:
    await env.ingest(envelope("S", classification=Classification.secret))
    await env.ingest(envelope("F"))
    fallback = await env.settle(DeliveryState.paper_pending)
    queue = (await env.client.get(f"{API}/paper", headers=AS_VIEWER)).json()
    items = {i["business_key"]: i for i in queue}
    secret = items["S"]["id"]
    assert not items["S"]["fallback"] and items["F"]["fallback"] and not items["F"]["printed"]

    recalled = await env.client.post(f"{API}/paper/{fallback}/recall", headers=AS_OPERATOR)
    assert recalled.status_code == 200 and recalled.json()["state"] == "pending"
    assert (await env.client.post(f"{API}/paper/{secret}/recall", headers=AS_OPERATOR)).status_code == 409

    rendered = await env.client.post(f"{API}/paper/render", headers=AS_OPERATOR, json={"ids": [secret]})
    assert rendered.status_code == 200 and rendered.json()["rendered"] == [secret]
    pdf = await env.client.get(f"{API}/paper/files/{rendered.json()['file']}", headers=AS_VIEWER)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert (await env.client.get(f"{API}/paper/files/..%2Fg.db", headers=AS_VIEWER)).status_code == 404
    again = await env.client.post(f"{API}/paper/render", headers=AS_OPERATOR, json={"ids": [secret]})
    assert again.json() == {"file": None, "rendered": []}, "printed once; no empty PDF"
    pdfs = await asyncio.to_thread(lambda: list(Path(env.gateway.config.paper.dir).glob("*.pdf")))
    assert len(pdfs) == 1

    returned = await env.client.post(f"{API}/paper/{secret}/return", headers=AS_OPERATOR, json={"reason": "地址不详"})
    assert returned.status_code == 200 and not returned.json()["printed"]
    receipt = {"receiver": "张三", "signed_at": "2026-11-23T10:00:00", "method": "直接送达"}
    confirmed = await env.client.post(f"{API}/paper/{secret}/confirm", headers=AS_OPERATOR, json=receipt)
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "paper_delivered"
    assert confirmed.json()["delivered_at"].startswith("2026-11-23T10:00:00")
    again = await env.client.post(f"{API}/paper/{secret}/confirm", headers=AS_OPERATOR, json=receipt)
    assert again.status_code == 409
    assert (await env.client.post(f"{API}/paper/999/confirm", headers=AS_OPERATOR, json=receipt)).status_code == 404
    kinds = [(e.kind, json.loads(e.detail).get("recorded_by")) for e in await env.store.audit_entries()]
    assert [k for k in kinds if k[0].startswith("paper.")] == [
        ("paper.recalled", "api:wang"),
        ("paper.printed", "api:wang"),
        ("paper.returned", "api:wang"),
        ("paper.confirmed", "api:wang"),
    ]


async def test_overview_health_mapping_and_calendar(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHENGUAN_STATE_DIR", str(tmp_path / "state"))
    await env.ingest(envelope("A"))
    overview = (await env.client.get(f"{API}/overview", headers=AS_VIEWER)).json()
    dests = {d["name"]: d for d in overview["destinations"]}
    assert set(dests) == {"hlwjg", "credit"} and dests["hlwjg"]["counts"]["pending"] == 1
    assert dests["hlwjg"]["oldest_pending"]["business_key"] == "A" and dests["credit"]["oldest_pending"] is None
    assert overview["ready"] is False, "no relay runs in this test gateway"
    health = (await env.client.get(f"{API}/health", headers=AS_VIEWER)).json()
    assert health["live"] and not health["ready"]

    assert (await env.client.get(f"{API}/mapping", headers=AS_VIEWER)).json() == {
        "active_version": None,
        "versions": [],
    }
    await env.store.import_mapping([{"item": "x"}], source="list.csv", digest="d1")
    mapping = (await env.client.get(f"{API}/mapping", headers=AS_VIEWER)).json()
    assert mapping["active_version"] == 1 and mapping["versions"][0]["row_count"] == 1

    calendar = (await env.client.get(f"{API}/calendar", headers=AS_VIEWER)).json()
    assert calendar["loaded_years"] == [] and len(calendar["years"]) == 4
    assert {y["basis"] for y in calendar["years"]} <= {"packaged", "estimated"}
