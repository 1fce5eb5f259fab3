"""Pure mapping of canonical events to the 公共信用信息平台's 双公示 field sets (行政许可 XK_*, 行政处罚 CF_*).

Three event types become two record kinds:

- ``approval.decided`` (granted) → a 行政许可 record, derived here so that nobody re-enters an approval the
  政务服务一体化平台 already holds (一数一源). Only a *granted* approval is a licence: a refusal, a returned
  case (退件) or a voided one has nothing to publish, and is refused with ``NotPublishable`` (routes filter
  them out first; see docs/architecture.md).
- ``credit.license.published`` → the same 行政许可 record, field for field.
- ``credit.penalty.published`` → a 行政处罚 record.

The platform's conventions are applied here and nowhere else: dates ``YYYY/MM/DD`` in Beijing time, 长期 as
``2099/12/31``, fines in 万元 as decimal text converted from canonical 元 with ``Decimal`` (exact: 元 → 万元 is a
shift of four decimal places, so no rounding can happen), closed value lists in Chinese. ``decode_entry`` is
the inverse for the two credit types, so a round trip can prove that nothing is dropped or bent.

A natural person's 身份证号 is not part of the field set the platform receives (DESIGN §3): it is never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from adapters.native import SHANGHAI
from schemas import (
    ApprovalDecided,
    CommitmentMode,
    CreditLicensePublished,
    CreditPenaltyPublished,
    DecisionResult,
    Envelope,
    IdType,
    LicenseCategory,
    LicenseStatus,
    Party,
    PartyKind,
    PenaltyCategory,
    describe_validation_error,
)
from schemas.identifiers import is_uscc_placeholder

__all__ = [
    "ACCEPTED_TYPES",
    "LONG_TERM",
    "NotPublishable",
    "Publisher",
    "decode_entry",
    "encode_entry",
    "license_from_approval",
    "license_record",
    "penalty_record",
    "wan_yuan",
    "yuan",
]

LICENSE_KIND = "XK"
PENALTY_KIND = "CF"
LONG_TERM = "2099/12/31"
ACCEPTED_TYPES = ("approval.decided", "credit.license.published", "credit.penalty.published")
DEFAULT_DOCUMENT_NAME = "准予行政许可决定书"  # 行政许可法 Art. 38: the decision document of every grant

LICENSE_CATEGORY_TEXT: dict[LicenseCategory, str] = {
    LicenseCategory.general: "普通",
    LicenseCategory.franchise: "特许",
    LicenseCategory.recognition: "认可",
    LicenseCategory.verification: "核准",
    LicenseCategory.registration: "登记",
    LicenseCategory.other: "其他",
}
PENALTY_CATEGORY_TEXT: dict[PenaltyCategory, str] = {
    PenaltyCategory.warning: "警告",
    PenaltyCategory.circulated_criticism: "通报批评",
    PenaltyCategory.fine: "罚款",
    PenaltyCategory.confiscation_of_illegal_gains: "没收违法所得",
    PenaltyCategory.confiscation_of_illegal_property: "没收非法财物",
    PenaltyCategory.license_suspension: "暂扣许可证件",
    PenaltyCategory.qualification_downgrade: "降低资质等级",
    PenaltyCategory.license_revocation: "吊销许可证件",
    PenaltyCategory.business_restriction: "限制开展生产经营活动",
    PenaltyCategory.production_suspension: "责令停产停业",
    PenaltyCategory.closure: "责令关闭",
    PenaltyCategory.employment_restriction: "限制从业",
    PenaltyCategory.detention: "行政拘留",
    PenaltyCategory.other: "其他",
}
_STATUS_TEXT = {LicenseStatus.valid: "1", LicenseStatus.invalid: "2"}
_COMMITMENT_TEXT = {
    CommitmentMode.deferred_materials: "材料延期",
    CommitmentMode.material_verification: "材料核验",
    CommitmentMode.post_verification: "事后核查",
}
LEGAL_ENTITY = "法人及非法人组织"
NATURAL_PERSON = "自然人"
INDIVIDUAL_BUSINESS = "个体工商户"
_WAN = Decimal(10_000)


class NotPublishable(ValueError):
    """A canonical message that has no 双公示 record (or lacks what one requires); the reason says which."""


@dataclass(frozen=True, slots=True)
class Publisher:
    """What a 行政许可 derived from an approval needs and the approval does not carry (adapter options).

    ``authorities`` names the 许可机关 by its 统一社会信用代码 (an approval carries only the code); a code not in
    it is named ``authority_name``. The 数据来源单位 of a derived record defaults to the deployment's authority.
    """

    authority_name: str
    authority_code: str
    authorities: Mapping[str, str] = field(default_factory=dict)
    source_unit_name: str | None = None
    source_unit_code: str | None = None
    license_category: LicenseCategory = LicenseCategory.general


def _day(value: date) -> str:
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def _beijing_day(value: datetime) -> date:
    return value.astimezone(SHANGHAI).date()


def wan_yuan(amount: Decimal) -> str:
    """元 → 万元 as plain decimal text: ``5000.00`` → ``"0.5"``, ``123.45`` → ``"0.012345"``. Exact."""
    shifted = amount.scaleb(-4)
    text = format(shifted.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def yuan(text: str) -> Decimal:
    """万元 text → 元 with two places (the inverse of ``wan_yuan``); ``ValueError`` when it is not a number."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("is not a decimal number") from None
    if not value.is_finite():
        raise ValueError("is not a finite number")
    return (value * _WAN).quantize(Decimal("0.01"))


