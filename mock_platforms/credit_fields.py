"""The 双公示 national field sets as the fake 公共信用信息平台 checks them, one record at a time.

A real credit platform judges every record of a batch on its own and answers with a verdict per record; the
checks here are the ones such platforms are known for (DESIGN §3): required fields, the closed value lists
(相对人类别, 许可类别, 处罚类别), dates written ``YYYY/MM/DD`` (``2099/12/31`` means 长期), fines in 万元 as
decimal text, and the 统一社会信用代码 checked *more strictly* than the gateway does — besides the GB 32100
check character, the 登记管理部门码 / 机构类别码 pair must be one the standard defines. The gateway checks the
check character only (a registry rule it does not own must never make it lose a record), so a code with a
valid check character and an undefined category passes the gateway and is refused here, with a reason: the
realistic way a record dies at the receiver.

Values are never echoed in reasons, only field names and what is wrong, like the platforms' own messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from mock_platforms.identifiers import USCC_ALPHABET, uscc_check_char

__all__ = [
    "LICENSE",
    "PENALTY",
    "InvalidRecord",
    "RecordKind",
    "ValidRecord",
    "check_uscc",
    "validate_record",
]

PARTY_CATEGORIES = frozenset({"法人及非法人组织", "自然人", "个体工商户"})
LICENSE_CATEGORIES = frozenset({"普通", "特许", "认可", "核准", "登记", "其他"})
LICENSE_STATES = frozenset({"1", "2"})  # 1 有效, 2 无效
PENALTY_CATEGORIES = frozenset(
    (
        "警告 通报批评 罚款 没收违法所得 没收非法财物 暂扣许可证件 降低资质等级 吊销许可证件 "
        "限制开展生产经营活动 责令停产停业 责令关闭 限制从业 行政拘留 其他"
    ).split()
)
PLACEHOLDER_USCC = "0" * 17 + "X"  # a 个体工商户 without a USCC, identified by its 工商注册号 instead

# GB 32100-2015 Appendix A: each 登记管理部门码 (first character) and the 机构类别码 (second) it may issue.
USCC_CATEGORIES: dict[str, str] = {
    "1": "1239",  # 机构编制: 机关, 事业单位, 群众团体, 其他
    "2": "19",  # 外交
    "3": "123459",  # 司法行政: 律师事务所, 公证处, 基层法律服务所, 司法鉴定机构, 仲裁委员会, 其他
    "4": "19",  # 文化
    "5": "1239",  # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "6": "129",  # 旅游
    "7": "129",  # 宗教
    "8": "19",  # 工会
    "9": "123",  # 工商: 企业, 个体工商户, 农民专业合作社
    "A": "19",  # 中央军委改革和编制办公室
    "N": "1239",  # 农业: 组级, 村级, 乡镇级集体经济组织, 其他
    "Y": "1",  # 其他
}

_DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")
_WAN_YUAN = re.compile(r"^\d{1,10}(\.\d{1,6})?$")


class InvalidRecord(ValueError):
    """A record refused for its content; ``field`` is the native field the reason is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class RecordKind:
    """One of the two field sets: its code in the upload (``XK``/``CF``), fields, and key."""

    code: str
    name: str
    allowed: frozenset[str]
    required: frozenset[str]
    prefix: str  # of every field but BZ


