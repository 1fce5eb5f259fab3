"""JSON feed sources beyond the example: paging by a record field, pages without ``has_more``, odd replies."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
import respx

from adapters import PermanentError, RetryableError
from adapters.mapped import MappedAdapter, parse_mapping
from adapters.mapped.jsonfeed import MISSING, get_path

MAPPING: dict[str, Any] = {
    "mapping": {"name": "seq-feed", "event_type": "approval.decided"},
    "source": {
        "kind": "json",
        "path": "/feed",
        "records": "$.result.rows",
        "cursor_field": "meta.seq",
        "cursor_param": "after",
        "limit_param": None,
        "status": {"path": "ok", "ok": [True]},
    },
    "fields": {
        "case_no": "no",
        "item.code": {"const": "I1"},
        "item.name": {"const": "许可"},
        "region": {"const": "320700"},
        "applicant.kind": {"const": "legal"},
        "applicant.name": {"const": "某公司"},
        "applicant.id_type": {"const": "uscc"},
        "applicant.id_number": {"const": "91320700MA1X2Y3K05"},
        "decided_at": {"from": "at", "type": "datetime"},
        "result": {"const": "granted"},
    },
}


def row(seq: int | None, no: str = "B") -> dict[str, Any]:
    meta = {} if seq is None else {"seq": seq}
    return {"no": f"{no}{seq}", "at": "2026-11-20 10:00:00", "meta": meta}


def adapter(**source: Any) -> MappedAdapter:
    data = copy.deepcopy(MAPPING)
    data["source"].update(source)
    return MappedAdapter("feed", parse_mapping(data), base_url="http://feed.example/api/")


@respx.mock
async def test_paging_by_a_record_field_without_a_limit_param() -> None:
    route = respx.get("http://feed.example/api/feed").mock(
        return_value=httpx.Response(200, json={"ok": True, "result": {"rows": [row(7), row(8), "junk", row(None)]}})
    )
    feed = adapter()
    try:
        page = await feed.poll("6", 4)
    finally:
        await feed.aclose()
    assert dict(route.calls[0].request.url.params) == {"after": "6"}  # no limit parameter configured
    # the last record that carries the field advances the cursor; a full page may have more
    assert (len(page.records), page.next_cursor, page.has_more) == (4, "8", True)
    assert [r.position for r in page.records] == ["6+0", "6+1", "6+2", "6+3"]


@respx.mock
async def test_an_empty_page_keeps_the_cursor_and_a_short_page_has_no_more() -> None:
    respx.get("http://feed.example/api/feed").mock(
        side_effect=[
            httpx.Response(200, json={"ok": True, "result": {"rows": []}}),
            httpx.Response(200, json={"ok": True, "result": {"rows": [row(9)]}}),
        ]
    )
    feed = adapter()
    try:
        empty = await feed.poll("8", 10)
        short = await feed.poll("8", 10)
    finally:
        await feed.aclose()
    assert (empty.records, empty.next_cursor, empty.has_more) == ([], "8", False)
    assert (short.next_cursor, short.has_more) == ("9", False)


@respx.mock
@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (httpx.Response(200, json={"ok": False}), PermanentError, "feed status False"),
        (httpx.Response(200, json={"result": {"rows": []}}), RetryableError, "no status at ok"),
        (
            httpx.Response(200, json={"ok": True, "result": {"rows": [row(None)]}}),
            RetryableError,
            "records but no next cursor",
        ),
        (
            httpx.Response(200, json={"ok": True, "result": {"rows": {"a": 1}}}),
            RetryableError,
            "lacks a list at $.result.rows",
        ),
        (httpx.Response(404), PermanentError, "feed HTTP 404"),
        (httpx.Response(503, headers={"Retry-After": "7"}), RetryableError, "feed HTTP 503"),
    ],
)
async def test_replies_are_classified(reply: httpx.Response, error: type[Exception], message: str) -> None:
    respx.get("http://feed.example/api/feed").mock(return_value=reply)
    feed = adapter()
    try:
        with pytest.raises(error, match=message.replace("$", r"\$")) as caught:
            await feed.poll(None, 5)
    finally:
        await feed.aclose()
    if reply.status_code == 503:
        assert caught.value.retry_after_s == 7  # type: ignore[attr-defined]


@respx.mock
async def test_a_cursor_object_in_the_reply_is_refused() -> None:
    respx.get("http://feed.example/api/feed").mock(
        return_value=httpx.Response(200, json={"ok": True, "result": {"rows": [{"meta": {"seq": [1]}}]}})
    )
    feed = adapter()
    try:
        with pytest.raises(RetryableError, match="cursor that is not text or a whole number"):
            await feed.poll(None, 5)
    finally:
        await feed.aclose()


def test_get_path() -> None:
    doc = {"data": {"items": [{"a": 1}, {"a": 2}]}}
    assert get_path(doc, "$.data.items.1.a") == 2
    assert get_path(doc, "data.items") == doc["data"]["items"]
    assert get_path(doc, "$") == doc
    assert get_path(doc, "data.nope") is MISSING and get_path(doc, "data.items.5") is MISSING
