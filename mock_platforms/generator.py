"""Seeded generator of realistic 办件 (case records) in 政务服务一体化平台's native 办件回传 format.

The generator is pure: the same arguments give the same records, byte for byte, so a failing soak test can be
replayed. It deliberately produces the awkward-but-legal shapes real feeds carry — N2… village-collective
credit codes, 个体工商户 (individual business) codes, ID numbers from retired 行政区划, ``""`` for absent
optional fields, ``2099-12-31`` for 长期 (no expiry) — plus exact duplicates and DATAVERSION re-reports placed
later in the feed, which are what a relay must absorb without double-reporting.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from functools import cache

from mock_platforms.catalog import (
    COMPANY_FORMS,
    GIVEN_NAME_CHARS,
    MOBILE_PREFIXES,
    PERMIT_ITEMS,
    PROMISE_TYPES,
    REGIONS,
    RETIRED_AREA_CODES,
    SECRET_LEVELS,
    SHOP_WORDS,
    SURNAMES,
    TRADE_NAMES,
    VILLAGE_NAMES,
    PermitItem,
    Region,
)
from mock_platforms.identifiers import make_ric, make_uscc

# Every field of one feed item, in the order the platform emits them. All values are strings.
BANJIAN_FIELDS: tuple[str, ...] = (
    "PROJID", "SERVICECODE", "SERVICENAME", "AREACODE", "APPLY_TYPE", "APPLYNAME", "APPLY_CARDTYPE",
    "APPLY_CARDNUMBER", "LEGALMAN", "CONTACT_PHONE", "RECEIVETIME", "TRANSACT_TIME", "TRANSACT_RESULT",
    "TRANSACT_DESCRIBE", "RESULT_CODE", "XK_WSH", "XK_XKWS", "XK_XKZS", "XK_YXQZ", "XK_YXQZI", "XK_XKJGDM",
    "PROMISE_TYPE", "PROMISE_PERIOD", "MJ", "DATAVERSION",
)

LONG_TERM = "2099-12-31"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_PERSONAL_ITEMS = tuple(p for p in PERMIT_ITEMS if p.personal_ok)

# Receive dates fall in a fixed window, never "now": determinism beats freshness for replayable tests.
_FIRST_DAY = date(2025, 1, 2)
_WINDOW_DAYS = 680


def generate_banjian(
    count: int,
    seed: int,
    *,
    duplicate_rate: float = 0.0,
    revision_rate: float = 0.0,
    secret_rate: float = 0.0,
    first_sequence: int = 1,
) -> list[dict[str, str]]:
    """Return a feed of ``count`` distinct business facts plus duplicates and revisions, in feed order.

    ``round(count * duplicate_rate)`` extra items are exact copies (same DATAVERSION, same content) of an
    earlier item; ``round(count * revision_rate)`` extra items re-report an earlier fact with DATAVERSION + 1
    and one changed field. Each extra is placed after the item it derives from, at a random later position,
    so a stale duplicate may even arrive after a newer revision — exactly the order a real re-sync produces.

    ``first_sequence`` is the 9-digit PROJID sequence of the first fact; the zwfw mock passes a running
    counter so repeated ``generate`` calls append new facts instead of re-emitting the same PROJIDs.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    facts = [_make_fact(rng, first_sequence + i, secret_rate) for i in range(count)]

    # (sort key, creation order, item): ties keep creation order, so a derived item never precedes its source.
    entries: list[tuple[float, int, dict[str, str]]] = [(float(i), i, f) for i, f in enumerate(facts)]
    latest: list[tuple[float, dict[str, str]]] = [(float(i), f) for i, f in enumerate(facts)]
    if count:
        kinds = ["dup"] * round(count * duplicate_rate) + ["rev"] * round(count * revision_rate)
        rng.shuffle(kinds)
        for kind in kinds:
            if kind == "rev":
                fact_index = rng.randrange(count)
                after, previous = latest[fact_index]
                item = _revise(rng, previous)
                key = rng.uniform(after, count)
                latest[fact_index] = (key, item)
            else:
                after, _, source = entries[rng.randrange(len(entries))]
                item = dict(source)
                key = rng.uniform(after, count)
            entries.append((key, len(entries), item))
    entries.sort(key=lambda e: (e[0], e[1]))
    return [item for _, _, item in entries]


