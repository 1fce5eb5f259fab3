"""The 办件 generator: deterministic, realistic, and with duplicates/revisions where the contract says."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime

import pytest
from stdnum.cn import ric, uscc

from mock_platforms.catalog import REGIONS, RETIRED_AREA_CODES
from mock_platforms.generator import BANJIAN_FIELDS, LONG_TERM, generate_banjian
from mock_platforms.identifiers import org_code_check_char, ric_check_char, uscc_check_char

REGION_CODES = {r.code for r in REGIONS}


@pytest.fixture(scope="module")
def big_feed() -> list[dict[str, str]]:
    return generate_banjian(2000, 11)


def test_same_seed_same_records_and_different_seed_differs() -> None:
    a = generate_banjian(200, 7, duplicate_rate=0.1, revision_rate=0.05, secret_rate=0.1)
    b = generate_banjian(200, 7, duplicate_rate=0.1, revision_rate=0.05, secret_rate=0.1)
    c = generate_banjian(200, 8, duplicate_rate=0.1, revision_rate=0.05, secret_rate=0.1)
    assert json.dumps(a, ensure_ascii=False) == json.dumps(b, ensure_ascii=False)
    assert a != c


def test_every_item_has_exactly_the_native_fields_all_strings(big_feed: list[dict[str, str]]) -> None:
    for item in big_feed:
        assert tuple(item) == BANJIAN_FIELDS
        assert all(isinstance(v, str) for v in item.values())


def test_projid_is_region_date_sequence_and_unique_per_fact(big_feed: list[dict[str, str]]) -> None:
    ids = [i["PROJID"] for i in big_feed]
    assert len(set(ids)) == len(ids) == 2000
    for item in big_feed:
        projid = item["PROJID"]
        assert len(projid) == 21 and projid.isdigit()
        assert projid[:6] == item["AREACODE"] in REGION_CODES
        assert projid[6:12] == datetime.strptime(item["RECEIVETIME"], "%Y-%m-%d %H:%M:%S").strftime("%y%m%d")


def test_first_sequence_moves_projids(big_feed: list[dict[str, str]]) -> None:
    later = generate_banjian(5, 11, first_sequence=2001)
    assert [i["PROJID"][-9:] for i in later] == [f"{n:09d}" for n in range(2001, 2006)]


def test_credit_codes_are_checksum_valid_with_n2_and_92_present(big_feed: list[dict[str, str]]) -> None:
    companies = [i for i in big_feed if i["APPLY_TYPE"] == "2"]
    assert 0.7 < len(companies) / len(big_feed) < 0.9
    prefixes = Counter(i["APPLY_CARDNUMBER"][:2] for i in companies)
    assert set(prefixes) == {"91", "92", "N2"}
    assert 0.015 < prefixes["N2"] / len(big_feed) < 0.05
    for item in companies:
        code = item["APPLY_CARDNUMBER"]
        assert item["APPLY_CARDTYPE"] == "001"
        assert len(code) == 18
        # stdnum's own checksum (its prefix rule would wrongly reject N2… codes, see DESIGN §5).
        assert uscc.calc_check_digit(code[:17]) == code[17]
        assert org_code_check_char(code[8:16]) == code[16]
        assert code[2:8] == item["AREACODE"]
    issuers = {i["XK_XKJGDM"] for i in big_feed}
    assert all(uscc.is_valid(code) and code.startswith("11") for code in issuers)
    assert all(i["SERVICECODE"].startswith(i["XK_XKJGDM"]) and len(i["SERVICECODE"]) == 28 for i in big_feed)


def test_id_numbers_are_checksum_valid_with_plausible_birth_and_some_retired_areas(
    big_feed: list[dict[str, str]],
) -> None:
    people = [i for i in big_feed if i["APPLY_TYPE"] == "1"]
    assert people
    retired = 0
    for item in people:
        number = item["APPLY_CARDNUMBER"]
        assert item["APPLY_CARDTYPE"] == "111"
        assert ric.calc_check_digit(number) == number[17]
        birth = datetime.strptime(number[6:14], "%Y%m%d").date()
        assert date(1950, 1, 1) < birth < date(2008, 1, 1)
        retired += number[:6] in RETIRED_AREA_CODES
    assert retired > 0


def test_check_digit_helpers_agree_with_stdnum() -> None:
    assert uscc_check_char("91320700MA1X2Y3K0") == uscc.calc_check_digit("91320700MA1X2Y3K0")
    assert ric_check_char("11010519491231002") == "X"
    assert ric.is_valid("11010519491231002X")


def test_times_phones_outcomes_validity_and_promises_look_real(big_feed: list[dict[str, str]]) -> None:
    for item in big_feed:
        received = datetime.strptime(item["RECEIVETIME"], "%Y-%m-%d %H:%M:%S")
        transacted = datetime.strptime(item["TRANSACT_TIME"], "%Y-%m-%d %H:%M:%S")
        assert received < transacted
        phone = item["CONTACT_PHONE"]
        assert phone == "" or (len(phone) == 11 and phone.isdigit() and phone[0] == "1")
        assert item["PROMISE_TYPE"] in ("", "材料延期", "材料核验", "事后核查")
        assert item["PROMISE_PERIOD"] in ("", "10", "20")
        assert item["MJ"] in ("", "内部")
        assert item["DATAVERSION"] == "1"
        if item["TRANSACT_DESCRIBE"] == "准予许可":
            assert item["XK_YXQZ"] == transacted.strftime("%Y-%m-%d")
            assert item["XK_YXQZI"] == LONG_TERM or item["XK_YXQZI"] > item["XK_YXQZ"]
    outcomes = Counter((i["TRANSACT_RESULT"], i["TRANSACT_DESCRIBE"] == "准予许可") for i in big_feed)
    assert outcomes[("办结", True)] / len(big_feed) > 0.8
    assert outcomes[("退件", False)] > 0 and outcomes[("办结", False)] > 0
    long_term = sum(i["XK_YXQZI"] == LONG_TERM for i in big_feed) / len(big_feed)
    assert 0.05 < long_term < 0.15
    assert 0.3 < sum(i["PROMISE_TYPE"] == "" for i in big_feed) / len(big_feed) < 0.7


def test_duplicates_and_revisions_follow_their_source() -> None:
    feed = generate_banjian(400, 3, duplicate_rate=0.1, revision_rate=0.05)
    assert len(feed) == 400 + 40 + 20
    assert len({i["PROJID"] for i in feed}) == 400
    seen: dict[str, list[dict[str, str]]] = {}
    duplicates = revisions = 0
    for item in feed:
        earlier = seen.setdefault(item["PROJID"], [])
        if earlier:
            if item in earlier:
                duplicates += 1
            else:
                revisions += 1
                latest = max(int(e["DATAVERSION"]) for e in earlier)
                assert int(item["DATAVERSION"]) == latest + 1
                previous = next(e for e in earlier if int(e["DATAVERSION"]) == latest)
                changed = {k for k in item if item[k] != previous[k]}
                assert "DATAVERSION" in changed and len(changed) == 2
                assert changed - {"DATAVERSION"} <= {"CONTACT_PHONE", "XK_YXQZI", "TRANSACT_DESCRIBE"}
        else:
            assert item["DATAVERSION"] == "1"  # the first appearance of a fact is always its original
        earlier.append(item)
    assert (duplicates, revisions) == (40, 20)


def test_secret_rate_sets_classified_levels() -> None:
    assert {i["MJ"] for i in generate_banjian(50, 1, secret_rate=1.0)} <= {"秘密", "机密", "绝密"}
    assert not any(i["MJ"] in ("秘密", "机密", "绝密") for i in generate_banjian(300, 1))


def test_zero_count_is_empty() -> None:
    assert generate_banjian(0, 1, duplicate_rate=0.5, revision_rate=0.5) == []
