"""``GET /{platform}/_mock/records?limit=N``: whole counts, a capped list — what a large benchmark reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

RECORDS = "/hlwjg/api/v1/approval-records"


async def test_limit_caps_the_list_and_keeps_the_counts(
    client: httpx.AsyncClient,
    hlwjg_auth: Callable[[], Awaitable[dict[str, str]]],
    make_approval: Callable[..., dict[str, Any]],
) -> None:
    auth = await hlwjg_auth()
    for i in range(3):
        reply = await client.post(RECORDS, json=make_approval(f"req-{i}", f"32070026112100001234{i}"), headers=auth)
        assert reply.status_code == 200, reply.text

    whole = (await client.get("/hlwjg/_mock/records")).json()
    counts_only = (await client.get("/hlwjg/_mock/records", params={"limit": 0})).json()
    first_two = (await client.get("/hlwjg/_mock/records", params={"limit": 2})).json()

    assert whole["accepted"] == counts_only["accepted"] == first_two["accepted"] == 3
    assert len(whole["records"]) == 3 and counts_only["records"] == []
    assert first_two["records"] == whole["records"][:2]
    assert (await client.get("/hlwjg/_mock/records", params={"limit": -1})).status_code == 422
