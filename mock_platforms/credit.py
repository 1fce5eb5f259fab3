"""Fake 公共信用信息平台 (public credit information platform, ``credit``): batch upload of 双公示 records.

What a relay has to live with here (DESIGN §3):

- **Batches with a verdict per record.** ``POST /api/v1/batches`` takes up to ``MAX_BATCH`` records and answers
  HTTP 200 with ``results[i] = {"index", "recordId", "key", "status": "accepted"|"rejected", "reason"}``.
  Partial success is normal: one bad 统一社会信用代码 fails its own record, never the other 499.
- **Idempotency per record.** Every record carries a ``recordId``. A ``recordId`` already judged is answered
  with its first verdict and ``"replayed": true`` — whatever batch it comes in — so resending the same batch
  id, or the same records in a differently composed batch, creates nothing. ``batchId`` is remembered too
  (``GET /api/v1/batches/{batchId}``), and reusing one for different records is refused (409).
- **No protection beyond that.** A *new* ``recordId`` for a record the platform already holds (same
  行政许可 决定文书号 and 相对人, same 行政处罚 决定书文号) is an update when its ``version`` is higher, and
  otherwise a second record: counted in ``duplicate_creations``. A correct relay keeps it 0.
- **A status query** (``POST /api/v1/records/query``) says for each ``recordId`` whether it was accepted,
  rejected (with the reason) or never seen — how a client settles a batch whose reply it lost without
  sending anything again.
- **App-key tokens that expire** (``token_ttl_s`` fault): ``POST /api/v1/auth/token`` with ``appKey`` and
  ``appSecret`` gives a token for the ``X-Credit-Token`` header; an expired one is refused with 401.

The field checks are in ``credit_fields``; faults (``error_rate`` → whole-batch 500 before anything is applied,
``drop_response_rate`` → applied then the connection dropped, ``malformed_rate`` → a truncated 200) come from
the shared middleware.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from mock_platforms.control import GenerateRequest
from mock_platforms.credit_fields import InvalidRecord, validate_record
from mock_platforms.faults import FaultState
from mock_platforms.traffic import TrafficLog

__all__ = ["DEFAULT_APPS", "MAX_BATCH", "CreditPlatform", "native_router"]

DEFAULT_APPS: Mapping[str, str] = {"shenguan": "credit-mock-secret"}
SERVER_ERROR: dict[str, Any] = {"code": "SYSTEM_ERROR", "message": "系统繁忙，请稍后重试"}
MAX_BATCH = 500
MAX_ID_LENGTH = 64


class BadRequest(ValueError):
    """The upload as a whole cannot be read (no record was looked at)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(slots=True)
