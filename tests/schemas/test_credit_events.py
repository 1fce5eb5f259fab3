"""credit.license.published and credit.penalty.published: keys, validity rules and money in 元 without floats."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import CreditLicensePublished, CreditPenaltyPublished, Envelope, event_types

ISSUER = "11320700MB12345679"
PARTY = {"kind": "legal", "name": "某某餐饮有限公司", "id_type": "uscc", "id_number": "91320700MA1X2Y3K05"}


def license_(**changes: Any) -> CreditLicensePublished:
    data: dict[str, Any] = {
        "document_no": "连审批食经〔2026〕1234号",
        "party": PARTY,
        "content": "食品经营许可",
        "decided_on": "2026-11-20",
        "valid_from": "2026-11-20",
        "valid_to": "2031-11-19",
        "authority_name": "连云港市行政审批局",
        "authority_code": ISSUER,
    }
    return CreditLicensePublished.model_validate(data | changes)


def penalty(**changes: Any) -> CreditPenaltyPublished:
    data: dict[str, Any] = {
        "decision_no": "连市监罚〔2026〕88号",
        "party": PARTY,
        "violation_type": "经营超过保质期的食品",
        "facts": "超过保质期的食品 12 件",
        "legal_basis": "《食品安全法》第一百二十四条",
        "categories": ["warning", "fine"],
        "content": "警告，罚款五千元",
        "fine_yuan": "5000",
        "decided_on": "2026-11-20",
        "authority_name": "连云港市市场监督管理局",
        "authority_code": ISSUER,
    }
    return CreditPenaltyPublished.model_validate(data | changes)


def test_both_types_are_registered_and_keyed_by_their_document_number() -> None:
    assert {"credit.license.published", "credit.penalty.published"} <= set(event_types())
    assert Envelope.wrap(license_(), source="x").business_key == "连审批食经〔2026〕1234号"
    assert Envelope.wrap(penalty(), source="x").business_key == "连市监罚〔2026〕88号"


def test_business_time_is_the_decision_day_in_beijing_unless_recorded_at_is_given() -> None:
    assert license_().business_time().isoformat() == "2026-11-20T00:00:00+08:00"
    recorded = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    assert penalty(recorded_at=recorded).business_time() == recorded


def test_license_validity_long_term_xor_end_date() -> None:
    assert license_(valid_to=None, long_term=True).long_term
    with pytest.raises(ValidationError, match="long_term"):
        license_(long_term=True)
    with pytest.raises(ValidationError, match="valid_to is required"):
        license_(valid_to=None)
    with pytest.raises(ValidationError, match="before valid_from"):
        license_(valid_to=date(2020, 1, 1))


def test_fines_are_exact_decimals_in_yuan_with_one_spelling() -> None:
    assert penalty(fine_yuan="5000").fine_yuan == Decimal("5000.00")
    assert penalty(fine_yuan="5000").model_dump(mode="json")["fine_yuan"] == "5000.00"
    assert (
        Envelope.wrap(penalty(fine_yuan="5000"), source="x").content_hash
        == Envelope.wrap(penalty(fine_yuan="5000.00"), source="x").content_hash
    ), "the same amount hashes alike however it was written"
    for bad in ("12.345", "-1", "NaN", "Infinity"):
        with pytest.raises(ValidationError, match="fine_yuan"):
            penalty(fine_yuan=bad)


def test_fine_and_categories_agree() -> None:
    with pytest.raises(ValidationError, match="needs fine_yuan"):
        penalty(fine_yuan=None)
    with pytest.raises(ValidationError, match="no 罚款"):
        penalty(categories=["warning"])
    with pytest.raises(ValidationError, match="twice"):
        penalty(categories=["fine", "fine"])
    with pytest.raises(ValidationError):
        penalty(categories=[])
    with pytest.raises(ValidationError, match="valid_until"):
        penalty(valid_until="2026-01-01")


def test_parties_and_authorities_are_checked_like_everywhere_else() -> None:
    with pytest.raises(ValidationError, match="check character"):
        penalty(authority_code="11320700MB12345670")
    with pytest.raises(ValidationError, match="check character"):
        license_(party=PARTY | {"id_number": "91320700MA1X2Y3K06"})
