"""Identifier checks: 统一社会信用代码, 身份证号, 行政区划代码."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import Party, describe_validation_error
from schemas.identifiers import (
    USCC_ALPHABET,
    check_region_code,
    check_resident_id,
    check_uscc,
    mask_id_number,
    mask_phone,
    uscc_check_char,
)


def with_check(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def rid(first17: str) -> str:
    from stdnum.cn import ric

    return first17 + ric.calc_check_digit(first17 + "0")


def test_valid_enterprise_code() -> None:
    assert check_uscc("91320700MA1X2Y3K05") == "91320700MA1X2Y3K05"


@pytest.mark.parametrize("prefix", ["N2320706MA", "A1110000MB", "Y1320700MC", "92320706MA"])
def test_codes_stdnum_rejects_by_prefix_are_valid_here(prefix: str) -> None:
    code = with_check(prefix + "1X2Y3K0")
    assert check_uscc(code) == code


def test_bad_check_character_names_expected() -> None:
    with pytest.raises(ValueError, match=r"check character is '6', expected '5'"):
        check_uscc("91320700MA1X2Y3K06")


@pytest.mark.parametrize(
    ("code", "reason"),
    [("9132070", "18 characters"), ("91320700MA1X2Y3KO5", "charset"), ("B1320700MA1X2Y3K05", "authority")],
)
def test_malformed_codes(code: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_uscc(code)


@given(st.text(alphabet=USCC_ALPHABET, min_size=16, max_size=16), st.sampled_from("123456789ANY"))
def test_any_code_with_its_check_char_passes_and_any_other_char_fails(body: str, first: str) -> None:
    code = with_check(first + body)
    assert check_uscc(code) == code
    wrong = next(c for c in USCC_ALPHABET if c != code[-1])
    with pytest.raises(ValueError, match="check character"):
        check_uscc(code[:-1] + wrong)


def individual(code: str, regno: str | None) -> dict:
    return {
        "kind": "legal",
        "name": "某某小吃店",
        "id_type": "uscc",
        "id_number": code,
        "business_registration_no": regno,
    }


def test_placeholder_code_needs_a_business_registration_number() -> None:
    assert Party.model_validate(individual("00000000000000000X", "320706600123456")).id_number.endswith("X")
    with pytest.raises(ValidationError) as err:
        Party.model_validate(individual("00000000000000000X", None))
    assert "id_number: 统一社会信用代码 00000000000000000X is only valid" in describe_validation_error(err.value)


def test_party_error_names_the_field_and_reason_without_the_value() -> None:
    with pytest.raises(ValidationError) as err:
        Party.model_validate(individual("91320700MA1X2Y3K06", None))
    text = describe_validation_error(err.value, prefix="applicant")
    assert text == "applicant.id_number: 统一社会信用代码 check character is '6', expected '5'"


def test_fullwidth_and_lowercase_input_is_normalised() -> None:
    party = Party.model_validate(individual("９１３２０７００ma1x2y3k05", None))
    assert party.id_number == "91320700MA1X2Y3K05"


def test_resident_id_checksum_and_retired_area_code() -> None:
    assert check_resident_id(rid("11010519491231002")) == "11010519491231002X"
    retired = rid("32072119800101123")  # 320721 赣榆县, retired in 2014: still a valid number
    assert check_resident_id(retired) == retired
    with pytest.raises(ValueError, match="check digit"):
        check_resident_id("110105194912310021")
    with pytest.raises(ValueError, match="birth date"):
        check_resident_id(rid("11010519491331002"))


@given(st.from_regex(r"\A[1-6]\d{5}(19[5-9]\d|200\d)(0[1-9]|1[0-2])(0[1-9]|1\d|2[0-8])\d{3}\Z"))
def test_every_checksummed_id_passes(first17: str) -> None:
    assert check_resident_id(rid(first17)) == rid(first17)


def test_region_codes() -> None:
    assert check_region_code("320706") == "320706"
    for bad in ("32070", "32070A", "000000"):
        with pytest.raises(ValueError):
            check_region_code(bad)


def test_masks() -> None:
    assert mask_id_number("11010519491231002X") == "110105***********X"
    assert mask_phone("13800138000") == "138****8000"