def party_category(party: Party) -> str:
    """相对人类别: a natural person; a 个体工商户 (USCC category 92, or the 17-zeros-X placeholder); else an
    organisation (法人及非法人组织)."""
    if party.kind is PartyKind.natural:
        return NATURAL_PERSON
    if party.id_type is IdType.uscc and (party.id_number.startswith("92") or is_uscc_placeholder(party.id_number)):
        return INDIVIDUAL_BUSINESS
    return LEGAL_ENTITY


def _party_fields(prefix: str, party: Party) -> dict[str, str | None]:
    natural = party.kind is PartyKind.natural
    return {
        f"{prefix}XDR_MC": party.name,
        f"{prefix}XDR_LB": party_category(party),
        # Only a 统一社会信用代码 goes here; a natural person's 身份证号 is never sent.
        f"{prefix}XDR_SHXYM": party.id_number if party.id_type is IdType.uscc else None,
        f"{prefix}XDR_GSZC": party.business_registration_no,
        f"{prefix}FRDB": None if natural else party.legal_representative,
    }


def _compact(fields: Mapping[str, str | None]) -> dict[str, str]:
    """Absent optional fields are left out rather than sent as ``""`` (the platform takes both)."""
    return {name: value for name, value in fields.items() if value is not None and value != ""}


def license_record(lic: CreditLicensePublished) -> dict[str, str]:
    """The XK_* record of a 行政许可."""
    return _compact(
        {
            **_party_fields("XK_", lic.party),
            "XK_XKWS": lic.document_name or DEFAULT_DOCUMENT_NAME,
            "XK_WSH": lic.document_no,
            "XK_XKLB": LICENSE_CATEGORY_TEXT[lic.category],
            "XK_XKZS": lic.certificate_name,
            "XK_XKBH": lic.certificate_no,
            "XK_NR": lic.content,
            "XK_JDRQ": _day(lic.decided_on),
            "XK_YXQZ": _day(lic.valid_from),
            "XK_YXQZI": _day(lic.valid_to) if lic.valid_to is not None else LONG_TERM,
            "XK_XKJG": lic.authority_name,
            "XK_XKJGDM": lic.authority_code,
            "XK_ZT": _STATUS_TEXT[lic.status],
            "XK_LYDW": lic.source_unit_name or lic.authority_name,
            "XK_LYDWDM": lic.source_unit_code or lic.authority_code,
            "BZ": lic.remark,
        }
    )


