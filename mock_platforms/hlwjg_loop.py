"""What the fake 互联网+监管 does after a task exists: the rest of the closed loop, in its own native events.

Two halves, both pure functions of their inputs (a seeded ``random.Random``, the platform's clock reading and its
running numbers), so a run is replayable:

- ``loop_events``: for tasks the platform holds, what supervision does with them — a claim (认领) if nobody claimed
  it yet, an inspection (检查行为, ``INSPECTION_REPORTED``), the result (``RESULT_REPORTED``; a penalised one
  carries its 行政处罚 decision as ``penalty``), for a 告知承诺 approval sometimes a breach (``BREACH_REPORTED``)
  and the revocation advice that follows (``REVOCATION_ADVISED``, 撤销意见), and now and then a guidance question
  to the approval bureau (``GUIDANCE_REQUESTED``).
- ``reaction``: what the platform answers, at once, to a message the approval side sent it — a 批前确认 request
  is confirmed (``PREAPPROVAL_ANSWERED``), a site inspection request reported (``SITE_INSPECTION_REPORTED``), a
  guidance question answered (``GUIDANCE_ANSWERED``). Feedback needs no answer.

The field names are the platform's (camelCase, ``approvalNo``/``taskNo``/``areaCode``/``department``, ISO times
with +08:00, codes in upper case). This module shares no code with the adapters on purpose: a fake that used the
adapter's mapping could not catch its mistakes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mock_platforms.catalog import REGIONS, SUPERVISING_DEPARTMENTS, SURNAMES
from mock_platforms.identifiers import make_uscc

__all__ = ["APPROVAL_SIDE", "KEY_FIELD", "LoopTask", "department_code", "loop_events", "reaction"]

# Each loop message kind and the field that numbers it (one fact per kind and number).
KEY_FIELD: dict[str, str] = {
    "INSPECTION_REPORTED": "inspectionNo",
    "RESULT_REPORTED": "resultNo",
    "BREACH_REPORTED": "reportNo",
    "REVOCATION_ADVISED": "adviceNo",
    "FEEDBACK_SENT": "feedbackNo",
    "PREAPPROVAL_REQUESTED": "requestNo",
    "PREAPPROVAL_ANSWERED": "requestNo",
    "GUIDANCE_REQUESTED": "requestNo",
    "GUIDANCE_ANSWERED": "requestNo",
    "SITE_INSPECTION_REQUESTED": "requestNo",
    "SITE_INSPECTION_REPORTED": "requestNo",
}
# Kinds the approval side sends to this platform (its intake); the others are what the platform itself reports.
APPROVAL_SIDE = frozenset(
    {"FEEDBACK_SENT", "PREAPPROVAL_REQUESTED", "GUIDANCE_REQUESTED", "GUIDANCE_ANSWERED", "SITE_INSPECTION_REQUESTED"}
)
# Kinds that only make sense about one approval, so the intake requires its approvalNo.
NEEDS_APPROVAL = frozenset(KEY_FIELD) - {"GUIDANCE_REQUESTED", "GUIDANCE_ANSWERED"}

_REGION_NAMES = {r.code: r.name for r in REGIONS}
_CITY_ABBREV = {r.code: r.abbrev for r in REGIONS}
_CHECK_RESULTS = (
    ("NO_PROBLEM", 0.45),
    ("RECTIFICATION_ORDERED", 0.25),
    ("CASE_FILED", 0.2),
    ("TRANSFERRED", 0.05),
    ("OBJECT_NOT_FOUND", 0.05),
)
_CONCLUSION = {
    "NO_PROBLEM": "COMPLIANT",
    "RECTIFICATION_ORDERED": "RECTIFIED",
    "CASE_FILED": "PENALISED",
    "TRANSFERRED": "TRANSFERRED",
    "OBJECT_NOT_FOUND": "CLOSED",
}
_PARTY_KIND = {"LEGAL": "legal", "NATURAL": "natural", "OTHER": "other"}
_ID_TYPE = {"USCC": "uscc", "ID_CARD": "resident_id"}
_PLACEHOLDER_USCC = "0" * 17 + "X"


@dataclass(frozen=True, slots=True)
class LoopTask:
    """A task the platform holds: its number, the approval's number and record, its 监管事项, whether claimed."""

    task_no: str
    approval_no: str
    record: Mapping[str, Any]
    matter_code: str
    claimed: bool


