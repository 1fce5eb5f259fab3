"""The fake 政务服务一体化平台's 审管联动 side (linkage): an inbox for what supervision reports, a feed of what the
approval bureau sends back, and the bureau's reflexes.

- **Inbox** (``POST api/v1/linkage/inbox``): ``{"requestId", "item"}`` where ``item`` is one flat message in the
  platform's style — ``MSGTYPE``, UPPER_SNAKE string fields, ``PROJID`` for the 办件编号, ``DATAVERSION``. One fact
  per ``MSGTYPE`` and record number (``KEY_FIELD``). A known ``requestId`` is a replay (first receipt again); a
  *new* requestId for a fact already held at the same or an older ``DATAVERSION`` creates a second record, counted
  in ``duplicate_creations`` — what a correct relay never causes. ``GET api/v1/linkage/inbox/{requestId}`` says
  whether a request was taken (code ``4004`` when not).
- **Feed** (``GET api/v1/linkage/changes``): the bureau's own messages, paged like the 办件 feed.
- **Reflexes**: the bureau handles what it is told at once — revocation advice (撤销意见) and a result that asks
  for a licence change get feedback (``FEEDBACK``), a guidance question from supervision gets an answer. Only the
  first creation of a fact triggers one, so a replay answers nothing twice.
- **Requests** (``_mock/generate`` with ``kind``): ``preapproval`` (批前确认), ``site_inspection`` (智慧踏勘) and
  ``guidance`` requests about the 办件 in the feed, for the supervision side to answer.

Pure helpers only; ``mock_platforms.zwfw`` holds the state. Nothing here is shared with the adapters.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from mock_platforms.generator import issuer_code

__all__ = [
    "APPROVAL_SIDE",
    "KEY_FIELD",
    "REQUEST_KINDS",
    "InvalidItem",
    "reaction",
    "requests_for",
    "validate_inbox",
]

KEY_FIELD: dict[str, str] = {
    "TASK_CLAIM": "TASK_NO",
    "INSPECTION": "INSPECTION_NO",
    "SUPERVISION_RESULT": "RESULT_NO",
    "COMMITMENT_BREACH": "REPORT_NO",
    "REVOCATION_ADVICE": "ADVICE_NO",
    "FEEDBACK": "FEEDBACK_NO",
    "PREAPPROVAL_REQUEST": "REQUEST_NO",
    "PREAPPROVAL_ANSWER": "REQUEST_NO",
    "GUIDANCE_REQUEST": "REQUEST_NO",
    "GUIDANCE_ANSWER": "REQUEST_NO",
    "SITE_INSPECTION_REQUEST": "REQUEST_NO",
    "SITE_INSPECTION_REPORT": "REQUEST_NO",
    "PENALTY": "DECISION_NO",
}
# What the bureau itself sends (never taken in at its own inbox).
APPROVAL_SIDE = frozenset({"FEEDBACK", "PREAPPROVAL_REQUEST", "SITE_INSPECTION_REQUEST"})
# Messages that are about one case must name it.
_STANDALONE = frozenset({"GUIDANCE_REQUEST", "GUIDANCE_ANSWER", "PENALTY"})
REQUEST_KINDS: dict[str, str] = {
    "preapproval": "PREAPPROVAL_REQUEST",
    "site_inspection": "SITE_INSPECTION_REQUEST",
    "guidance": "GUIDANCE_REQUEST",
}
_FEEDBACK_OUTCOME = {"CHANGE": "LICENSE_CHANGED", "SUSPEND": "LICENSE_SUSPENDED", "REVOKE": "LICENSE_REVOKED"}
_TIME = "%Y-%m-%d %H:%M:%S"
_SECRET = frozenset({"秘密", "机密", "绝密"})


class InvalidItem(ValueError):
    """An inbox request refused for its content; ``field`` is the native field the platform names."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def validate_inbox(body: Any) -> tuple[str, str, str, int, dict[str, Any]]:
    """``(requestId, MSGTYPE, record number, DATAVERSION, item)`` of an inbox request, or ``InvalidItem``.

    Strict about types the way the platform is: every value of the item is a string (``DATAVERSION`` ``"1"``).
    """
    if not isinstance(body, dict):
        raise InvalidItem("body", "请求体必须为 JSON 对象")
    request_id = body.get("requestId")
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidItem("requestId", "requestId 不能为空")
    item = body.get("item")
    if not isinstance(item, dict):
        raise InvalidItem("item", "item 必须为 JSON 对象")
    msgtype = item.get("MSGTYPE")
    if msgtype not in KEY_FIELD or msgtype in APPROVAL_SIDE:
        raise InvalidItem("item.MSGTYPE", "MSGTYPE 不是本平台接收的消息类型")
    key = item.get(KEY_FIELD[msgtype])
    if not isinstance(key, str) or not key.strip():
        raise InvalidItem(f"item.{KEY_FIELD[msgtype]}", f"{KEY_FIELD[msgtype]} 不能为空")
    projid = item.get("PROJID")
    if msgtype not in _STANDALONE and (not isinstance(projid, str) or not projid.strip()):
        raise InvalidItem("item.PROJID", "PROJID 不能为空")
    version = item.get("DATAVERSION", "1")
    if not isinstance(version, str) or not version.isdigit() or int(version) < 1:
        raise InvalidItem("item.DATAVERSION", "DATAVERSION 须为不小于 1 的整数字符串")
    for name, value in item.items():
        if isinstance(value, int | float | bool):
            raise InvalidItem(f"item.{name}", f"{name} 须为字符串")
    return request_id, msgtype, key.strip(), int(version), item


