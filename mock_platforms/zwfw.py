"""Fake 政务服务一体化平台 (integrated government-service platform, ``zwfw``): a signed, paged 办件 feed.

Its quirks are the ones adapters must absorb (DESIGN §3): every reply is HTTP 200 with the real outcome in
the body's ``code``; every request carries a 政务网关 (x-tif) signature with a timestamp window and a
one-time nonce; all 办件 values are strings. It is also the approval side of the closed loop
(``zwfw_linkage``): a linkage inbox that takes what supervision reports (counted in ``records_report``), and a
linkage feed of what the approval bureau sends back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from mock_platforms.control import GenerateRequest
from mock_platforms.faults import FaultState
from mock_platforms.generator import generate_banjian
from mock_platforms.traffic import TrafficLog
from mock_platforms.zwfw_linkage import REQUEST_KINDS, InvalidItem, reaction, requestable, requests_for, validate_inbox

DEFAULT_CREDENTIALS: Mapping[str, str] = {"shenguan": "zwfw-mock-token"}
TIMESTAMP_WINDOW_S = 300
MAX_LIMIT = 500
DEFAULT_LIMIT = 100

SERVER_ERROR: dict[str, Any] = {"code": "500", "msg": "系统繁忙，请稍后再试", "data": None}
BEIJING = timezone(timedelta(hours=8))


@dataclass(slots=True)
class HeldItem:
    """A linkage message taken at the inbox; ``duplicate`` marks a naive second creation of a held fact."""

    msgtype: str
    key: str
    version: int
    receipt_no: str
    item: dict[str, Any]
    request_ids: list[str] = field(default_factory=list)
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "msgType": self.msgtype,
            "key": self.key,
            "dataVersion": self.version,
            "receiptNo": self.receipt_no,
            "requestIds": list(self.request_ids),
            "duplicate": self.duplicate,
            "item": self.item,
        }


def sign(timestamp: str, token: str, nonce: str) -> str:
    """The x-tif signature: lowercase SHA-256 hex of ``timestamp + token + nonce + timestamp``."""
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode()).hexdigest()


def _reply(code: str, msg: str, data: Any = None) -> JSONResponse:
    """zwfw answers everything with HTTP 200; the outcome is in ``code``."""
    return JSONResponse({"code": code, "msg": msg, "data": data})


class ZwfwPlatform:
    """State of one zwfw mock: its feed, the nonces seen in the signature window, faults and traffic."""

    name = "zwfw"

    def __init__(
        self, credentials: Mapping[str, str], clock: Callable[[], float], traffic_limit: int
    ) -> None:
        self.credentials = dict(credentials)
        self.clock = clock
        self.faults = FaultState(server_error_status=200, server_error_body=SERVER_ERROR)
        self.traffic = TrafficLog(traffic_limit)
        self.feed: list[Any] = []
        self.linkage_feed: list[Any] = []
        self._reset_linkage()
        self._next_projid_sequence = 1
        self._nonces: set[tuple[str, str]] = set()
        self._nonce_expiry: deque[tuple[float, tuple[str, str]]] = deque()

    # -- control plane -------------------------------------------------------------------------------------
    def _reset_linkage(self) -> None:
        self.held: dict[tuple[str, str], HeldItem] = {}
        self.held_log: list[HeldItem] = []
        self.receipts: dict[str, HeldItem] = {}
        self.asked: dict[str, set[str]] = {kind: set() for kind in REQUEST_KINDS}
        self.linkage_sequence = 0
        self.rejected = 0
        self.duplicate_creations = 0

    def records_report(self) -> dict[str, Any]:
        """What the linkage inbox holds: one fact per MSGTYPE and record number."""
        return {
            "platform": self.name,
            "accepted": len(self.held),
            "duplicate_creations": self.duplicate_creations,
            "rejected": self.rejected,
            "records": [h.as_dict() for h in self.held_log],
            "feed_size": len(self.feed),
            "linkage_feed_size": len(self.linkage_feed),
        }

    def generate(self, request: GenerateRequest) -> dict[str, int]:
        """办件 (no ``kind``), or linkage requests about them: ``kind`` preapproval, site_inspection or guidance."""
        if request.kind is None:
            return self.generate_banjian(request)
        if request.kind not in REQUEST_KINDS:
            raise HTTPException(400, f"zwfw generates 办件 or kind {', '.join(REQUEST_KINDS)}, not {request.kind!r}")
        asked = self.asked[request.kind]
        cases = requestable(self.feed, asked)[: request.count]
        rng = random.Random(request.seed)
        items = requests_for(request.kind, cases, rng, self._number)
        asked.update(str(c["PROJID"]) for c in cases)
        copies = [dict(rng.choice(items)) for _ in range(round(len(items) * request.duplicate_rate) if items else 0)]
        self.linkage_feed.extend(items + copies)
        return {"generated": len(items) + len(copies), "unique_facts": len(items)}

    def generate_banjian(self, request: GenerateRequest) -> dict[str, int]:
        """Append generated 办件; PROJID sequences continue across calls so each call adds new facts."""
        items = generate_banjian(
            request.count,
            request.seed,
            duplicate_rate=request.duplicate_rate,
            revision_rate=request.revision_rate,
            secret_rate=request.secret_rate,
            first_sequence=self._next_projid_sequence,
        )
        self._next_projid_sequence += request.count
        self.feed.extend(items)
        return {"generated": len(items), "unique_facts": request.count}

    def inject(self, records: list[Any]) -> dict[str, int]:
        self.feed.extend(records)
        return {"injected": len(records)}

    def reset(self) -> None:
        self.feed.clear()
        self.linkage_feed.clear()
        self._reset_linkage()
        self._next_projid_sequence = 1
        self._nonces.clear()
        self._nonce_expiry.clear()

    # -- native API ----------------------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str]) -> JSONResponse | None:
        """Check the x-tif signature headers; return the platform's error reply, or None when valid.

        Order: unknown paasid (4010), timestamp outside ±300 s (4011), wrong signature (4010), nonce already
        used inside the window (4012). A nonce is remembered only once a request passes every check, so a
        request refused for another reason can be corrected and resent with the same nonce.
        """
        paasid = headers.get("x-tif-paasid", "")
        timestamp = headers.get("x-tif-timestamp", "")
        nonce = headers.get("x-tif-nonce", "")
        signature = headers.get("x-tif-signature", "")
        token = self.credentials.get(paasid)
        if token is None or not nonce:
            return _reply("4010", "签名校验失败")
        now = self.clock()
        if not timestamp.isdigit() or abs(int(timestamp) - now) > TIMESTAMP_WINDOW_S:
            return _reply("4011", "时间戳已过期")
        if not hmac.compare_digest(signature.encode(), sign(timestamp, token, nonce).encode()):
            return _reply("4010", "签名校验失败")
        while self._nonce_expiry and self._nonce_expiry[0][0] < now:
            self._nonces.discard(self._nonce_expiry.popleft()[1])
        key = (paasid, nonce)
        if key in self._nonces:
            return _reply("4012", "nonce 重复")
        self._nonces.add(key)
        # A nonce must stay remembered for as long as its timestamp would still be accepted.
        self._nonce_expiry.append((int(timestamp) + TIMESTAMP_WINDOW_S, key))
        return None

    def take(self, body: Any) -> JSONResponse:
        """One linkage inbox request: replay, update (higher DATAVERSION), new fact — or a naive second record."""
        if isinstance(body, dict) and isinstance(body.get("requestId"), str):
            earlier = self.receipts.get(body["requestId"])
            if earlier is not None:
                return _reply("200", "成功", {"receiptNo": earlier.receipt_no, "replayed": True})
        try:
            request_id, msgtype, key, version, item = validate_inbox(body)
        except InvalidItem as invalid:
            self.rejected += 1
            return _reply("4001", f"参数错误：{invalid.field} {invalid.message}")
        held = self.held.get((msgtype, key))
        if held is not None and version > held.version:
            held.version, held.item = version, item
        else:
            if held is not None:
                self.duplicate_creations += 1
            held = HeldItem(msgtype, key, version, f"SJ{self._number():012d}", item, duplicate=held is not None)
            self.held.setdefault((msgtype, key), held)
            self.held_log.append(held)
            now = datetime.fromtimestamp(self.clock(), UTC).astimezone(BEIJING)
            answer = reaction(msgtype, item, now, self._number)
            if answer is not None:
                self.linkage_feed.append(answer)
        held.request_ids.append(request_id)
        self.receipts[request_id] = held
        return _reply("200", "成功", {"receiptNo": held.receipt_no, "replayed": False})

    def receipt(self, request_id: str) -> JSONResponse:
        """Status query of the inbox by requestId."""
        held = self.receipts.get(request_id)
        if held is None:
            return _reply("4004", f"未找到 requestId={request_id} 的记录")
        return _reply("200", "成功", {"receiptNo": held.receipt_no, "msgType": held.msgtype, "key": held.key})

    def _number(self) -> int:
        self.linkage_sequence += 1
        return self.linkage_sequence

    def changes(self, cursor: str | None, limit: str | None, *, feed: list[Any] | None = None) -> JSONResponse:
        """One page of a change feed (办件 by default) after ``cursor`` (the sequence number of the last item)."""
        feed = self.feed if feed is None else feed
        if cursor in (None, ""):
            position = 0
        elif cursor.isdigit():
            position = int(cursor)
        else:
            return _reply("4001", "参数错误：cursor 无效")
        if limit in (None, ""):
            size = DEFAULT_LIMIT
        elif limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT:
            size = int(limit)
        else:
            return _reply("4001", f"参数错误：limit 取值范围 1-{MAX_LIMIT}")
        items = feed[position : position + size]
        end = position + len(items)
        data = {
            "items": items,
            "next_cursor": str(end) if items else (cursor or "0"),
            "has_more": end < len(feed),
        }
        return _reply("200", "成功", data)


def native_router(platform: ZwfwPlatform) -> APIRouter:
    """The platform's own API, mounted under ``/zwfw``."""
    router = APIRouter(tags=["zwfw"])

    @router.get("/api/v1/banjian/changes")
    async def changes(request: Request) -> JSONResponse:
        """Cursor-paged 办件 change feed; query ``cursor`` (opaque, optional) and ``limit`` (1-500, 100)."""
        refusal = platform.verify(request.headers)
        if refusal is not None:
            return refusal
        params = request.query_params
        return platform.changes(params.get("cursor"), params.get("limit"))

    @router.get("/api/v1/linkage/changes")
    async def linkage_changes(request: Request) -> JSONResponse:
        """Cursor-paged feed of the approval bureau's linkage messages (feedback, requests, guidance)."""
        refusal = platform.verify(request.headers)
        if refusal is not None:
            return refusal
        params = request.query_params
        return platform.changes(params.get("cursor"), params.get("limit"), feed=platform.linkage_feed)

    @router.post("/api/v1/linkage/inbox")
    async def inbox(request: Request) -> JSONResponse:
        """Take one linkage message ``{"requestId", "item"}`` from the supervision side."""
        refusal = platform.verify(request.headers)
        if refusal is not None:
            return refusal
        try:
            body = json.loads(await request.body())
        except ValueError:
            platform.rejected += 1
            return _reply("4001", "参数错误：请求体不是合法的 JSON")
        return platform.take(body)

    @router.get("/api/v1/linkage/inbox/{request_id}")
    async def inbox_receipt(request_id: str, request: Request) -> JSONResponse:
        """Whether the inbox took ``request_id`` (code 4004 when it did not)."""
        refusal = platform.verify(request.headers)
        return refusal if refusal is not None else platform.receipt(request_id)

    return router