def department_code(area: str, department: str) -> str:
    """A stable, GB 32100-valid 统一社会信用代码 for a supervising department (机关: 11…MB…)."""
    return make_uscc(random.Random(f"department:{area}:{department}"), "11", area if len(area) == 6 else "320700")


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    draw, total = rng.random(), 0.0
    for value, weight in table:
        total += weight
        if draw < total:
            return value
    return table[-1][0]


def _inspectors(rng: random.Random, area: str) -> list[dict[str, str]]:
    return [
        {"name": rng.choice(SURNAMES) + "某" * rng.randint(1, 2), "certificateNo": f"{area}{rng.randrange(10**5):05d}"}
        for _ in range(2)
    ]


def _penalty_party(counterpart: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 行政相对人 of a penalty, from the approval's counterpart; ``None`` when it cannot be identified."""
    kind = _PARTY_KIND.get(str(counterpart.get("type")))
    id_type = _ID_TYPE.get(str(counterpart.get("credentialsType")))
    value = counterpart.get("credentialsValue")
    if kind is None or id_type is None or not isinstance(value, str) or value == _PLACEHOLDER_USCC:
        return None
    if (kind == "natural") != (id_type == "resident_id"):
        return None
    party = {"kind": kind, "name": counterpart.get("name"), "idType": id_type, "idNumber": value}
    if kind != "natural":
        # A 行政处罚 of an organisation names its 法定代表人; without one there is no publishable decision here.
        if not counterpart.get("legalRepresentative"):
            return None
        party["legalRepresentative"] = counterpart["legalRepresentative"]
    return party


def loop_events(
    tasks: list[LoopTask], rng: random.Random, now: str, next_number: Callable[[], int]
) -> tuple[list[dict[str, Any]], int]:
    """The events supervision produces for ``tasks`` (in order), and how many distinct facts they are.

    ``next_number`` hands out the platform's running record numbers; ``now`` is its clock as ISO time.
    """
    events: list[dict[str, Any]] = []
    for task in tasks:
        record = task.record
        area = str(record.get("areaCode") or "320700")
        department = _REGION_NAMES.get(area, "") + rng.choice(SUPERVISING_DEPARTMENTS)
        common = {
            "taskNo": task.task_no,
            "approvalNo": task.approval_no,
            "areaCode": area,
            "department": department,
            "departmentCode": department_code(area, department),
        }
        if not task.claimed:
            events.append({"eventType": "TASK_CLAIMED", **common, "claimMode": "MANUAL", "claimedAt": now})
        counterpart = record.get("counterpart") if isinstance(record.get("counterpart"), Mapping) else {}
        assert isinstance(counterpart, Mapping)
        commitment = record.get("commitment")
        check = _weighted(rng, _CHECK_RESULTS)
        party = _penalty_party(counterpart)
        if check == "CASE_FILED" and party is None:
            check = "RECTIFICATION_ORDERED"  # nobody to fine by name: ordered to rectify instead
        inspection_no = f"JC{area}{next_number():010d}"
        subject = {"type": _PARTY_KIND.get(str(counterpart.get("type")), "other"), "name": counterpart.get("name")}
        if counterpart.get("credentialsType") == "USCC":
            subject |= {"code": counterpart.get("credentialsValue")}
        events.append(
            {
                "eventType": "INSPECTION_REPORTED",
                **common,
                "inspectionNo": inspection_no,
                "supervisionMatterCode": task.matter_code,
                "supervisionMatterName": f"{record.get('itemName') or '许可'}事中事后监管",
                "checkTime": now,
                "checkResult": check,
                "findings": None if check == "NO_PROBLEM" else "现场检查发现问题，已当场告知",
                "commitmentVerification": commitment is not None,
                "inspectors": _inspectors(rng, area),
                "superviseObjects": [subject],
            }
        )
        events.append(_result(rng, common, inspection_no, check, party, now, next_number))
        if isinstance(commitment, Mapping) and rng.random() < 0.3:
            report_no = f"WN{area}{next_number():010d}"
            events.append(
                {
                    "eventType": "BREACH_REPORTED",
                    **common,
                    "reportNo": report_no,
                    "inspectionNo": inspection_no,
                    "commitmentMode": commitment.get("mode"),
                    "breach": "申请人承诺的条件经核查不实",
                    "foundAt": now,
                }
            )
            license_ = record.get("license") if isinstance(record.get("license"), Mapping) else {}
            assert isinstance(license_, Mapping)
            events.append(
                {
                    "eventType": "REVOCATION_ADVISED",
                    **common,
                    "adviceNo": f"CX{area}{next_number():010d}",
                    "certificateNo": license_.get("certificateNo"),
                    "breachReportNo": report_no,
                    "reason": "以告知承诺方式取得许可，承诺内容与实际情况不符",
                    "legalBasis": "《行政许可法》第六十九条",
                    "advisedAt": now,
                }
            )
        if rng.random() < 0.15:
            events.append(
                {
                    "eventType": "GUIDANCE_REQUESTED",
                    **common,
                    "requestNo": f"ZD{area}{next_number():010d}",
                    "askedBy": "SUPERVISION",
                    "subject": "事后核查标准",
                    "question": f"{record.get('itemName') or '该事项'}告知承诺核查是否须现场进行？",
                    "itemCode": record.get("itemCode"),
                    "addressedToName": f"{_REGION_NAMES.get(area, '')}行政审批局",
                    "requestedAt": now,
                }
            )
    return events, len(events)


def _result(
    rng: random.Random,
    common: Mapping[str, Any],
    inspection_no: str,
    check: str,
    party: Mapping[str, Any] | None,
    now: str,
    next_number: Callable[[], int],
) -> dict[str, Any]:
    area = str(common["areaCode"])
    conclusion = _CONCLUSION[check]
    result: dict[str, Any] = {
        "eventType": "RESULT_REPORTED",
        **common,
        "resultNo": f"JG{area}{next_number():010d}",
        "inspectionNo": inspection_no,
        "reportedAt": now,
        "conclusion": conclusion,
        "licenseAction": "NONE",
        "description": {"COMPLIANT": "未发现违法违规行为", "RECTIFIED": "已按要求整改到位"}.get(conclusion, "依法处理"),
    }
    if conclusion == "PENALISED" and party is not None:
        fined = rng.random() < 0.7
        day = now[:10]
        penalty = {
            "decisionNo": f"{_CITY_ABBREV.get(area, '苏')}市监罚〔{day[:4]}〕{next_number()}号",
            "party": party,
            "violationType": "违反食品安全管理规定",
            "facts": "经营场所卫生条件不符合许可条件",
            "legalBasis": "《中华人民共和国食品安全法》第一百二十六条",
            "categories": ["FINE"] if fined else ["WARNING"],
            "content": "罚款人民币伍千元" if fined else "警告",
            "fineYuan": "5000.00" if fined else None,
            "decidedOn": day,
            "authorityName": common["department"],
            "authorityCode": common["departmentCode"],
        }
        result |= {"penaltyDecisionNo": penalty["decisionNo"], "penalty": penalty}
        if rng.random() < 0.5:
            result |= {"licenseAction": "SUSPEND", "licenseActionReason": "责令停业整顿期间暂扣许可证件"}
    return result


def reaction(kind: str, message: Mapping[str, Any], now: str) -> dict[str, Any] | None:
    """The event the platform appends at once when it takes ``message`` of ``kind`` from the approval side."""
    common = {
        "taskNo": message.get("taskNo"),
        "approvalNo": message.get("approvalNo"),
        "areaCode": message.get("areaCode"),
        "requestNo": message.get("requestNo"),
    }
    area = str(message.get("areaCode") or "320700")
    department = message.get("addressedToName") or _REGION_NAMES.get(area, "") + SUPERVISING_DEPARTMENTS[0]
    common |= {"department": department, "departmentCode": department_code(area, str(department))}
    if kind == "PREAPPROVAL_REQUESTED":
        return {"eventType": "PREAPPROVAL_ANSWERED", **common, "decision": "AGREED", "answeredAt": now}
    if kind == "SITE_INSPECTION_REQUESTED":
        rng = random.Random(f"site:{message.get('requestNo')}")
        return {
            "eventType": "SITE_INSPECTION_REPORTED",
            **common,
            "conclusion": "PASSED",
            "inspectedAt": now,
            "inspectors": _inspectors(rng, area),
        }
    if kind == "GUIDANCE_REQUESTED":
        return {"eventType": "GUIDANCE_ANSWERED", **common, "answer": "经研究，按现行规定办理。", "answeredAt": now}
    return None