def _make_fact(rng: random.Random, sequence: int, secret_rate: float) -> dict[str, str]:
    """Assemble one first-version 办件 for a freshly drawn applicant, item and outcome."""
    region = rng.choice(REGIONS)
    received, transacted = _case_times(rng)
    kind = _applicant_kind(rng)
    item = rng.choice(_PERSONAL_ITEMS if kind == "person" else PERMIT_ITEMS)
    applicant = _applicant(rng, region, kind, item)
    issuer = issuer_code(region.code)

    outcome = rng.random()
    fields = _decision(rng, region, item, transacted, outcome)
    promise_type, promise_period = "", ""
    if fields["TRANSACT_DESCRIBE"] == "准予许可" and rng.random() < 0.5:
        promise_type = rng.choice(PROMISE_TYPES)
        promise_period = rng.choices(("20", "10", ""), weights=(6, 3, 1))[0]
    mj = rng.choice(SECRET_LEVELS) if rng.random() < secret_rate else ("内部" if rng.random() < 0.05 else "")

    record = {
        "PROJID": f"{region.code}{received:%y%m%d}{sequence % 10**9:09d}",
        "SERVICECODE": issuer + item.item_code,
        "SERVICENAME": item.name,
        "AREACODE": region.code,
        **applicant,
        "CONTACT_PHONE": "" if rng.random() < 0.03 else _mobile(rng),
        "RECEIVETIME": f"{received:{DATETIME_FORMAT}}",
        "TRANSACT_TIME": f"{transacted:{DATETIME_FORMAT}}",
        **fields,
        "XK_XKJGDM": issuer,
        "PROMISE_TYPE": promise_type,
        "PROMISE_PERIOD": promise_period,
        "MJ": mj,
        "DATAVERSION": "1",
    }
    return {name: record[name] for name in BANJIAN_FIELDS}


@cache
def issuer_code(area_code: str) -> str:
    """The 统一社会信用代码 of a region's 行政审批局 (approval bureau), fixed per region."""
    return make_uscc(random.Random(f"issuer:{area_code}"), "11", area_code)


def _case_times(rng: random.Random) -> tuple[datetime, datetime]:
    """Draw 受理 (receive) and 办结 (transact) times on working hours, transact strictly later."""
    day = _next_weekday(_FIRST_DAY + timedelta(days=rng.randrange(_WINDOW_DAYS)))
    received = datetime.combine(day, time(8, 30)) + timedelta(seconds=rng.randrange(8 * 3600))
    transacted = received + timedelta(days=rng.randrange(0, 16), seconds=rng.randrange(600, 4 * 3600))
    transacted = datetime.combine(_next_weekday(transacted.date()), transacted.time())
    return received, transacted


def _next_weekday(day: date) -> date:
    """Move a Saturday or Sunday to the following Monday: bureaus decide on working days."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _applicant_kind(rng: random.Random) -> str:
    """~80% 企业 (of which ~3% of all are N2 village collectives, ~12% 92 个体工商户), ~20% 个人."""
    draw = rng.random()
    for kind, threshold in (("collective", 0.03), ("individual", 0.15), ("company", 0.80)):
        if draw < threshold:
            return kind
    return "person"


def _applicant(rng: random.Random, region: Region, kind: str, item: PermitItem) -> dict[str, str]:
    """The applicant fields for one kind of applicant; company names fit the permit item's industry."""
    place = region.district or region.city
    legal_man = person_name(rng)
    if kind == "collective":
        village = rng.choice(VILLAGE_NAMES)
        suffix = rng.choice(("村股份经济合作社", "村经济合作社"))
        name, code = f"{region.name}{village}{suffix}", make_uscc(rng, "N2", region.code)
    elif kind == "individual":
        name, code = f"{place}{legal_man}{rng.choice(SHOP_WORDS)}", make_uscc(rng, "92", region.code)
    elif kind == "company":
        name, code = _company_name(rng, region, item), make_uscc(rng, "91", region.code)
    else:
        birth = date(1955, 1, 1) + timedelta(days=rng.randrange(48 * 365))
        area = rng.choice(RETIRED_AREA_CODES) if rng.random() < 0.1 else region.code
        return {
            "APPLY_TYPE": "1",
            "APPLYNAME": legal_man,
            "APPLY_CARDTYPE": "111",
            "APPLY_CARDNUMBER": make_ric(rng, area, birth, male=rng.random() < 0.5),
            "LEGALMAN": "" if rng.random() < 0.3 else legal_man,
        }
    return {
        "APPLY_TYPE": "2",
        "APPLYNAME": name,
        "APPLY_CARDTYPE": "001",
        "APPLY_CARDNUMBER": code,
        "LEGALMAN": legal_man,
    }


