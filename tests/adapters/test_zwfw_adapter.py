"""ZwfwAdapter against a faked platform (respx): signing, paging and classification of every failure."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from adapters.base import Adapter, SourceAdapter
from adapters.errors import PermanentError, RetryableError
from adapters.zwfw import ZwfwAdapter

BASE = "http://zwfw.test/zwfw"
CHANGES = f"{BASE}/api/v1/banjian/changes"
PAASID = "paas-320700"
TOKEN = "s3cret-token"


def ok(items: list[Any], next_cursor: str | None = "c2", has_more: bool = False) -> httpx.Response:
    data = {"items": items, "next_cursor": next_cursor, "has_more": has_more}
    return httpx.Response(200, json={"code": "200", "msg": "成功", "data": data})


def platform_error(code: str, msg: str = "错误") -> httpx.Response:
    return httpx.Response(200, json={"code": code, "msg": msg, "data": None})


@pytest.fixture
async def adapter() -> AsyncIterator[ZwfwAdapter]:
    a = ZwfwAdapter("zwfw", base_url=BASE, paasid=PAASID, token=TOKEN)
    yield a
    await a.aclose()


@pytest.fixture
def feed() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def test_is_a_source_adapter() -> None:
    a = ZwfwAdapter.from_config("zwfw", {"base_url": BASE + "/", "paasid": PAASID, "token": TOKEN})
    assert isinstance(a, SourceAdapter) and isinstance(a, Adapter)
    assert a.name == "zwfw" and ZwfwAdapter.version == "0.2.0"
    assert ZwfwAdapter.capabilities.event_types[0] == "approval.decided"
    assert ZwfwAdapter.capabilities.direction == "both", "and the destination of the loop's supervision messages"


@pytest.mark.parametrize(
    ("options", "named"),
    [({"paasid": PAASID, "token": TOKEN}, "base_url"),
     ({"base_url": "zwfw.test", "paasid": PAASID, "token": TOKEN}, "base_url"),
     ({"base_url": BASE, "token": TOKEN}, "paasid"),
     ({"base_url": BASE, "paasid": PAASID, "token": ""}, "token"),
     ({"base_url": BASE, "paasid": PAASID, "token": TOKEN, "timeout_s": 0}, "timeout_s"),
     ({"base_url": BASE, "paasid": PAASID, "token": TOKEN, "timeout_s": "10"}, "timeout_s")],
)
def test_from_config_names_bad_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        ZwfwAdapter.from_config("zwfw", options)


async def test_signature_headers(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    route = feed.get(CHANGES).mock(return_value=ok([]))
    before = int(time.time())
    await adapter.poll(None, 10)
    headers = route.calls.last.request.headers
    ts, nonce = headers["x-tif-timestamp"], headers["x-tif-nonce"]
    assert headers["x-tif-paasid"] == PAASID
    assert before <= int(ts) <= int(time.time())
    assert len(nonce) >= 16 and int(nonce, 16) >= 0
    expected = hashlib.sha256(f"{ts}{TOKEN}{nonce}{ts}".encode()).hexdigest()
    assert headers["x-tif-signature"] == expected


async def test_fresh_nonce_per_request_including_retry(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    route = feed.get(CHANGES).mock(side_effect=[platform_error("4012", "nonce重复"), ok([]), ok([])])
    with pytest.raises(RetryableError):
        await adapter.poll("c1", 10)
    await adapter.poll("c1", 10)
    await adapter.poll("c1", 10)
    nonces = {call.request.headers["x-tif-nonce"] for call in route.calls}
    assert len(nonces) == 3


async def test_page_parsing(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    items = [{"PROJID": "a"}, json.dumps({"PROJID": "b"})]
    route = feed.get(CHANGES).mock(return_value=ok(items, next_cursor="c9", has_more=True))
    page = await adapter.poll("c1", 2)
    assert route.calls.last.request.url.params == httpx.QueryParams({"cursor": "c1", "limit": "2"})
    assert [r.payload for r in page.records] == items
    assert [r.position for r in page.records] == ["c1+0", "c1+1"]
    assert page.next_cursor == "c9" and page.has_more is True


async def test_first_poll_omits_cursor(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    route = feed.get(CHANGES).mock(return_value=ok([{"PROJID": "a"}], next_cursor="c1"))
    page = await adapter.poll(None, 50)
    assert "cursor" not in route.calls.last.request.url.params
    assert page.records[0].position == "start+0" and page.has_more is False


async def test_empty_page_without_cursor_keeps_position(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    feed.get(CHANGES).mock(return_value=ok([], next_cursor=None))
    page = await adapter.poll("c7", 50)
    assert page.records == [] and page.next_cursor == "c7"


async def test_items_without_next_cursor_are_retryable(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    feed.get(CHANGES).mock(return_value=ok([{"PROJID": "a"}], next_cursor=""))
    with pytest.raises(RetryableError, match="no next_cursor"):
        await adapter.poll("c7", 50)


@pytest.mark.parametrize(
    ("code", "error"),
    [("500", RetryableError), ("4011", RetryableError), ("4012", RetryableError),
     ("4010", PermanentError), ("4099", PermanentError), ("9999", PermanentError)],
)
async def test_platform_codes(adapter: ZwfwAdapter, feed: respx.MockRouter, code: str, error: type) -> None:
    feed.get(CHANGES).mock(return_value=platform_error(code, "出错了 13800138000"))
    with pytest.raises(error) as info:
        await adapter.poll("c1", 10)
    assert type(info.value) is error
    assert info.value.code == code and f"zwfw code {code}" in info.value.reason
    assert "13800138000" not in info.value.reason  # platform messages are masked


async def test_numeric_success_code_accepted(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    body = {"code": 200, "msg": "", "data": {"items": [], "next_cursor": "x"}}
    feed.get(CHANGES).mock(return_value=httpx.Response(200, json=body))
    assert (await adapter.poll(None, 1)).next_cursor == "x"


@pytest.mark.parametrize(
    "response",
    [httpx.Response(200, text="<html>gateway error</html>"),
     httpx.Response(200, json=["not", "an", "object"]),
     httpx.Response(200, json={"code": "200", "msg": "ok"}),
     httpx.Response(200, json={"code": "200", "msg": "ok", "data": {"items": "x"}}),
     httpx.Response(200, json={"msg": "no code"})],
    ids=["non-json", "array", "no-data", "items-not-list", "no-code"],
)
async def test_unreadable_replies_are_retryable(
    adapter: ZwfwAdapter, feed: respx.MockRouter, response: httpx.Response
) -> None:
    feed.get(CHANGES).mock(return_value=response)
    with pytest.raises(RetryableError):
        await adapter.poll("c1", 10)


async def test_http_503_is_retryable_with_retry_after(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    feed.get(CHANGES).mock(return_value=httpx.Response(503, headers={"Retry-After": "5"}, text="busy"))
    with pytest.raises(RetryableError) as info:
        await adapter.poll("c1", 10)
    assert info.value.code == "503" and info.value.retry_after_s == 5.0


async def test_http_404_is_permanent(adapter: ZwfwAdapter, feed: respx.MockRouter) -> None:
    feed.get(CHANGES).mock(return_value=httpx.Response(404))
    with pytest.raises(PermanentError, match="base_url"):
        await adapter.poll("c1", 10)


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"),
     ConnectionAbortedError("aborted by an in-process app")],
    ids=["connect", "read-timeout", "dropped", "raw-oserror"],
)
async def test_transport_errors_are_retryable_for_a_read(
    adapter: ZwfwAdapter, feed: respx.MockRouter, exc: Exception
) -> None:
    feed.get(CHANGES).mock(side_effect=exc)
    with pytest.raises(RetryableError) as info:
        await adapter.poll("c1", 10)
    assert type(info.value) is RetryableError


async def test_limit_must_be_positive(adapter: ZwfwAdapter) -> None:
    with pytest.raises(ValueError, match="limit"):
        await adapter.poll(None, 0)


async def test_works_over_an_asgi_transport() -> None:
    """The ``transport`` parameter is how in-process mocks are wired in; check the path it is given."""
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        body = json.dumps({"code": "200", "msg": "", "data": {"items": [], "next_cursor": "n1"}}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    a = ZwfwAdapter("zwfw", base_url=BASE, paasid=PAASID, token=TOKEN, transport=httpx.ASGITransport(app=app))
    try:
        page = await a.poll(None, 5)
    finally:
        await a.aclose()
    assert page.next_cursor == "n1" and seen == ["/zwfw/api/v1/banjian/changes"]