def penalty_record(pen: CreditPenaltyPublished) -> dict[str, str]:
    """The CF_* record of a 行政处罚; the fine in 万元."""
    return _compact(
        {
            **_party_fields("CF_", pen.party),
            "CF_WSH": pen.decision_no,
            "CF_WFXW": pen.violation_type,
            "CF_SY": pen.facts,
            "CF_YJ": pen.legal_basis,
            "CF_CFLB": ";".join(PENALTY_CATEGORY_TEXT[c] for c in pen.categories),
            "CF_NR": pen.content,
            "CF_NR_FK": wan_yuan(pen.fine_yuan) if pen.fine_yuan is not None else None,
            "CF_JDRQ": _day(pen.decided_on),
            "CF_YXQ": _day(pen.valid_until) if pen.valid_until is not None else LONG_TERM,
            "CF_GSJZQ": _day(pen.publish_until) if pen.publish_until is not None else None,
            "CF_CFJG": pen.authority_name,
            "CF_CFJGDM": pen.authority_code,
            "CF_SJLY": pen.source_unit_name or pen.authority_name,
            "CF_SJLYDM": pen.source_unit_code or pen.authority_code,
            "BZ": pen.remark,
        }
    )


def _commitment_remark(approval: ApprovalDecided) -> str | None:
    if approval.commitment is None:
        return None
    period = approval.commitment.period_days
    within = f"，承诺期限 {period} 个工作日" if period else ""
    return f"告知承诺审批（{_COMMITMENT_TEXT[approval.commitment.mode]}{within}）"


def license_from_approval(approval: ApprovalDecided, publisher: Publisher) -> CreditLicensePublished:
    """The 行政许可 a granted approval amounts to; ``NotPublishable`` for any other outcome.

    Validity: the certificate's dates; with no start date, the decision date; with no end date and no 长期
    flag, 长期 — a grant without an expiry (a registration, say) does not lapse.
    """
    if approval.result is not DecisionResult.granted:
        raise NotPublishable(
            f"approval {approval.case_no} is {approval.result.value}, not granted: there is no 行政许可 to "
            'publish (route only granted approvals: where = {result = ["granted"]})'
        )
    cert = approval.certificate
    if cert is None or not cert.document_no:
        raise NotPublishable(
            f"approval {approval.case_no} has no 决定文书号 (XK_WSH), which every 行政许可 record requires; "
            "a re-report (重报) that carries it will be published"
        )
    decided_on = _beijing_day(approval.decided_at)
    authority_code = cert.issuer_code or publisher.authority_code
    content = approval.item.name
    if approval.result_description:
        content = f"{content}：{approval.result_description}"
    data = {
        "document_no": cert.document_no,
        "document_name": cert.document_name,
        "party": approval.applicant,
        "category": publisher.license_category,
        "certificate_name": cert.name,
        "certificate_no": cert.number,
        "content": content,
        "decided_on": decided_on,
        "valid_from": cert.valid_from or decided_on,
        "valid_to": None if cert.long_term else cert.valid_to,
        "long_term": cert.long_term or cert.valid_to is None,
        "authority_name": publisher.authorities.get(authority_code, publisher.authority_name),
        "authority_code": authority_code,
        # The data comes from this deployment, whichever bureau issued the licence.
        "source_unit_name": publisher.source_unit_name or publisher.authority_name,
        "source_unit_code": publisher.source_unit_code or publisher.authority_code,
        "remark": _commitment_remark(approval),
        "region": approval.region,
        "case_no": approval.case_no,
    }
    try:
        return CreditLicensePublished.model_validate(data)
    except ValidationError as exc:
        raise NotPublishable(f"approval {approval.case_no}: {describe_validation_error(exc)}") from None


def encode_entry(envelope: Envelope, publisher: Publisher) -> dict[str, Any]:
    """The upload entry of one message, without its ``recordId``: ``{"kind", "version", "data"}``.

    ``version`` is the envelope's revision: the platform treats a higher version of a record it holds as an
    update (更正), and anything else under a new ``recordId`` as a second record.
    """
    payload = envelope.payload()
    if isinstance(payload, ApprovalDecided):
        kind, data = LICENSE_KIND, license_record(license_from_approval(payload, publisher))
    elif isinstance(payload, CreditLicensePublished):
        kind, data = LICENSE_KIND, license_record(payload)
    elif isinstance(payload, CreditPenaltyPublished):
        kind, data = PENALTY_KIND, penalty_record(payload)
    else:
        raise NotPublishable(f"the credit platform does not take {envelope.type}")
    return {"kind": kind, "version": envelope.revision, "data": data}


