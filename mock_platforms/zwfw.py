"""Fake 政务服务一体化平台 (integrated government-service platform, ``zwfw``): a signed, paged 办件 feed.

Its quirks are the ones adapters must absorb (DESIGN §3): every reply is HTTP 200 with the real outcome in
the body's ``code``; every request carries a 政务网关 (x-tif) signature with a timestamp window and a
one-time nonce; all 办件 values are strings. Later it will also take supervision results and feedback as a
destination — ``records_report`` already answers for that side, with nothing held yet.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mock_platforms.control import GenerateRequest
from mock_platforms.faults import FaultState
from mock_platforms.generator import generate_banjian
from mock_platforms.traffic import TrafficLog

DEFAULT_CREDENTIALS: Mapping[str, str] = {"shenguan": "zwfw-mock-token"}
TIMESTAMP_WINDOW_S = 300
MAX_LIMIT = 500
DEFAULT_LIMIT = 100

SERVER_ERROR: dict[str, Any] = {"code": "500", "msg": "系统繁忙，请稍后再试", "data": None}


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
        self._next_projid_sequence = 1
        self._nonces: set[tuple[str, str]] = set()
        self._nonce_expiry: deque[tuple[float, tuple[str, str]]] = deque()

    # -- control plane -------------------------------------------------------------------------------------
    def records_report(self) -> dict[str, Any]:
        """zwfw receives nothing yet (results/feedback intake comes later), so it holds no records."""
        return {
            "platform": self.name,
            "accepted": 0,
            "duplicate_creations": 0,
            "rejected": 0,
            "records": [],
            "feed_size": len(self.feed),
        }

    def generate(self, request: GenerateRequest) -> dict[str, int]:
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

    def changes(self, cursor: str | None, limit: str | None) -> JSONResponse:
        """One page of the change feed after ``cursor`` (the sequence number of the last item served)."""
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
        items = self.feed[position : position + size]
        end = position + len(items)
        data = {
            "items": items,
            "next_cursor": str(end) if items else (cursor or "0"),
            "has_more": end < len(self.feed),
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

    return router