LICENSE = RecordKind(
    code="XK",
    name="行政许可",
    allowed=frozenset(
        (
            "XK_XDR_MC XK_XDR_LB XK_XDR_SHXYM XK_XDR_GSZC XK_FRDB XK_XKWS XK_WSH "
            "XK_XKLB XK_XKZS XK_XKBH XK_NR XK_JDRQ XK_YXQZ XK_YXQZI XK_XKJG "
            "XK_XKJGDM XK_ZT XK_LYDW XK_LYDWDM BZ"
        ).split()
    ),
    required=frozenset(
        (
            "XK_XDR_MC XK_XDR_LB XK_XKWS XK_WSH XK_XKLB XK_NR XK_JDRQ XK_YXQZ "
            "XK_YXQZI XK_XKJG XK_XKJGDM XK_ZT XK_LYDW XK_LYDWDM"
        ).split()
    ),
    prefix="XK_",
)
PENALTY = RecordKind(
    code="CF",
    name="行政处罚",
    allowed=frozenset(
        (
            "CF_XDR_MC CF_XDR_LB CF_XDR_SHXYM CF_XDR_GSZC CF_FRDB CF_WSH CF_WFXW "
            "CF_SY CF_YJ CF_CFLB CF_NR CF_NR_FK CF_JDRQ CF_YXQ CF_GSJZQ CF_CFJG "
            "CF_CFJGDM CF_SJLY CF_SJLYDM BZ"
        ).split()
    ),
    required=frozenset(
        (
            "CF_XDR_MC CF_XDR_LB CF_WSH CF_WFXW CF_SY CF_YJ CF_CFLB CF_NR CF_JDRQ "
            "CF_YXQ CF_CFJG CF_CFJGDM CF_SJLY CF_SJLYDM"
        ).split()
    ),
    prefix="CF_",
)
KINDS = {LICENSE.code: LICENSE, PENALTY.code: PENALTY}


@dataclass(frozen=True, slots=True)
class ValidRecord:
    """A record that passed: its kind, the business key the platform files it under, and its version."""

    kind: RecordKind
    key: str
    version: int
    data: dict[str, str]


def check_uscc(field: str, value: str) -> None:
    """GB 32100: 18 characters of the alphabet, digits for the area, a defined category pair, check character."""
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value):
        raise InvalidRecord(field, "统一社会信用代码须为 18 位，且只含数字和大写字母（不含 I、O、S、V、Z）")
    categories = USCC_CATEGORIES.get(value[0])
    if categories is None:
        raise InvalidRecord(field, "统一社会信用代码登记管理部门码无效")
    if value[1] not in categories:
        raise InvalidRecord(field, "统一社会信用代码机构类别码与登记管理部门码不匹配")
    if not value[2:8].isdigit():
        raise InvalidRecord(field, "统一社会信用代码登记管理机关行政区划码须为 6 位数字")
    if uscc_check_char(value[:17]) != value[17]:
        raise InvalidRecord(field, "统一社会信用代码校验码错误")


def _day(field: str, value: str) -> date:
    match = _DATE.match(value)
    if match is None:
        raise InvalidRecord(field, "日期格式须为 YYYY/MM/DD")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise InvalidRecord(field, "日期不存在") from None


def _texts(kind: RecordKind, data: Any) -> dict[str, str]:
    """The record's fields as stripped strings, blanks dropped; refuses non-strings and unknown fields."""
    if not isinstance(data, dict):
        raise InvalidRecord("data", f"{kind.name}记录须为 JSON 对象")
    texts: dict[str, str] = {}
    for name, value in data.items():
        if name not in kind.allowed:
            raise InvalidRecord(str(name)[:40], f"不是{kind.name}数据项")
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRecord(name, "须为字符串")
        if value.strip():
            texts[name] = value.strip()
    missing = sorted(kind.required - texts.keys())
    if missing:
        raise InvalidRecord(missing[0], "必填项为空")
    return texts


def _party(kind: RecordKind, texts: dict[str, str]) -> str:
    """Check the 行政相对人 fields; returns the part of the key that names the party."""
    p = kind.prefix
    category = texts[f"{p}XDR_LB"]
    if category not in PARTY_CATEGORIES:
        raise InvalidRecord(f"{p}XDR_LB", "须为 法人及非法人组织、自然人 或 个体工商户")
    code = texts.get(f"{p}XDR_SHXYM")
    if category == "自然人":
        if code is not None:
            raise InvalidRecord(f"{p}XDR_SHXYM", "自然人不填统一社会信用代码")
        return texts[f"{p}XDR_MC"]
    if code is None:
        raise InvalidRecord(f"{p}XDR_SHXYM", f"{category}须填统一社会信用代码")
    if code == PLACEHOLDER_USCC:
        if category != "个体工商户" or f"{p}XDR_GSZC" not in texts:
            raise InvalidRecord(f"{p}XDR_SHXYM", "17 个 0 加 X 仅限填写了工商注册号的个体工商户")
        return texts[f"{p}XDR_GSZC"]
    check_uscc(f"{p}XDR_SHXYM", code)
    if category == "法人及非法人组织" and f"{kind.prefix}FRDB" not in texts:
        raise InvalidRecord(f"{kind.prefix}FRDB", "法人及非法人组织须填法定代表人")
    return code


