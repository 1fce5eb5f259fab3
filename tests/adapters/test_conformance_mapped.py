"""The mapping-driven adapters pass the conformance kit like any hand-written one.

``specialty`` (the packaged 工程建设 mapping) is checked on its decode side: its native interface is a database,
not HTTP, so the kit's poll error cases do not apply (the table source's failures are tested against the
mock's exchange database in test_mapped_table.py). The 市场监管 licence feed example is checked whole,
including how its poll replies are classified.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from adapters.conformance import ErrorCase, SourceConformance, reply
from adapters.errors import PermanentError, RetryableError
from adapters.mapped import MappedAdapter, load_mapping
from adapters.specialty import SpecialtyAdapter
from mock_platforms.generator import generate_banjian
from mock_platforms.specialty import row_from_banjian

ROOT = Path(__file__).resolve().parents[2]
RESIDENT_ID = "320706199003071237"
MOBILE = "13912345678"


def specialty_samples() -> list[dict[str, Any]]:
    company, person = (row_from_banjian(item) for item in generate_banjian(2, 4))
    company = dict(company, LXDH=MOBILE, SQRLX="10", SQRZJLX="01")
    person = dict(person, SQRLX="20", SQRZJLX="02", SQRZJHM=RESIDENT_ID, SQRMC="张三", FDDBR=None, LXDH=MOBILE)
    return [company, person]


def specialty_adapter(_transport: httpx.AsyncBaseTransport) -> SpecialtyAdapter:
    return SpecialtyAdapter.from_config("gcjs", {"url": "sqlite://"})


class TestSpecialtyConformance(SourceConformance):
    adapter_factory = staticmethod(specialty_adapter)
    native_samples = tuple(specialty_samples())
    standard_error_cases = False  # a database, not an HTTP feed: see test_mapped_table.py


FEED_SPEC = load_mapping(ROOT / "examples" / "mappings" / "scjg_licence_feed.toml")
FEED_PAGE = json.loads((Path(__file__).parent / "data" / "mapped" / "scjg_page1.json").read_text(encoding="utf-8"))


def feed_adapter(transport: httpx.AsyncBaseTransport) -> MappedAdapter:
    return MappedAdapter("scjg", FEED_SPEC, base_url="http://mock/scjg", transport=transport)


def status(code: str, message: str = "错误") -> Any:
    return reply(200, json={"code": code, "message": message, "data": None})


def feed_samples() -> list[dict[str, Any]]:
    company, individual, person = FEED_PAGE["data"]["list"]
    # The kit's corpus makes the 17-zeros-X variants itself; a sample carrying one would look like a 身份证号.
    return [company, dict(individual, certNo="92320706MA4220CH24", regNo=""), person]


class TestLicenceFeedConformance(SourceConformance):
    adapter_factory = staticmethod(feed_adapter)
    native_samples = tuple(feed_samples())
    registration_no_field = "regNo"
    error_cases = (
        ErrorCase("status SYSTEM_BUSY in HTTP 200", status("SYSTEM_BUSY"), RetryableError),
        ErrorCase("another status in HTTP 200", status("AUTH_FAILED", f"手机号 {MOBILE} 未授权"), PermanentError),
        ErrorCase("no status at all", reply(200, json={"data": {"list": []}}), RetryableError),
        ErrorCase("HTTP 502", reply(502, content=b"Bad Gateway"), RetryableError),
        ErrorCase("HTTP 429", reply(429, headers={"Retry-After": "2"}), RetryableError),
        ErrorCase("HTTP 401", reply(401), PermanentError, why="credentials: an operator must act"),
        ErrorCase("unreadable body", reply(200, content=b'{"code": "0", "da'), RetryableError),
        ErrorCase("no records list", reply(200, json={"code": "0", "data": {}}), RetryableError),
        ErrorCase(
            "records but no next cursor",
            reply(200, json={"code": "0", "data": {"list": [FEED_PAGE["data"]["list"][0]]}}),
            RetryableError,
        ),
    )
