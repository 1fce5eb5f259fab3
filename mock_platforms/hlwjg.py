"""Fake 互联网+监管 (Internet + Supervision platform, ``hlwjg``): takes approval records, creates 监管任务.

It behaves like the real receiver a relay has to live with: OAuth2 client-credentials tokens that expire
(the adapter must refresh on 401), a ``requestId`` that makes a replay harmless, a status query by
``requestId`` for reconciling an uncertain send — and, crucially, no protection beyond that: a *new*
requestId carrying an approval it already holds at the same or an older ``dataVersion`` creates a second
supervision task, counted in ``duplicate_creations``. A correct relay keeps that number at 0.

It also takes claims recorded elsewhere (``POST api/v1/task-claims``: a default claim, 默认认领, that the
gateway recorded when a task's claim deadline ran out). A claim marks its task claimed; a second claim of a
task it already holds under a new requestId is a duplicate creation too. Received claims are not echoed into
the event feed: the feed reports what happened on the platform, and echoing would send the claim round again.

The rest of the closed loop (``hlwjg_loop``): ``_mock/generate`` with ``"kind": "loop"`` makes supervision act on
the tasks it holds (claims, inspections, results with penalties, breach reports, revocation advice, guidance
questions) in the event feed; ``POST api/v1/loop-messages`` takes what the approval side sends (feedback, 批前确认
and site inspection requests, guidance) with the same requestId rules, one fact per kind and number, and the
platform answers requests at once in its feed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from mock_platforms.catalog import REGIONS, SUPERVISING_DEPARTMENTS
from mock_platforms.control import GenerateRequest
from mock_platforms.faults import FaultState
from mock_platforms.hlwjg_loop import APPROVAL_SIDE, KEY_FIELD, NEEDS_APPROVAL, LoopTask, loop_events, reaction
from mock_platforms.traffic import TrafficLog

DEFAULT_CLIENTS: Mapping[str, str] = {"shenguan": "hlwjg-mock-secret"}
SERVER_ERROR: dict[str, Any] = {"code": "INTERNAL_ERROR", "message": "系统内部错误，请稍后重试"}
BEIJING = timezone(timedelta(hours=8))
_AREA_CODE = re.compile(r"[0-9]{6}")
_REGION_NAMES = {r.code: r.name for r in REGIONS}
MAX_EVENT_LIMIT = 1000


def supervision_matter_code(item_code: str) -> str:
    """A stable 14-digit 监管事项目录编码 (supervision matter code) for a permit item code."""
    return f"{int(hashlib.sha256(item_code.encode()).hexdigest(), 16) % 10**14:014d}"


class InvalidRecord(ValueError):
    """A request refused for its content; ``field`` is the JSON path the platform reports."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(slots=True)
class HeldRecord:
    """One record and its supervision task; ``duplicate`` marks a naive second creation of a held fact."""

    approval_no: str
    data_version: int
    task_no: str
    record: dict[str, Any]
    request_ids: list[str] = field(default_factory=list)
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "approvalNo": self.approval_no,
            "dataVersion": self.data_version,
            "taskNo": self.task_no,
            "requestIds": list(self.request_ids),
            "duplicate": self.duplicate,
            "record": self.record,
        }


@dataclass(slots=True)
class HeldClaim:
    """A claim received for one task; ``duplicate`` marks a second claim of a task already claimed this way."""

    task_no: str
    claim: dict[str, Any]
    request_ids: list[str] = field(default_factory=list)
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "taskNo": self.task_no,
            "requestIds": list(self.request_ids),
            "duplicate": self.duplicate,
            "claim": self.claim,
        }