def _bureau(area: str) -> dict[str, str]:
    return {"DEPT_NAME": "行政审批局", "DEPT_CODE": issuer_code(area)}


def reaction(msgtype: str, item: Mapping[str, Any], now: datetime, number: Callable[[], int]) -> dict[str, Any] | None:
    """The message the bureau puts in its feed at once when it takes ``item`` (``None``: nothing to answer)."""
    area = str(item.get("AREACODE") or "320700")
    common = {"PROJID": item.get("PROJID", ""), "TASK_NO": item.get("TASK_NO", ""), "AREACODE": area, **_bureau(area)}
    moment = now.strftime(_TIME)
    if msgtype == "REVOCATION_ADVICE" or (
        msgtype == "SUPERVISION_RESULT" and item.get("LICENSE_ACTION") not in (None, "", "NONE")
    ):
        advice = msgtype == "REVOCATION_ADVICE"
        outcome = "LICENSE_REVOKED" if advice else _FEEDBACK_OUTCOME.get(str(item.get("LICENSE_ACTION")), "NOTED")
        return {
            "MSGTYPE": "FEEDBACK",
            "FEEDBACK_NO": f"FK{area}{number():010d}",
            **common,
            "IN_REPLY_TO_TYPE": "LICENSE_REVOCATION_ADVISED" if advice else "SUPERVISION_RESULT_REPORTED",
            "IN_REPLY_TO": str(item.get("ADVICE_NO") if advice else item.get("RESULT_NO")),
            "OUTCOME": outcome,
            "DESCRIPTION": "已依法处理" if advice else "已按监管结果处理许可",
            "DOCUMENT_NO": f"审批撤〔{now.year}〕{number()}号" if advice else "",
            "SENT_AT": moment,
            "DATAVERSION": "1",
        }
    if msgtype == "GUIDANCE_REQUEST" and item.get("ASKED_BY") == "SUPERVISION":
        return {
            "MSGTYPE": "GUIDANCE_ANSWER",
            "REQUEST_NO": item.get("REQUEST_NO", ""),
            **common,
            "ANSWER": "按告知承诺核查办法执行，必要时现场核查。",
            "ANSWERED_AT": moment,
            "DATAVERSION": "1",
        }
    return None


def requests_for(
    kind: str, banjian: list[Mapping[str, Any]], rng: random.Random, number: Callable[[], int]
) -> list[dict[str, Any]]:
    """One request of ``kind`` (a key of ``REQUEST_KINDS``) per 办件 given, asked an hour after its receipt."""
    out = []
    for item in banjian:
        area = str(item.get("AREACODE") or "320700")
        received = datetime.strptime(str(item.get("RECEIVETIME")), _TIME) + timedelta(hours=1)
        common = {
            "PROJID": str(item["PROJID"]),
            "TASK_NO": "",
            "AREACODE": area,
            **_bureau(area),
            "DATAVERSION": "1",
        }
        goods = {"CODE": str(item.get("SERVICECODE", "")), "NAME": str(item.get("SERVICENAME", ""))}
        if kind == "preapproval":
            out.append(
                {
                    "MSGTYPE": "PREAPPROVAL_REQUEST",
                    "REQUEST_NO": f"PQ{area}{number():010d}",
                    **common,
                    "ITEM": goods,
                    "APPLICANT_NAME": str(item.get("APPLYNAME", "")),
                    "CONTENT": "请确认申请人经营场所符合规划及行业准入条件",
                    "REQUESTED_AT": received.strftime(_TIME),
                    "ADDRESSED_TO_NAME": "市场监督管理局",
                    "ADDRESSED_TO_CODE": "",
                    "ANSWER_DUE": "",
                }
            )
        elif kind == "site_inspection":
            out.append(
                {
                    "MSGTYPE": "SITE_INSPECTION_REQUEST",
                    "REQUEST_NO": f"TK{area}{number():010d}",
                    **common,
                    "ITEM": goods,
                    "SITE_ADDRESS": f"{area}某路{rng.randint(1, 999)}号",
                    "MODE": rng.choice(("REMOTE", "ON_SITE")),
                    "PLANNED_ON": (received + timedelta(days=1)).strftime("%Y-%m-%d"),
                    "ADDRESSED_TO_NAME": "市场监督管理局",
                    "ADDRESSED_TO_CODE": "",
                    "REQUESTED_AT": received.strftime(_TIME),
                }
            )
        else:
            out.append(
                {
                    "MSGTYPE": "GUIDANCE_REQUEST",
                    "REQUEST_NO": f"ZD{area}{number():010d}",
                    **common,
                    "ASKED_BY": "APPROVAL",
                    "SUBJECT": "监管事项认领范围",
                    "QUESTION": f"{item.get('SERVICENAME', '该事项')}的监管事项由哪个部门认领？",
                    "ITEM_CODE": str(item.get("SERVICECODE", "")),
                    "ADDRESSED_TO_NAME": "市场监督管理局",
                    "ADDRESSED_TO_CODE": "",
                    "REQUESTED_AT": received.strftime(_TIME),
                }
            )
    return out


def requestable(feed: list[Any], asked: set[str]) -> list[Mapping[str, Any]]:
    """The 办件 of the feed a request may be about: first appearance of each PROJID, not 涉密, not asked yet."""
    seen: set[str] = set()
    out = []
    for item in feed:
        if not isinstance(item, Mapping) or "PROJID" not in item or "MSGTYPE" in item:
            continue
        projid = str(item["PROJID"])
        if projid in seen or projid in asked or item.get("MJ") in _SECRET or not item.get("RECEIVETIME"):
            continue
        seen.add(projid)
        out.append(item)
    return out