class HeldRecord:
    """One record the platform publishes; ``duplicate`` marks a naive second creation of a held one."""

    kind: str
    key: str
    version: int
    data: dict[str, str]
    record_ids: list[str] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "version": self.version,
            "recordIds": list(self.record_ids),
            "batchIds": list(self.batch_ids),
            "duplicate": self.duplicate,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the platform decided for one ``recordId``; replays and status queries answer with it."""

    record_id: str
    batch_id: str
    status: str  # accepted | rejected
    key: str | None = None
    kind: str | None = None
    reason: str | None = None

    def as_result(self, index: int, *, replayed: bool) -> dict[str, Any]:
        return {
            "index": index,
            "recordId": self.record_id,
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "replayed": replayed,
        }


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise BadRequest("INVALID_REQUEST", f"{what} 须为 1-{MAX_ID_LENGTH} 个字符的字符串")
    return value


class CreditPlatform:
    """State of one credit mock: tokens, held records, verdicts by recordId, batches, counters."""

    name = "credit"

    def __init__(self, apps: Mapping[str, str], clock: Callable[[], float], traffic_limit: int) -> None:
        self.apps = dict(apps)
        self.clock = clock
        self.faults = FaultState(server_error_status=500, server_error_body=SERVER_ERROR)
        self.traffic = TrafficLog(traffic_limit)
        self.tokens: dict[str, float] = {}
        self.reset()

    # -- control plane -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget records, verdicts, batches and counters; issued tokens survive (credentials, not data)."""
        self.held: list[HeldRecord] = []
        self.by_key: dict[str, HeldRecord] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.batches: dict[str, list[str]] = {}
        self.submissions: Counter[str] = Counter()
        self.duplicate_creations = 0
        self.replays = 0

    def records_report(self) -> dict[str, Any]:
        """DESIGN §4 counts, plus the rejections with reasons and how often each recordId was submitted.

        ``submissions`` counts every time a record reached the platform's judgement (first time and replays);
        a relay that settles lost replies by status query keeps it at 1 for every record.
        """
        rejections = [v for v in self.verdicts.values() if v.status == "rejected"]
        return {
            "platform": self.name,
            "accepted": len(self.by_key),
            "duplicate_creations": self.duplicate_creations,
            "rejected": len(rejections),
            "replays": self.replays,
            "batches": len(self.batches),
            "records": [
                h.as_dict() | {"submissions": sum(self.submissions[r] for r in h.record_ids)} for h in self.held
            ],
            "rejections": [
                {
                    "recordId": v.record_id,
                    "kind": v.kind,
                    "key": v.key,
                    "reason": v.reason,
                    "batchId": v.batch_id,
                    "submissions": self.submissions[v.record_id],
                }
                for v in rejections
            ],
        }

    def generate(self, request: GenerateRequest) -> dict[str, int]:
        raise HTTPException(400, "credit has no feed to generate: it only receives batches")

    def inject(self, records: list[Any]) -> dict[str, int]:
        raise HTTPException(400, "credit has no feed to inject into: it only receives batches")

    # -- auth ----------------------------------------------------------------------------------------------
    def issue_token(self, body: Any) -> JSONResponse:
        key = body.get("appKey") if isinstance(body, dict) else None
        secret = body.get("appSecret") if isinstance(body, dict) else None
        expected = self.apps.get(key) if isinstance(key, str) else None
        if expected is None or not isinstance(secret, str) or not secrets.compare_digest(expected, secret):
            return _error(401, "AUTH_FAILED", "appKey 或 appSecret 错误")
        ttl = self.faults.settings.token_ttl_s
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + ttl
        return JSONResponse({"code": "0", "data": {"token": token, "expiresIn": int(ttl)}})

    def authenticate(self, token: str | None) -> JSONResponse | None:
        """None when the ``X-Credit-Token`` is valid, else the 401 reply (unknown vs. expired told apart)."""
        expires_at = self.tokens.get(token or "")
        if expires_at is None:
            return _error(401, "TOKEN_INVALID", "令牌无效")
        if self.clock() >= expires_at:
            return _error(401, "TOKEN_EXPIRED", "令牌已过期")
        return None

    # -- native API ----------------------------------------------------------------------------------------
    def submit_batch(self, body: Any) -> JSONResponse:
        """Judge each record of one upload; the whole upload is refused only when it cannot be read."""
        try:
            batch_id, entries = self._read_batch(body)
        except BadRequest as bad:
            return _error(bad.status, bad.code, bad.message)
        results = [self._judge(batch_id, index, entry) for index, entry in enumerate(entries)]
        self.batches.setdefault(batch_id, [r["recordId"] for r in results])
        accepted = sum(r["status"] == "accepted" for r in results)
        return JSONResponse(
            {
                "code": "0",
                "message": "ok",
                "batchId": batch_id,
                "accepted": accepted,
                "rejected": len(results) - accepted,
                "results": results,
            }
        )

    def query_records(self, body: Any) -> JSONResponse:
        """Status of up to ``MAX_BATCH`` recordIds: ``accepted``/``rejected`` (with reason) or ``unknown``."""
        ids = body.get("recordIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_BATCH:
            return _error(400, "INVALID_REQUEST", f"recordIds 须为 1-{MAX_BATCH} 个 recordId 的数组")
        try:
            wanted = [_id(i, "recordId") for i in ids]
        except BadRequest as bad:
            return _error(bad.status, bad.code, bad.message)
        return JSONResponse({"code": "0", "results": [self._status(i) for i in wanted]})

    def batch_status(self, batch_id: str) -> JSONResponse:
        record_ids = self.batches.get(batch_id)
        if record_ids is None:
            return _error(404, "NOT_FOUND", "未找到该批次")
        return JSONResponse({"code": "0", "batchId": batch_id, "results": [self._status(i) for i in record_ids]})

    # -- helpers -------------------------------------------------------------------------------------------
    def _read_batch(self, body: Any) -> tuple[str, list[Any]]:
        if not isinstance(body, dict):
            raise BadRequest("INVALID_REQUEST", "请求体须为 JSON 对象")
        batch_id = _id(body.get("batchId"), "batchId")
        entries = body.get("records")
        if not isinstance(entries, list) or not entries:
            raise BadRequest("INVALID_REQUEST", "records 须为非空数组")
        if len(entries) > MAX_BATCH:
            raise BadRequest("BATCH_TOO_LARGE", f"每批最多 {MAX_BATCH} 条记录", status=413)
        record_ids = [e.get("recordId") if isinstance(e, dict) else None for e in entries]
        for index, record_id in enumerate(record_ids):
            _id(record_id, f"records[{index}].recordId")
        if len(set(record_ids)) != len(record_ids):
            raise BadRequest("INVALID_REQUEST", "同一批次内 recordId 重复")
        earlier = self.batches.get(batch_id)
        if earlier is not None and earlier != record_ids:
            raise BadRequest("BATCH_CONFLICT", "batchId 已用于另一组记录", status=409)
        return batch_id, entries

    def _judge(self, batch_id: str, index: int, entry: dict[str, Any]) -> dict[str, Any]:
        record_id: str = entry["recordId"]
        self.submissions[record_id] += 1
        earlier = self.verdicts.get(record_id)
        if earlier is not None:
            self.replays += 1
            return earlier.as_result(index, replayed=True)
        try:
            record = validate_record(entry)
        except InvalidRecord as invalid:
            kind = entry.get("kind") if isinstance(entry.get("kind"), str) else None
            verdict = Verdict(record_id, batch_id, "rejected", kind=kind, reason=str(invalid))
        else:
            self._hold(record.kind.code, record.key, record.version, record.data, record_id, batch_id)
            verdict = Verdict(record_id, batch_id, "accepted", key=record.key, kind=record.kind.code)
        self.verdicts[record_id] = verdict
        return verdict.as_result(index, replayed=False)

    def _hold(self, kind: str, key: str, version: int, data: dict[str, str], record_id: str, batch_id: str) -> None:
        held = self.by_key.get(key)
        if held is not None and version > held.version:
            held.version, held.data = version, data  # an update (更正) of the record it holds
        else:
            if held is not None:
                self.duplicate_creations += 1
            held = HeldRecord(kind, key, version, data, duplicate=held is not None)
            self.held.append(held)
            self.by_key.setdefault(key, held)
        held.record_ids.append(record_id)
        held.batch_ids.append(batch_id)

    def _status(self, record_id: str) -> dict[str, Any]:
        verdict = self.verdicts.get(record_id)
        if verdict is None:
            return {"recordId": record_id, "status": "unknown", "key": None, "reason": None, "batchId": None}
        return {
            "recordId": record_id,
            "status": verdict.status,
            "key": verdict.key,
            "reason": verdict.reason,
            "batchId": verdict.batch_id,
        }


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def native_router(platform: CreditPlatform) -> APIRouter:
    """The platform's own API, mounted under ``/credit``."""
    router = APIRouter(tags=["credit"])

    @router.post("/api/v1/auth/token")
    async def token(request: Request) -> JSONResponse:
        """Exchange ``{"appKey", "appSecret"}`` for a token (``expiresIn`` seconds)."""
        return platform.issue_token(await _json_body(request))

    @router.post("/api/v1/batches")
    async def batches(request: Request) -> JSONResponse:
        """Upload ``{"batchId", "records": [{"recordId", "kind", "version", "data"}]}``; a verdict per record."""
        refusal = platform.authenticate(request.headers.get("x-credit-token"))
        if refusal is not None:
            return refusal
        body = await _json_body(request)
        if body is None:
            return _error(400, "INVALID_REQUEST", "请求体不是合法的 JSON")
        return platform.submit_batch(body)

    @router.get("/api/v1/batches/{batch_id}")
    async def batch(batch_id: str, request: Request) -> JSONResponse:
        """The current status of every record of an earlier upload."""
        refusal = platform.authenticate(request.headers.get("x-credit-token"))
        return refusal if refusal is not None else platform.batch_status(batch_id)

    @router.post("/api/v1/records/query")
    async def query(request: Request) -> JSONResponse:
        """Status query by ``recordIds``: accepted, rejected (with reason) or unknown (never received)."""
        refusal = platform.authenticate(request.headers.get("x-credit-token"))
        if refusal is not None:
            return refusal
        return platform.query_records(await _json_body(request))

    return router
