"""The operators' console in a real browser: headless Debian chromium driven by Playwright, against a real
``shenguan serve`` and the mock platforms (separate processes, nothing shared in memory).

互联网+监管 is down and the destination's retry budget is one attempt, so the approval's delivery goes
``dead``. The operator logs in, finds it on the dead-letters page, the platform is repaired, the operator
clicks Retry — and the delivery page shows it delivered, while the platform holds exactly one record.

Chromium comes from Debian (``apt-get install chromium``), never from ``playwright install``. Without
/usr/bin/chromium the test skips locally and fails under CI=true, where .ci/run installs it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import Gateway, Mocks, free_port, relay_config, wait_for
from test_malformed_feed import variant

CHROMIUM = Path(os.environ.get("SHENGUAN_CHROMIUM", "/usr/bin/chromium"))
PROJID = "320700261121000000777"
PASSWORD = "console-test-password"

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def write_config(path: Path, mocks: Mocks, port: int) -> None:
    from gateway.admin.auth import hash_password

    path.write_text(
        relay_config(
            mocks,
            path.parent / "g.db",
            gateway={"listen": f"127.0.0.1:{port}", "sqlite_synchronous": "NORMAL"},
            admin={"users": {"wang": {"role": "operator", "password_hash": hash_password(PASSWORD)}}},
            hlwjg={"timeout_s": 5, "max_attempts": 1},
        ),
        encoding="utf-8",
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Mocks, Gateway, str]]:
    mocks = Mocks(tmp_path)
    port = free_port()
    config = tmp_path / "shenguan.toml"
    write_config(config, mocks, port)
    gateway = Gateway(config, tmp_path)
    try:
        mocks.post("/hlwjg/_mock/faults", {"down": True})
        mocks.post("/zwfw/_mock/inject", {"records": [variant(PROJID)]})
        gateway.start()
        yield mocks, gateway, f"http://127.0.0.1:{port}"
    finally:
        if gateway.alive():
            gateway.terminate()
        mocks.close()


def dead_count(base: str) -> int:
    try:
        response = httpx.get(f"{base}/admin/api/v1/overview", auth=("wang", PASSWORD), timeout=5)
    except httpx.TransportError:
        return 0
    return response.json()["deliveries"]["dead"] if response.status_code == 200 else 0


def test_operator_retries_a_dead_delivery_and_sees_it_delivered(
    running: tuple[Mocks, Gateway, str], tmp_path: Path
) -> None:
    mocks, gateway, base = running
    try:
        wait_for(lambda: dead_count(base) == 1, 60, "the delivery to go dead while 互联网+监管 is down")
    except AssertionError:
        raise AssertionError(gateway.logs()) from None
    expect = sync_api.expect

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(locale="zh-CN")
            page.goto(f"{base}/admin/dead")
            expect(page).to_have_url(re.compile(r"/admin/login\?next="))  # not logged in: sent to the login form
            page.get_by_label("User").fill("wang")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            expect(page.get_by_role("heading", name=re.compile("Dead letters"))).to_be_visible()
            row = page.locator("tr[data-delivery-id]", has_text=PROJID)
            expect(row).to_have_count(1)
            expect(row.locator("[data-state]")).to_have_text("dead")
            expect(row).to_contain_text("retry budget of 1 attempts spent")

            mocks.post("/hlwjg/_mock/faults", {"down": False})  # the platform is repaired
            row.get_by_role("button", name="Retry").click()
            expect(page.get_by_role("status")).to_contain_text("queued for retry")
            expect(page.locator("tr[data-delivery-id]", has_text=PROJID)).to_have_count(0)

            page.get_by_role("status").get_by_role("link", name="Open").click()
            state = page.locator("#delivery-state [data-state]")

            def shows_delivered() -> bool:
                page.reload()  # no JavaScript on the console: the operator reloads
                return state.inner_text() == "delivered"

            wait_for(shows_delivered, 30, "the delivery page to say delivered", interval=0.3)
            expect(page.locator("table").last).to_contain_text("dead")  # attempt 1 stays on record
            page.screenshot(path=str(tmp_path / "delivered.png"), full_page=True)
        finally:
            browser.close()

    held = mocks.records("hlwjg")
    assert held["accepted"] == 1 and held["duplicate_creations"] == 0
    assert [r["approvalNo"] for r in held["records"]] == [PROJID]
    status = gateway.status()["deliveries"]
    assert status["delivered"] == 1 and status["dead"] == 0
    audit = subprocess.run(
        [*__import__("procs").SHENGUAN, "audit", "verify", "--config", str(gateway.config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