# -- the inverse, for round trips ------------------------------------------------------------------------------
def _parse_day(text: str | None) -> date | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y/%m/%d").date()


def _decode_party(prefix: str, data: Mapping[str, str]) -> dict[str, Any]:
    category = data.get(f"{prefix}XDR_LB")
    code = data.get(f"{prefix}XDR_SHXYM")
    if category == NATURAL_PERSON or code is None:
        raise NotPublishable(
            f"{prefix}XDR_*: a party without a 统一社会信用代码 cannot be decoded (no 证件号码 is sent)"
        )
    return {
        "kind": PartyKind.legal,
        "name": data.get(f"{prefix}XDR_MC"),
        "id_type": IdType.uscc,
        "business_registration_no": data.get(f"{prefix}XDR_GSZC"),
        "id_number": code,
        "legal_representative": data.get(f"{prefix}FRDB"),
    }


def _unless(value: str | None, default: str | None) -> str | None:
    """The 数据来源单位 as canonical: ``None`` when it is the authority itself (how ``*_record`` fills it in)."""
    return None if value == default else value


def _lookup(table: Mapping[Any, str], text: str | None, name: str) -> Any:
    for value, shown in table.items():
        if shown == text:
            return value
    raise NotPublishable(f"{name} {text!r} is not one of {', '.join(table.values())}")


def decode_entry(entry: Mapping[str, Any]) -> CreditLicensePublished | CreditPenaltyPublished:
    """An upload entry back to its canonical payload (organisations only; see ``_decode_party``)."""
    data: Mapping[str, str] = entry["data"]
    if entry["kind"] == LICENSE_KIND:
        valid_to = data.get("XK_YXQZI")
        fields: dict[str, Any] = {
            "document_no": data.get("XK_WSH"),
            "document_name": data.get("XK_XKWS"),
            "party": _decode_party("XK_", data),
            "category": _lookup(LICENSE_CATEGORY_TEXT, data.get("XK_XKLB"), "XK_XKLB"),
            "certificate_name": data.get("XK_XKZS"),
            "certificate_no": data.get("XK_XKBH"),
            "content": data.get("XK_NR"),
            "decided_on": _parse_day(data.get("XK_JDRQ")),
            "valid_from": _parse_day(data.get("XK_YXQZ")),
            "valid_to": None if valid_to == LONG_TERM else _parse_day(valid_to),
            "long_term": valid_to == LONG_TERM,
            "authority_name": data.get("XK_XKJG"),
            "authority_code": data.get("XK_XKJGDM"),
            "status": _lookup(_STATUS_TEXT, data.get("XK_ZT"), "XK_ZT"),
            "source_unit_name": _unless(data.get("XK_LYDW"), data.get("XK_XKJG")),
            "source_unit_code": _unless(data.get("XK_LYDWDM"), data.get("XK_XKJGDM")),
            "remark": data.get("BZ"),
        }
        return CreditLicensePublished.model_validate(fields)
    fine = data.get("CF_NR_FK")
    valid_until = data.get("CF_YXQ")
    fields = {
        "decision_no": data.get("CF_WSH"),
        "party": _decode_party("CF_", data),
        "violation_type": data.get("CF_WFXW"),
        "facts": data.get("CF_SY"),
        "legal_basis": data.get("CF_YJ"),
        "categories": [
            _lookup(PENALTY_CATEGORY_TEXT, text, "CF_CFLB") for text in (data.get("CF_CFLB") or "").split(";")
        ],
        "content": data.get("CF_NR"),
        "fine_yuan": yuan(fine) if fine is not None else None,
        "decided_on": _parse_day(data.get("CF_JDRQ")),
        "valid_until": None if valid_until == LONG_TERM else _parse_day(valid_until),
        "publish_until": _parse_day(data.get("CF_GSJZQ")),
        "authority_name": data.get("CF_CFJG"),
        "authority_code": data.get("CF_CFJGDM"),
        "source_unit_name": _unless(data.get("CF_SJLY"), data.get("CF_CFJG")),
        "source_unit_code": _unless(data.get("CF_SJLYDM"), data.get("CF_CFJGDM")),
        "remark": data.get("BZ"),
    }
    return CreditPenaltyPublished.model_validate(fields)
