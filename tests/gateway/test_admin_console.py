"""The web console in-process: login and sessions, CSRF on every action, roles, the pages' content.

The browser test (tests/e2e/test_console_browser.py) drives the same pages in Chromium end to end; these
check the rules a browser test would only touch by accident — a forged form, a viewer posting an action,
an open redirect, a session outliving a password change.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import envelope
from gateway.admin.auth import hash_password
from gateway.config import Config
from gateway.http import create_app
from gateway.runtime import Gateway
from gateway.store import DeliveryState, Outcome, Route
from gateway.store.sqlite import SQLiteStore
from schemas import Classification

OPERATOR_PASSWORD, VIEWER_PASSWORD = "operator-password", "viewer-password"
OPERATOR_HASH, VIEWER_HASH = hash_password(OPERATOR_PASSWORD), hash_password(VIEWER_PASSWORD)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@dataclass
class Console:
    gateway: Gateway
    store: SQLiteStore
    app: Any

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gateway")

    async def login(self, client: httpx.AsyncClient, user: str, password: str, next: str = "/admin/") -> httpx.Response:
        form = await client.get("/admin/login", params={"next": next})
        nonce = NONCE.search(form.text)[1]  # type: ignore[index]
        return await client.post(
            "/admin/login", data={"username": user, "password": password, "nonce": nonce, "next": next}
        )

    async def dead_delivery(self, key: str = "A") -> int:
        await self.store.ingest_page("zwfw", [envelope(key)], [], None, lambda _e: [Route("hlwjg")])
        [row] = await self.store.lease_due(owner="t", destination="hlwjg", limit=1, lease_s=60)
        await self.store.complete("t", [Outcome(row.id, DeliveryState.dead, error="refused by 13800138000 check")])
        return row.id


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    config = Config.model_validate(
        {
            "gateway": {"db": str(tmp_path / "g.db")},
            "paper": {"dir": str(tmp_path / "paper")},
            "admin": {
                "users": {
                    "wang": {"role": "operator", "password_hash": OPERATOR_HASH},
                    "li": {"role": "viewer", "password_hash": VIEWER_HASH},
                },
                "session_secret": "s" * 40,
            },
            "destinations": {"hlwjg": {"adapter": "hlwjg", "base_url": "http://127.0.0.1:9/hlwjg"}},
        }
    )
    store = SQLiteStore(config.gateway.db, synchronous="NORMAL")
    await store.open()
    gateway = Gateway(config, store=store)
    yield Console(gateway, store, create_app(gateway))
    await store.close()


async def test_pages_need_a_login_and_login_sends_you_back(console: Console) -> None:
    async with console.client() as client:
        first = await client.get("/admin/dead?offset=0")
        assert (
            first.status_code == 303 and first.headers["location"] == "/admin/login?next=%2Fadmin%2Fdead%3Foffset%3D0"
        )
        wrong = await console.login(client, "wang", "nope", next="/admin/dead")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        ok = await console.login(client, "wang", OPERATOR_PASSWORD, next="/admin/dead")
        assert ok.status_code == 303 and ok.headers["location"] == "/admin/dead"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
        page = await client.get("/admin/dead")
        assert page.status_code == 200 and "Dead letters" in page.text and "wang (operator)" in page.text
        assert (
            page.headers["x-frame-options"] == "DENY"
            and "default-src 'none'" in page.headers["content-security-policy"]
        )


async def test_login_refuses_a_forged_form_and_foreign_redirects(console: Console) -> None:
    async with console.client() as client:
        forged = await client.post(
            "/admin/login", data={"username": "wang", "password": OPERATOR_PASSWORD, "nonce": "guessed"}
        )
        assert forged.status_code == 303 and forged.headers["location"].startswith("/admin/login")
        assert "shenguan_session" not in forged.headers.get("set-cookie", "")
        for target in ("//evil.example/", "https://evil.example/", "/elsewhere"):
            response = await console.login(client, "wang", OPERATOR_PASSWORD, next=target)
            assert response.headers["location"] == "/admin/", target


async def test_an_operator_retries_with_the_form_token_and_is_named_in_the_audit_chain(console: Console) -> None:
    delivery_id = await console.dead_delivery()
    async with console.client() as client:
        await console.login(client, "wang", OPERATOR_PASSWORD)
        page = await client.get("/admin/dead")
        assert f'action="/admin/deliveries/{delivery_id}/retry"' in page.text
        assert "13800138000" not in page.text and "138****8000" in page.text, "errors shown masked"
        token = CSRF.search(page.text)[1]  # type: ignore[index]

        forged = await client.post(
            f"/admin/deliveries/{delivery_id}/retry", data={"csrf": "x" * 32, "back": "/admin/dead"}
        )
        assert forged.status_code == 403 and "CSRF check failed" in forged.text
        assert (await console.store.delivery(delivery_id))["state"] == "dead", "a forged form changes nothing"

        done = await client.post(f"/admin/deliveries/{delivery_id}/retry", data={"csrf": token, "back": "/admin/dead"})
        assert done.status_code == 303 and done.headers["location"] == "/admin/dead"
        after = await client.get("/admin/dead")
        assert f"Delivery {delivery_id} queued for retry." in after.text and "Nothing here." in after.text
    assert (await console.store.delivery(delivery_id))["state"] == "pending"
    entries = [json.loads(e.detail) for e in await console.store.audit_entries() if e.kind == "delivery.retried"]
    assert entries == [{"actor": "console:wang", "previous": "dead"}]


async def test_a_viewer_sees_no_actions_and_cannot_post_them(console: Console) -> None:
    delivery_id = await console.dead_delivery()
    async with console.client() as client:
        await console.login(client, "li", VIEWER_PASSWORD)
        page = await client.get("/admin/dead")
        assert str(delivery_id) in page.text and "/retry" not in page.text
        token = CSRF.search(page.text)[1]  # type: ignore[index]  (the logout form's)
        refused = await client.post(f"/admin/deliveries/{delivery_id}/retry", data={"csrf": token})
        assert refused.status_code == 403 and "viewer" in refused.text
    assert (await console.store.delivery(delivery_id))["state"] == "dead"


async def test_a_password_change_or_logout_ends_the_session(console: Console) -> None:
    async with console.client() as client:
        await console.login(client, "wang", OPERATOR_PASSWORD)
        assert (await client.get("/admin/")).status_code == 200
        console.gateway.config.admin.users["wang"].password_hash = hash_password("a new password")
        assert (await client.get("/admin/")).status_code == 303
    async with console.client() as client:
        await console.login(client, "li", VIEWER_PASSWORD)
        page = await client.get("/admin/")
        token = CSRF.search(page.text)[1]  # type: ignore[index]
        assert (await client.post("/admin/logout", data={"csrf": token})).status_code == 303
        assert (await client.get("/admin/")).status_code == 303


async def test_dashboard_search_message_trace_and_paper_pages(console: Console) -> None:
    delivery_id = await console.dead_delivery("P1")
    await console.store.ingest_page(
        "zwfw", [envelope("S1", classification=Classification.secret)], [], None, lambda _e: [Route("hlwjg")]
    )
    async with console.client() as client:
        await console.login(client, "wang", OPERATOR_PASSWORD)
        dashboard = (await client.get("/admin/")).text
        assert 'data-destination="hlwjg"' in dashboard and "dead letters" in dashboard

        found = (await client.get("/admin/messages", params={"q": "P1"})).text
        message_id = re.search(r'href="/admin/messages/([0-9a-f-]{36})"', found)[1]  # type: ignore[index]
        assert "1 message(s)" in found
        assert "1 message(s)" in (await client.get("/admin/messages", params={"q": message_id})).text
        bad = await client.get("/admin/messages", params={"received_from": "yesterday"})
        assert "must be a date" in bad.text

        message = (await client.get(f"/admin/messages/{message_id}")).text
        assert "Closed loop" in message and f"delivery {delivery_id}" in message and "refused by" in message
        assert "13800138000" not in message, "the envelope is shown masked"
        assert "食品经营许可" in message, "Chinese shown as Chinese, not as \\u escapes"
        assert f'action="/admin/messages/{message_id}/replay"' in message

        paper = (await client.get("/admin/paper")).text
        assert "S1" in paper and "Record receipt" in paper
        item = re.search(r'action="/admin/paper/(\d+)/confirm"', paper)[1]  # type: ignore[index]
        token = CSRF.search(paper)[1]  # type: ignore[index]
        refused = await client.post(
            f"/admin/paper/{item}/confirm",
            data={"csrf": token, "receiver": "张三", "signed_at": "not a date", "method": "直接送达"},
        )
        assert refused.status_code == 303 and "Receipt not recorded" in (await client.get("/admin/paper")).text
        await client.post(
            f"/admin/paper/{item}/confirm",
            data={"csrf": token, "receiver": "张三", "signed_at": "2026-11-23", "method": "直接送达"},
        )
        served = (await client.get("/admin/paper", params={"state": "paper_delivered"})).text
        assert "S1" in served
        missing = await client.get("/admin/deliveries/999999")
        assert missing.status_code == 404 and "no delivery 999999" in missing.text