@dataclass(slots=True)
class HeldMessage:
    """A loop message received from the approval side; ``duplicate`` marks a naive second creation of a held one."""

    kind: str
    key: str
    data_version: int
    message_id: str
    message: dict[str, Any]
    request_ids: list[str] = field(default_factory=list)
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "dataVersion": self.data_version,
            "messageId": self.message_id,
            "requestIds": list(self.request_ids),
            "duplicate": self.duplicate,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a successful requestId did, kept to answer replays and status queries identically."""

    task_no: str | None
    approval_no: str | None
    data_version: int
    message_id: str | None = None


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status)


def validate(body: Any) -> tuple[str, dict[str, Any]]:
    """Return ``(requestId, record)`` or raise ``InvalidRecord`` naming the first offending field.

    Only what the platform itself relies on is checked; types are strict (``"1"`` is not a dataVersion),
    because a real JSON API does not coerce and an adapter that forgets to convert must find out here.
    """
    if not isinstance(body, dict):
        raise InvalidRecord("body", "请求体必须为 JSON 对象")
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidRecord("requestId", "requestId 不能为空")
    record = body.get("record")
    if not isinstance(record, dict):
        raise InvalidRecord("record", "record 必须为 JSON 对象")
    approval_no = record.get("approvalNo")
    if not isinstance(approval_no, str) or not approval_no.strip():
        raise InvalidRecord("record.approvalNo", "approvalNo 不能为空")
    version = record.get("dataVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidRecord("record.dataVersion", "dataVersion 必须为不小于 1 的整数")
    area = record.get("areaCode")
    if not isinstance(area, str) or not _AREA_CODE.fullmatch(area):
        raise InvalidRecord("record.areaCode", "areaCode 必须为 6 位行政区划代码")
    counterpart = record.get("counterpart")
    if not isinstance(counterpart, dict):
        raise InvalidRecord("record.counterpart", "counterpart 不能为空")
    name = counterpart.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRecord("record.counterpart.name", "counterpart.name 不能为空")
    return request_id, record


_CLAIM_MODES = frozenset({"MANUAL", "DEFAULT"})


def validate_claim(body: Any) -> tuple[str, dict[str, Any]]:
    """Return ``(requestId, claim)`` of a task-claim request or raise ``InvalidRecord`` naming the field."""
    if not isinstance(body, dict):
        raise InvalidRecord("body", "请求体必须为 JSON 对象")
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidRecord("requestId", "requestId 不能为空")
    claim = body.get("claim")
    if not isinstance(claim, dict):
        raise InvalidRecord("claim", "claim 必须为 JSON 对象")
    task_no = claim.get("taskNo")
    if not isinstance(task_no, str) or not task_no.strip():
        raise InvalidRecord("claim.taskNo", "taskNo 不能为空")
    if claim.get("claimMode") not in _CLAIM_MODES:
        raise InvalidRecord("claim.claimMode", "claimMode 必须为 MANUAL 或 DEFAULT")
    claimed_at = claim.get("claimedAt")
    try:
        parsed = datetime.fromisoformat(claimed_at) if isinstance(claimed_at, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidRecord("claim.claimedAt", "claimedAt 必须为带时区的 ISO-8601 时间")
    version = claim.get("dataVersion", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidRecord("claim.dataVersion", "dataVersion 必须为不小于 1 的整数")
    return request_id, claim


def validate_message(body: Any) -> tuple[str, str, str, dict[str, Any]]:
    """Return ``(requestId, kind, key, message)`` of a loop-message request or raise ``InvalidRecord``."""
    if not isinstance(body, dict):
        raise InvalidRecord("body", "请求体必须为 JSON 对象")
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidRecord("requestId", "requestId 不能为空")
    message = body.get("message")
    if not isinstance(message, dict):
        raise InvalidRecord("message", "message 必须为 JSON 对象")
    kind = message.get("kind")
    if kind not in KEY_FIELD:
        raise InvalidRecord("message.kind", f"kind 必须为 {', '.join(sorted(KEY_FIELD))} 之一")
    key = message.get(KEY_FIELD[kind])
    if not isinstance(key, str) or not key.strip():
        raise InvalidRecord(f"message.{KEY_FIELD[kind]}", f"{KEY_FIELD[kind]} 不能为空")
    approval_no = message.get("approvalNo")
    if kind in NEEDS_APPROVAL and (not isinstance(approval_no, str) or not approval_no.strip()):
        raise InvalidRecord("message.approvalNo", "approvalNo 不能为空")
    version = message.get("dataVersion", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidRecord("message.dataVersion", "dataVersion 必须为不小于 1 的整数")
    return request_id, kind, key.strip(), message


class HlwjgPlatform:
    """State of one hlwjg mock: tokens, held records and tasks, replies by requestId, the event feed."""

    name = "hlwjg"

    def __init__(self, clients: Mapping[str, str], clock: Callable[[], float], traffic_limit: int) -> None:
        self.clients = dict(clients)
        self.clock = clock
        self.faults = FaultState(server_error_status=500, server_error_body=SERVER_ERROR)
        self.traffic = TrafficLog(traffic_limit)
        self.tokens: dict[str, float] = {}
        self.reset()

    # -- control plane -------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget records, tasks, replies, events and counters. Issued tokens survive: they are credentials,
        not data, and a reset between test phases should not force every client to re-authenticate."""
        self.held: list[HeldRecord] = []
        self.by_approval: dict[str, HeldRecord] = {}
        self.outcomes: dict[str, _Outcome] = {}
        self.events: list[Any] = []
        self.claimed: set[str] = set()
        self.claims: dict[str, HeldClaim] = {}
        self.claim_log: list[HeldClaim] = []
        self.messages: dict[tuple[str, str], HeldMessage] = {}
        self.message_log: list[HeldMessage] = []
        self.task_sequence = 0
        self.loop_sequence = 0
        self.rejected = 0
        self.duplicate_creations = 0

    def records_report(self) -> dict[str, Any]:
        return {
            "platform": self.name,
            # Distinct facts held: approvals (one task each), claims received, loop messages received.
            "accepted": len(self.by_approval) + len(self.claims) + len(self.messages),
            "duplicate_creations": self.duplicate_creations,
            "rejected": self.rejected,
            "facts": {"approvals": len(self.by_approval), "claims": len(self.claims), "messages": len(self.messages)},
            "records": [h.as_dict() for h in self.held],
            "events": len(self.events),
            "claims": [c.as_dict() for c in self.claim_log],
            "messages": [m.as_dict() for m in self.message_log],
        }

    def generate(self, request: GenerateRequest) -> dict[str, int]:
        """``kind`` ``claims`` (the default) or ``loop``; see ``generate_claims`` and ``generate_loop``."""
        if request.kind in (None, "claims"):
            return self.generate_claims(request)
        if request.kind == "loop":
            return self.generate_loop(request)
        raise HTTPException(400, f"hlwjg generates kind 'claims' or 'loop', not {request.kind!r}")

    def generate_loop(self, request: GenerateRequest) -> dict[str, int]:
        """Supervision acts on the first ``count`` tasks it holds that it has not acted on yet (``hlwjg_loop``).

        Per task: a claim if none yet, an inspection, a result (some penalised, with the 行政处罚 decision), for
        告知承诺 approvals sometimes a breach report and revocation advice, sometimes a guidance question.
        ``duplicate_rate`` repeats that fraction of the events under a new ``seq``; ``revision_rate`` re-reports
        that fraction of the results (``dataVersion`` 2, a corrected description).
        """
        rng = random.Random(request.seed)
        acted = {e.get("taskNo") for e in self.events if e.get("eventType") == "INSPECTION_REPORTED"}
        tasks = [
            LoopTask(
                h.task_no,
                h.approval_no,
                h.record,
                supervision_matter_code(str(h.record.get("itemCode", ""))),
                h.task_no in self.claimed,
            )
            for h in self.held
            if not h.duplicate and h.task_no not in acted
        ][: request.count]
        events, unique = loop_events(tasks, rng, self._now(), self._next_number)
        self.claimed.update(t.task_no for t in tasks)
        # Copies and re-reports, each placed after its original at a random later position (a re-sync's order).
        placed: list[tuple[float, int, dict[str, Any]]] = [(float(i), i, e) for i, e in enumerate(events)]
        results = [i for i, e in enumerate(events) if e["eventType"] == "RESULT_REPORTED"]
        n_revised = round(len(results) * request.revision_rate) if results else 0
        n_repeated = round(len(events) * request.duplicate_rate) if events else 0
        revised = [rng.choice(results) for _ in range(n_revised)]
        repeated = [rng.randrange(len(events)) for _ in range(n_repeated)]
        copies = [(i, {**events[i], "dataVersion": 2, "description": "更正：整改情况复核属实"}) for i in revised]
        copies += [(i, dict(events[i])) for i in repeated]
        for order, (i, copy) in enumerate(copies, start=len(events)):
            placed.append((rng.uniform(i + 0.5, len(events)), order, copy))
        events = [e for _, _, e in sorted(placed, key=lambda t: (t[0], t[1]))]
        for event in events:
            self._append_event(event)
        return {"generated": len(events), "unique_facts": unique}

    def generate_claims(self, request: GenerateRequest) -> dict[str, int]:
        """Append ``count`` TASK_CLAIMED events: unclaimed real tasks first, then synthetic tasks.

        ``duplicate_rate`` re-delivers that fraction of the claims as copies under a new ``seq`` — a feed
        that repeats itself, which a consumer must tolerate. Other rates do not apply to claims.
        """
        rng = random.Random(request.seed)
        tasks = [(h.task_no, h.approval_no, h.record) for h in self.held if h.task_no not in self.claimed]
        claims: list[dict[str, Any]] = []
        for index in range(request.count):
            if index < len(tasks):
                task_no, approval_no, record = tasks[index]
                area = str(record.get("areaCode", ""))
                item_code = str(record.get("itemCode", ""))
            else:
                region = rng.choice(REGIONS)
                area, item_code = region.code, f"synthetic-{rng.randrange(100)}"
                self.task_sequence += 1
                task_no = f"JGRW{area}{self.task_sequence:08d}"
                day = date(2025, 1, 1) + timedelta(days=rng.randrange(700))
                approval_no = f"{area}{day:%y%m%d}{rng.randrange(10**9):09d}"
            self.claimed.add(task_no)
            manual = rng.random() < 0.7
            department = _REGION_NAMES.get(area, "") + rng.choice(SUPERVISING_DEPARTMENTS)
            claims.append(
                {
                    "eventType": "TASK_CLAIMED",
                    "taskNo": task_no,
                    "approvalNo": approval_no,
                    "supervisionMatterCode": supervision_matter_code(item_code),
                    "claimMode": "MANUAL" if manual else "DEFAULT",
                    "claimedAt": self._now(),
                    "department": department,
                }
            )
        for _ in range(round(request.count * request.duplicate_rate) if claims else 0):
            claims.append(dict(rng.choice(claims)))
        for claim in claims:
            self._append_event(claim)
        return {"generated": len(claims), "unique_facts": request.count}

    def inject(self, records: list[Any]) -> dict[str, int]:
        """Append events verbatim; paging uses each item's position, whatever ``seq`` it carries."""
        self.events.extend(records)
        return {"injected": len(records)}

    # -- native API ----------------------------------------------------------------------------------------
    def issue_token(self, client_id: str, client_secret: str) -> dict[str, Any] | None:
        expected = self.clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected.encode(), client_secret.encode()):
            return None
        ttl = self.faults.settings.token_ttl_s
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + ttl
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl)}

    def authenticate(self, authorization: str | None) -> JSONResponse | None:
        """None when the bearer token is valid, else the 401 reply (expired vs. unknown are distinguished)."""
        scheme, _, token = (authorization or "").partition(" ")
        expires_at = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires_at is None:
            return _error(401, "TOKEN_INVALID", "访问令牌无效")
        if self.clock() >= expires_at:
            return _error(401, "TOKEN_EXPIRED", "访问令牌已过期")
        return None

    def submit(self, body: Any) -> JSONResponse:
        """Apply one approval-record request with the platform's replay/revision/naive-duplicate rules."""
        if isinstance(body, dict) and isinstance(body.get("requestId"), str):
            earlier = self.outcomes.get(body["requestId"])
            if earlier is not None:
                return self._accepted(earlier.task_no, replayed=True)
        try:
            request_id, record = validate(body)
        except InvalidRecord as invalid:
            self.rejected += 1
            return _error(400, "INVALID_RECORD", invalid.message, field=invalid.field)
        approval_no, version = record["approvalNo"], record["dataVersion"]
        held = self.by_approval.get(approval_no)
        if held is not None and version > held.data_version:
            held.data_version, held.record = version, record
            held.request_ids.append(request_id)
        else:
            if held is not None:
                self.duplicate_creations += 1
            held = self._create_task(approval_no, version, record, duplicate=held is not None)
            held.request_ids.append(request_id)
        self.outcomes[request_id] = _Outcome(held.task_no, approval_no, version)
        return self._accepted(held.task_no, replayed=False)

    def submit_claim(self, body: Any) -> JSONResponse:
        """Record a claim made elsewhere (a default claim the gateway recorded) for a task this platform holds.

        Same rules as approval records: a known requestId is a replay; a claim of an already claimed task under
        a new requestId is a naive duplicate (counted); a higher ``dataVersion`` updates the held claim.
        """
        if isinstance(body, dict) and isinstance(body.get("requestId"), str):
            earlier = self.outcomes.get(body["requestId"])
            if earlier is not None:
                return self._accepted(earlier.task_no, replayed=True)
        try:
            request_id, claim = validate_claim(body)
        except InvalidRecord as invalid:
            self.rejected += 1
            return _error(400, "INVALID_CLAIM", invalid.message, field=invalid.field)
        task_no = claim["taskNo"]
        task = next((h for h in self.held if h.task_no == task_no), None)
        if task is None:
            self.rejected += 1
            return _error(404, "TASK_NOT_FOUND", f"未找到监管任务 {task_no}", field="claim.taskNo")
        version = claim.get("dataVersion", 1)
        held = self.claims.get(task_no)
        if held is not None and version > int(held.claim.get("dataVersion", 1)):
            held.claim = claim
        else:
            if held is not None:
                self.duplicate_creations += 1
            held = HeldClaim(task_no, claim, duplicate=held is not None)
            self.claims.setdefault(task_no, held)
            self.claim_log.append(held)
        held.request_ids.append(request_id)
        self.claimed.add(task_no)
        self.outcomes[request_id] = _Outcome(task_no, task.approval_no, version)
        return self._accepted(task_no, replayed=False)

    def submit_message(self, body: Any) -> JSONResponse:
        """Take one loop message from the approval side, with the requestId / revision / naive-duplicate rules.

        The first creation of a request (批前确认, site inspection, guidance question) is answered at once in the
        event feed, as the platform's departments would; a replay or an update is not answered again.
        """
        if isinstance(body, dict) and isinstance(body.get("requestId"), str):
            earlier = self.outcomes.get(body["requestId"])
            if earlier is not None:
                return self._message_accepted(earlier, replayed=True)
        try:
            request_id, kind, key, message = validate_message(body)
        except InvalidRecord as invalid:
            self.rejected += 1
            return _error(400, "INVALID_MESSAGE", invalid.message, field=invalid.field)
        if kind not in APPROVAL_SIDE:
            self.rejected += 1
            return _error(400, "INVALID_MESSAGE", f"{kind} 由本平台产生，不接收", field="message.kind")
        version = message.get("dataVersion", 1)
        held = self.messages.get((kind, key))
        if held is not None and version > held.data_version:
            held.data_version, held.message = version, message
        else:
            if held is not None:
                self.duplicate_creations += 1
            self.loop_sequence += 1
            held = HeldMessage(kind, key, version, f"XX{self.loop_sequence:012d}", message, duplicate=held is not None)
            self.messages.setdefault((kind, key), held)
            self.message_log.append(held)
            answer = reaction(kind, message, self._now())
            if answer is not None:
                self._append_event(answer)
        held.request_ids.append(request_id)
        outcome = _Outcome(message.get("taskNo"), message.get("approvalNo"), version, held.message_id)
        self.outcomes[request_id] = outcome
        return self._message_accepted(outcome, replayed=False)

    def status(self, request_id: str) -> JSONResponse:
        outcome = self.outcomes.get(request_id)
        if outcome is None:
            return _error(404, "NOT_FOUND", f"未找到 requestId={request_id} 的记录")
        data = {
            "taskNo": outcome.task_no,
            "approvalNo": outcome.approval_no,
            "dataVersion": outcome.data_version,
        }
        if outcome.message_id is not None:
            data["messageId"] = outcome.message_id
        return JSONResponse({"code": "0", "data": data})

    def event_page(self, since: str | None, limit: str | None) -> JSONResponse:
        """Events after position ``since``; ``next`` is the position of the last event returned."""
        start = 0 if since in (None, "") else int(since) if since.isdigit() else -1
        size = 100 if limit in (None, "") else int(limit) if limit.isdigit() else -1
        if start < 0:
            return _error(400, "INVALID_PARAMETER", "since 必须为非负整数")
        if not 1 <= size <= MAX_EVENT_LIMIT:
            return _error(400, "INVALID_PARAMETER", f"limit 取值范围 1-{MAX_EVENT_LIMIT}")
        events = self.events[start : start + size]
        end = start + len(events)
        data = {"events": events, "next": end, "hasMore": end < len(self.events)}
        return JSONResponse({"code": "0", "data": data})

    # -- helpers -------------------------------------------------------------------------------------------
    def _create_task(
        self, approval_no: str, version: int, record: dict[str, Any], *, duplicate: bool
    ) -> HeldRecord:
        self.task_sequence += 1
        held = HeldRecord(
            approval_no=approval_no,
            data_version=version,
            task_no=f"JGRW{record['areaCode']}{self.task_sequence:08d}",
            record=record,
            duplicate=duplicate,
        )
        self.held.append(held)
        self.by_approval.setdefault(approval_no, held)
        self._append_event(
            {
                "eventType": "TASK_CREATED",
                "taskNo": held.task_no,
                "approvalNo": approval_no,
                "supervisionMatterCode": supervision_matter_code(str(record.get("itemCode", ""))),
                "occurredAt": self._now(),
            }
        )
        return held

    def _append_event(self, event: dict[str, Any]) -> None:
        self.events.append({"seq": len(self.events) + 1, **event})

    def _accepted(self, task_no: str, *, replayed: bool) -> JSONResponse:
        return JSONResponse({"code": "0", "message": "ok", "data": {"taskNo": task_no, "replayed": replayed}})

    def _message_accepted(self, outcome: _Outcome, *, replayed: bool) -> JSONResponse:
        data = {"messageId": outcome.message_id, "taskNo": outcome.task_no, "replayed": replayed}
        return JSONResponse({"code": "0", "message": "ok", "data": data})

    def _next_number(self) -> int:
        self.loop_sequence += 1
        return self.loop_sequence

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).astimezone(BEIJING).isoformat(timespec="seconds")