def _license(texts: dict[str, str]) -> str:
    party = _party(LICENSE, texts)
    if texts["XK_XKLB"] not in LICENSE_CATEGORIES:
        raise InvalidRecord("XK_XKLB", "须为 普通、特许、认可、核准、登记 或 其他")
    if texts["XK_ZT"] not in LICENSE_STATES:
        raise InvalidRecord("XK_ZT", "须为 1（有效）或 2（无效）")
    _day("XK_JDRQ", texts["XK_JDRQ"])
    start = _day("XK_YXQZ", texts["XK_YXQZ"])
    if _day("XK_YXQZI", texts["XK_YXQZI"]) < start:
        raise InvalidRecord("XK_YXQZI", "有效期至早于有效期自")
    check_uscc("XK_XKJGDM", texts["XK_XKJGDM"])
    check_uscc("XK_LYDWDM", texts["XK_LYDWDM"])
    return f"XK|{texts['XK_WSH']}|{party}"


def _penalty(texts: dict[str, str]) -> str:
    _party(PENALTY, texts)
    categories = texts["CF_CFLB"].split(";")
    if any(c not in PENALTY_CATEGORIES for c in categories) or len(set(categories)) != len(categories):
        raise InvalidRecord("CF_CFLB", "处罚类别须为行政处罚法规定的种类，多个以英文分号分隔且不重复")
    fine = texts.get("CF_NR_FK")
    if fine is not None and not _WAN_YUAN.match(fine):
        raise InvalidRecord("CF_NR_FK", "罚款金额须为以万元为单位的数字，最多 6 位小数")
    if "罚款" in categories and (fine is None or Decimal(fine) <= 0):
        raise InvalidRecord("CF_NR_FK", "处罚类别含罚款时须填罚款金额（万元）")
    decided = _day("CF_JDRQ", texts["CF_JDRQ"])
    if _day("CF_YXQ", texts["CF_YXQ"]) < decided:
        raise InvalidRecord("CF_YXQ", "处罚有效期早于处罚决定日期")
    if "CF_GSJZQ" in texts and _day("CF_GSJZQ", texts["CF_GSJZQ"]) < decided:
        raise InvalidRecord("CF_GSJZQ", "公示截止期早于处罚决定日期")
    check_uscc("CF_CFJGDM", texts["CF_CFJGDM"])
    check_uscc("CF_SJLYDM", texts["CF_SJLYDM"])
    return f"CF|{texts['CF_WSH']}"


def validate_record(entry: Any) -> ValidRecord:
    """One entry of an upload — ``{"recordId", "kind", "version", "data"}`` — checked, or ``InvalidRecord``.

    The key is what the platform files a record under: 行政许可 by 决定文书号 and 相对人 (its code, its
    工商注册号 for a 个体工商户 without one, or a natural person's name), 行政处罚 by 决定书文号.
    """
    if not isinstance(entry, dict):
        raise InvalidRecord("record", "记录须为 JSON 对象")
    code = entry.get("kind")
    kind = KINDS.get(code) if isinstance(code, str) else None
    if kind is None:
        raise InvalidRecord("kind", "须为 XK（行政许可）或 CF（行政处罚）")
    version = entry.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidRecord("version", "须为不小于 1 的整数")
    texts = _texts(kind, entry.get("data"))
    key = _license(texts) if kind is LICENSE else _penalty(texts)
    return ValidRecord(kind, key, version, texts)
