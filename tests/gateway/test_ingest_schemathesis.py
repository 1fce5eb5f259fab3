"""Schemathesis against POST /ingest/{source} with valid credentials, so generated bodies get past
authentication and reach parsing, decoding and the store: no 5xx, and every answer matches the
published status codes and schemas (the whole-app run in test_openapi_schemathesis.py only sees 404s here,
since its gateway has no push source)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from adapters.registry import load
from gateway.config import Config
from gateway.http import create_app
from gateway.relay import Relay
from gateway.runtime import Gateway
from gateway.store.sqlite import SQLiteStore

KEY = "schemathesis-push-key"
EXAMPLES = int(os.environ.get("SHENGUAN_SCHEMATHESIS_EXAMPLES", "40"))


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[schemathesis.BaseSchema, SQLiteStore]]:
    zwfw = {"adapter": "zwfw", "base_url": "http://127.0.0.1:9/zwfw", "paasid": "p", "token": "t"}
    config = Config.model_validate(
        {
            "gateway": {"db": str(tmp_path / "g.db"), "ingest_max_bytes": 65536},
            "sources": {
                "zp": zwfw
                | {
                    "mode": "push",
                    "ingest": {"auth": "api_key", "api_keys": ["sha256$" + hashlib.sha256(KEY.encode()).hexdigest()]},
                }
            },
            "destinations": {"hlwjg": {"adapter": "hlwjg", "base_url": "http://127.0.0.1:9/hlwjg"}},
            "routes": [{"type": "approval.decided", "destinations": ["hlwjg"]}],
        }
    )
    store = SQLiteStore(config.gateway.db, synchronous="NORMAL")
    asyncio.run(store.open())
    gateway = Gateway(config, store=store)
    # What start() sets up for ingest, without running pollers or relay workers (schemathesis drives the
    # app from its own event loop): the source's adapter and a relay to wake.
    gateway.sources["zp"] = load("zwfw").from_config("zp", config.sources["zp"].adapter_options())
    gateway.relay = Relay(store, {}, owner="schemathesis")
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", create_app(gateway)), store
    finally:
        asyncio.run(store.close())


def test_ingest_keeps_its_published_contract_past_authentication(
    published: tuple[schemathesis.BaseSchema, SQLiteStore],
) -> None:
    schema, store = published
    operation = schema["/ingest/{source}"]["POST"]
    statuses: list[int] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        case.path_parameters = {"source": "zp"}
        # positive_data_acceptance is left out: the published body schema is "a JSON object (or array of
        # them)", because what a native record must hold is the source adapter's business, not the
        # route's; an object the adapter cannot decode is answered 422 by contract (documented) and kept.
        response = case.call_and_validate(headers={"X-API-Key": KEY}, excluded_checks=[positive_data_acceptance])
        statuses.append(response.status_code)

    check()
    assert set(statuses) & {400, 415, 422}, f"generated bodies reached parsing and decoding: {sorted(set(statuses))}"
    assert 401 not in statuses, "the key was accepted"
    stored = asyncio.run(store.status())
    refused_but_kept = sum(1 for s in statuses if s in (400, 415, 422))
    assert int(stored["rejected"]) >= refused_but_kept, "every refused body was kept as rejected"  # type: ignore[call-overload]