def _client_credentials(request: Request, form: Mapping[str, list[str]]) -> tuple[str, str]:
    """Client id and secret from the form body, or from HTTP Basic (OAuth2 ``client_secret_basic``)."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return form.get("client_id", [""])[0], form.get("client_secret", [""])[0]


def native_router(platform: HlwjgPlatform) -> APIRouter:
    """The platform's own API, mounted under ``/hlwjg``."""
    router = APIRouter(tags=["hlwjg"])

    @router.post("/oauth2/token")
    async def token(request: Request) -> JSONResponse:
        """OAuth2 client-credentials grant, form-encoded (parsed by hand: no python-multipart needed)."""
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        if form.get("grant_type", [""])[0] != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        issued = platform.issue_token(*_client_credentials(request, form))
        if issued is None:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse(issued)

    async def authorized_json(
        request: Request, invalid_code: str, handle: Callable[[Any], JSONResponse]
    ) -> JSONResponse:
        """Authenticate, then hand the parsed JSON body to ``handle``; an unparseable body is a counted 400.

        Why one helper: every JSON-posting route checks the token first (a 401 is not a rejection) and counts
        a malformed body among ``rejected`` exactly like an invalid payload, so the order and the counting
        stay the same for all of them.
        """
        refusal = platform.authenticate(request.headers.get("authorization"))
        if refusal is not None:
            return refusal
        try:
            body = json.loads(await request.body())
        except ValueError:
            platform.rejected += 1
            return _error(400, invalid_code, "请求体不是合法的 JSON", field="body")
        return handle(body)

    @router.post("/api/v1/approval-records")
    async def approval_records(request: Request) -> JSONResponse:
        """Receive one approval record ``{"requestId", "record"}`` and create or update its task."""
        return await authorized_json(request, "INVALID_RECORD", platform.submit)

    @router.post("/api/v1/task-claims")
    async def task_claims(request: Request) -> JSONResponse:
        """Record a claim (认领) of a task, e.g. a default claim (默认认领) recorded by the gateway."""
        return await authorized_json(request, "INVALID_CLAIM", platform.submit_claim)

    @router.post("/api/v1/loop-messages")
    async def loop_messages(request: Request) -> JSONResponse:
        """Take one message of an approval's closed loop from the approval side (feedback, requests, guidance)."""
        return await authorized_json(request, "INVALID_MESSAGE", platform.submit_message)

    @router.get("/api/v1/approval-records/by-request/{request_id}")
    async def by_request(request_id: str, request: Request) -> JSONResponse:
        """Status query: what did this requestId do, if anything."""
        refusal = platform.authenticate(request.headers.get("authorization"))
        return refusal if refusal is not None else platform.status(request_id)

    @router.get("/api/v1/events")
    async def events(request: Request) -> JSONResponse:
        """Event feed (TASK_CREATED, TASK_CLAIMED, injected items) after ``since``, ``limit`` per page."""
        refusal = platform.authenticate(request.headers.get("authorization"))
        if refusal is not None:
            return refusal
        params = request.query_params
        return platform.event_page(params.get("since"), params.get("limit"))

    return router