def _company_name(rng: random.Random, region: Region, item: PermitItem) -> str:
    """Region + 字号 + industry + form; sometimes the 字号（城市）行业 form, 全角 brackets."""
    trade = rng.choice(TRADE_NAMES)
    industry = rng.choice(item.industries)
    form = rng.choice(COMPANY_FORMS)
    if rng.random() < 0.1:
        return f"{trade}（{region.city}）{industry}{form}"
    return f"{region.city}{region.district}{trade}{industry}{form}"


def person_name(rng: random.Random) -> str:
    """A common surname plus one or two given-name characters."""
    given = "".join(rng.choice(GIVEN_NAME_CHARS) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def _mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _decision(
    rng: random.Random, region: Region, item: PermitItem, transacted: datetime, outcome: float
) -> dict[str, str]:
    """The outcome fields: ~90% 准予许可 with certificate and validity, ~5% 不予许可, ~5% 退件."""
    year = transacted.year
    doc_no = f"{region.abbrev}审批{item.doc_abbrev}〔{year}〕{rng.randrange(1, 10000)}号"
    empty = {"RESULT_CODE": "", "XK_WSH": "", "XK_XKWS": "", "XK_XKZS": "", "XK_YXQZ": "", "XK_YXQZI": ""}
    if outcome < 0.05:
        reason = rng.choice(("申请材料不齐全，予以退件", "申请人主动撤回申请", "不属于本机关受理范围"))
        return {"TRANSACT_RESULT": "退件", "TRANSACT_DESCRIBE": reason, **empty}
    if outcome < 0.10:
        return {
            "TRANSACT_RESULT": "办结",
            "TRANSACT_DESCRIBE": "不予许可",
            **empty,
            "XK_WSH": doc_no,
            "XK_XKWS": "不予行政许可决定书",
        }
    valid_from = transacted.date()
    if rng.random() < 0.1:
        valid_to = LONG_TERM
    else:
        valid_to = f"{_add_years(valid_from, item.years) - timedelta(days=1):%Y-%m-%d}"
    if item.cert_prefix == "JY":
        certificate = f"JY{rng.choice('123')}{region.code}{rng.randrange(10**7):07d}"
    else:
        certificate = f"{region.abbrev}{item.doc_abbrev}{year}{rng.randrange(10**6):06d}"
    return {
        "TRANSACT_RESULT": "办结",
        "TRANSACT_DESCRIBE": "准予许可",
        "RESULT_CODE": certificate,
        "XK_WSH": doc_no,
        "XK_XKWS": item.decision_name,
        "XK_XKZS": item.certificate_name,
        "XK_YXQZ": f"{valid_from:%Y-%m-%d}",
        "XK_YXQZI": valid_to,
    }


def _add_years(day: date, years: int) -> date:
    """Same calendar day ``years`` later; 29 February falls back to 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _revise(rng: random.Random, previous: dict[str, str]) -> dict[str, str]:
    """A 重报 (re-report): DATAVERSION + 1 and one corrected field, as a bureau's data steward would send."""
    item = dict(previous)
    item["DATAVERSION"] = str(int(previous["DATAVERSION"]) + 1)
    choice = rng.choice(("phone", "validity", "describe"))
    if choice == "validity" and item["XK_YXQZI"] not in ("", LONG_TERM):
        valid_to = date.fromisoformat(item["XK_YXQZI"])
        item["XK_YXQZI"] = f"{_add_years(valid_to, 1):%Y-%m-%d}"
    elif choice == "describe":
        item["TRANSACT_DESCRIBE"] = previous["TRANSACT_DESCRIBE"] + "（更正）"
    else:
        phone = _mobile(rng)
        while phone == previous["CONTACT_PHONE"]:
            phone = _mobile(rng)
        item["CONTACT_PHONE"] = phone
    return item
