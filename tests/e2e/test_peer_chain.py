"""Two gateways in a chain, city → province → 互联网+监管, under faults and a SIGKILL of each: every fact once.

Real processes, run from the example pair (examples/city.toml, examples/province.toml) with ports, databases
and the retry pace overridden from the environment, the way an operator would. The 政务服务一体化平台 feed
holds the unique approvals plus 10 % exact duplicates and 5 % re-reports; 互联网+监管 answers 20 % of requests
with server errors, drops 10 % of responses after committing, and expires tokens every 3 s.

The province is SIGKILLed while the city is pushing to it: pushes in flight lose their connection (some
after the province committed them — dropped responses for real), later ones find nobody listening. The city
is SIGKILLed later, with pushes of its own in flight. Each is restarted. At the end 互联网+监管 must hold each
unique fact exactly once at its latest revision, both stores must have every delivery terminal (delivered),
and what the province holds must be what the city sent: the same message ids, the origin's ``source``, and
the city in ``via``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import httpx
from procs import SHENGUAN, Gateway, Mocks, free_port, wait_for

UNIQUE = 600
EXAMPLES = Path(__file__).parents[2] / "examples"
ADMIN_KEY = "sg_chain_" + secrets.token_urlsafe(16)
UNSETTLED = ("pending", "in_flight", "retry_wait")


class ExampleGateway(Gateway):
    """``shenguan serve`` of an example config, with environment overrides, its own directory and HTTP port."""

    def __init__(self, name: str, root: Path, overrides: dict[str, str]) -> None:
        directory = root / name
        directory.mkdir()
        super().__init__(EXAMPLES / f"{name}.toml", directory)
        self.port = free_port()
        self.env = (
            os.environ
            | {
                "PYTHONUNBUFFERED": "1",
                "SHENGUAN_DB": str(directory / f"{name}.db"),
                "SHENGUAN__GATEWAY__LISTEN": f"127.0.0.1:{self.port}",
                "SHENGUAN__GATEWAY__SHUTDOWN_GRACE_S": "5",
                "SHENGUAN__GATEWAY__LOG_LEVEL": "info",
                "SHENGUAN__ADMIN__USERS__CHAIN__ROLE": "viewer",
                "SHENGUAN__ADMIN__USERS__CHAIN__API_KEY_HASH": "sha256$"
                + hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
            }
            | {f"SHENGUAN__{key}": value for key, value in overrides.items()}
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def start(self) -> None:
        self.starts += 1
        with open(self.log_dir / f"serve-{self.starts}.log", "wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [*SHENGUAN, "serve", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.log_dir,
            )

    def status(self) -> dict[str, Any]:
        """``shenguan status --json`` (reads the store; works whether or not the gateway runs)."""
        out = subprocess.run(
            [*SHENGUAN, "status", "--config", str(self.config), "--json"],
            capture_output=True,
            check=True,
            timeout=60,
            env=self.env,
            cwd=self.log_dir,
        )
        return json.loads(out.stdout)

    def live_status(self) -> dict[str, Any] | None:
        """``GET /status`` of the running gateway (cheap enough to poll), ``None`` while it is not answering."""
        try:
            response = self.http.get("/status")
        except httpx.TransportError:
            return None
        return response.json() if response.status_code == 200 else None

    def messages(self) -> list[dict[str, Any]]:
        """Every stored message, through the admin API (``/admin/api/v1/messages``, paged)."""
        rows: list[dict[str, Any]] = []
        while True:
            page = self.http.get(
                "/admin/api/v1/messages", params={"limit": 500, "offset": len(rows)}, headers={"x-api-key": ADMIN_KEY}
            )
            assert page.status_code == 200, page.text
            body = page.json()
            rows.extend(body["items"])
            if not body["items"] or len(rows) >= body["total"]:
                return rows

    def message(self, message_id: str) -> dict[str, Any]:
        response = self.http.get(f"/admin/api/v1/messages/{message_id}", headers={"x-api-key": ADMIN_KEY})
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        if self.alive():
            self.kill()
        self.http.close()


def unsettled(status: dict[str, Any] | None) -> int | None:
    return None if status is None else sum(status["deliveries"][state] for state in UNSETTLED)


def test_city_to_province_to_hlwjg_under_faults_and_a_sigkill_of_each(tmp_path: Path) -> None:
    mocks = Mocks(tmp_path)
    retry_fast = {
        "BACKOFF_INITIAL_S": "0.05",
        "BACKOFF_MAX_S": "0.5",
        "BACKOFF_JITTER_S": "0.05",
        "MAX_ATTEMPTS": "200",
        "BREAKER_FAILURES": "500",
        "BREAKER_COOLDOWN_S": "0.5",
        "TIMEOUT_S": "5",
    }
    province = ExampleGateway(
        "province",
        tmp_path,
        {"DESTINATIONS__HLWJG__BASE_URL": f"{mocks.url}/hlwjg", "DESTINATIONS__HLWJG__CONCURRENCY": "16"}
        | {f"DESTINATIONS__HLWJG__{k}": v for k, v in retry_fast.items()},
    )
    city = ExampleGateway(
        "city",
        tmp_path,
        {
            "SOURCES__ZWFW__BASE_URL": f"{mocks.url}/zwfw",
            "SOURCES__ZWFW__POLL_INTERVAL_S": "0.1",
            "SOURCES__ZWFW__PAGE_SIZE": "20",  # the city keeps pushing for a few seconds: room for the kills
            "DESTINATIONS__PROVINCE__BASE_URL": f"http://127.0.0.1:{province.port}",
            "DESTINATIONS__PROVINCE__BATCH_SIZE": "20",
            "DESTINATIONS__PROVINCE__BATCH_MAX_AGE_S": "0.1",
        }
        | {f"DESTINATIONS__PROVINCE__{k}": v for k, v in retry_fast.items()},
    )
    try:
        generated = mocks.post(
            "/zwfw/_mock/generate",
            {"count": UNIQUE, "seed": 29, "duplicate_rate": 0.1, "revision_rate": 0.05, "secret_rate": 0.0},
        )
        assert generated["unique_facts"] == UNIQUE and generated["generated"] >= UNIQUE * 1.1
        mocks.post("/hlwjg/_mock/faults", {"error_rate": 0.2, "drop_response_rate": 0.1, "token_ttl_s": 3, "seed": 5})

        province.start()
        city.start()

        def province_holds(fraction: float) -> bool:
            assert city.alive(), city.logs()
            assert province.alive(), province.logs()
            status = province.live_status()
            return status is not None and status["messages"] >= UNIQUE * fraction

        # 1. SIGKILL the province in the middle of the city's pushes, and keep it down for a moment.
        wait_for(lambda: province_holds(0.3), 60, f"30 % at the province\n{city.logs()}\n{province.logs()}", 0.02)
        province.kill()
        city_at_kill = city.live_status()
        assert city_at_kill is not None and unsettled(city_at_kill), f"the city was still pushing: {city_at_kill}"
        wait_for(lambda: (city.live_status() or {}).get("deliveries", {}).get("retry_wait"), 30, "city retrying")
        province.start()

        # 2. SIGKILL the city with pushes of its own in flight; restart it.
        wait_for(lambda: province_holds(0.7), 60, f"70 % at the province\n{city.logs()}\n{province.logs()}", 0.02)
        city.kill()
        city.start()

        def settled() -> bool:
            assert city.alive(), city.logs()
            assert province.alive(), province.logs()
            c, p = city.live_status(), province.live_status()
            return (
                unsettled(c) == 0
                and unsettled(p) == 0
                and c is not None
                and c["deliveries"]["delivered"] == c["messages"]
                and mocks.records("hlwjg")["accepted"] >= UNIQUE
            )

        wait_for(settled, 120, f"every delivery to settle\n{city.logs()}\n{province.logs()}", 0.25)

        sent, held = city.messages(), province.messages()
        sample = province.message(held[0]["id"])
        assert city.terminate() == 0, city.logs()
        assert province.terminate() == 0, province.logs()

        received = mocks.records("hlwjg")
        latest: dict[str, int] = {}
        for item in mocks.zwfw_feed():
            latest[item["PROJID"]] = max(latest.get(item["PROJID"], 0), int(item["DATAVERSION"]))
        c, p = city.status(), province.status()
    finally:
        city.close()
        province.close()
        mocks.close()

    # 互联网+监管: each unique fact once, at its latest revision.
    assert received["duplicate_creations"] == 0
    assert received["accepted"] == UNIQUE
    assert {r["approvalNo"]: r["dataVersion"] for r in received["records"]} == latest

    # Both stores: nothing rejected, every delivery terminal and delivered.
    for name, status in (("city", c), ("province", p)):
        d = status["deliveries"]
        assert status["rejected"] == 0, (name, status)
        assert d["pending"] == d["in_flight"] == d["retry_wait"] == d["dead"] == d["uncertain"] == 0, (name, status)
        assert d["delivered"] == status["messages"], (name, status)
    assert c["messages"] + c["duplicates_suppressed"] == generated["generated"], "the city read each item once"

    # The province holds what the city sent, under the same ids: nothing re-numbered, nothing invented.
    sent_ids = {m["id"] for m in sent}
    assert len(sent) == c["messages"] and len(held) == p["messages"]
    assert {m["id"] for m in held} <= sent_ids
    assert {m["business_key"] for m in held} == set(latest)
    assert len({(m["type"], m["business_key"], m["revision"]) for m in held}) == len(held), "each version once"
    assert {m["source"] for m in held} == {"zwfw"}, "the origin's source survives the hop"
    assert sample["envelope"]["via"] == ["city-320700"]
    assert city.starts == province.starts == 2
