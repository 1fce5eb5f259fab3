"""The standard awkward inputs every source adapter must survive (DESIGN §6), made from one valid sample.

Singer's SDK ships a corpus of inputs each target must survive; ours is generated instead of listed, so it
fits any dict-shaped native format: every function takes one valid native record (a ``dict``) and returns
variants, each a ``CorpusCase`` whose ``name`` says what was changed. A decoder must turn each variant into
valid envelopes or raise ``DecodeError`` — a ``KeyError``, ``TypeError`` or ``ValueError`` escaping it
would crash a poll instead of storing one rejected record.

Case names carry field names, never values: they appear in test reports, and values may be personal data.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CorpusCase",
    "blank_each_field",
    "broken_json",
    "drop_each_field",
    "fullwidth_strings",
    "long_term_validity",
    "non_object_payloads",
    "null_each_field",
    "placeholder_codes",
    "retired_area_codes",
    "special_characters",
    "standard_corpus",
    "time_variants",
    "to_fullwidth",
    "wrong_type_each_field",
]

Native = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CorpusCase:
    """One awkward input: a short name (what was changed, no values) and the payload to decode."""

    name: str
    payload: Any


def _with(sample: Native, key: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(dict(sample))
    changed[key] = value
    return changed


def _leaf_strings(sample: Native) -> Iterator[tuple[str, str]]:
    """Top-level keys whose values are strings (nested objects are varied as a whole by the other families)."""
    for key, value in sample.items():
        if isinstance(value, str):
            yield key, value


# -- empty, missing and wrongly typed fields ---------------------------------------------------------------
def blank_each_field(sample: Native) -> list[CorpusCase]:
    """Each field in turn sent as ``""`` (how platforms write an absent optional value), and all at once."""
    cases = [CorpusCase(f"{key} = ''", _with(sample, key, "")) for key in sample]
    cases.append(CorpusCase("every field = ''", dict.fromkeys(sample, "")))
    return cases


def null_each_field(sample: Native) -> list[CorpusCase]:
    """Each field in turn sent as ``null`` — the other way platforms write an absent value — and all at once."""
    cases = [CorpusCase(f"{key} = null", _with(sample, key, None)) for key in sample]
    cases.append(CorpusCase("every field = null", dict.fromkeys(sample)))
    return cases


def drop_each_field(sample: Native) -> list[CorpusCase]:
    """Each field removed in turn (a missing required field must be a ``DecodeError``), and an empty object."""
    cases = [CorpusCase(f"{key} missing", {k: v for k, v in sample.items() if k != key}) for key in sample]
    cases.append(CorpusCase("empty object", {}))
    return cases


def _huge_int() -> int:
    # Built from a string would trip Python's int max-str-digits; arithmetic does not.
    return 10**5000 + 7


def wrong_type_each_field(sample: Native) -> list[CorpusCase]:
    """Each field replaced by a list, an object, a boolean, a float, an integer and a huge integer."""
    kinds: list[tuple[str, Any]] = [
        ("a list", ["x"]),
        ("an object", {"value": "x"}),
        ("a boolean", True),
        ("a float", 1.5),
        ("an integer", 7),
        ("a 5000-digit integer", _huge_int()),
    ]
    return [
        CorpusCase(f"{key} is {label}", _with(sample, key, copy.deepcopy(value)))
        for key in sample
        for label, value in kinds
    ]


# -- encodings and characters ------------------------------------------------------------------------------
def to_fullwidth(text: str) -> str:
    """ASCII letters, digits and punctuation as their 全角 (full-width) forms; space as the ideographic space."""
    return "".join(
        "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text
    )


def fullwidth_strings(sample: Native) -> list[CorpusCase]:
    """Each string field written in 全角 characters (codes and dates typed on a Chinese IME), and all at once."""
    cases = [
        CorpusCase(f"{key} full-width", _with(sample, key, to_fullwidth(value)))
        for key, value in _leaf_strings(sample)
        if to_fullwidth(value) != value
    ]
    everything = {k: to_fullwidth(v) if isinstance(v, str) else v for k, v in sample.items()}
    cases.append(CorpusCase("every string full-width", everything))
    return cases


_SPECIAL = (
    ("quotes and markup", "\"'<b>&amp;</b>\\"),
    ("rare CJK (extension B)", "𠀀𪚥"),
    ("middle dot in a name", "阿卜杜拉·买买提"),
    ("zero-width and BOM", "\u200b\ufeff"),
    ("control characters", "\x00\x1f\x7f"),
    ("surrounding whitespace", "  \t"),
    ("lone surrogate", "\ud800"),
    ("emoji", "🏛️"),
)


def special_characters(sample: Native) -> list[CorpusCase]:
    """Special characters appended to each string field: markup, rare CJK, NUL, lone surrogates, emoji."""
    return [
        CorpusCase(f"{key} with {label}", _with(sample, key, value + extra))
        for key, value in _leaf_strings(sample)
        for label, extra in _SPECIAL
    ]


# -- times and validity ------------------------------------------------------------------------------------
_NAIVE_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def time_variants(sample: Native) -> list[CorpusCase]:
    """Each naive ``yyyy-MM-dd HH:mm:ss`` field as zoned ISO-8601 (+08:00, Z, +0000), with slashes, as a bare
    date, with fractions, and as an impossible time."""
    cases: list[CorpusCase] = []
    for key, value in _leaf_strings(sample):
        match = _NAIVE_TIME.match(value)
        if not match:
            continue
        y, mo, d, h, mi, s = match.groups()
        variants = {
            "zoned +08:00": f"{y}-{mo}-{d}T{h}:{mi}:{s}+08:00",
            "zoned Z": f"{y}-{mo}-{d}T{h}:{mi}:{s}Z",
            "zoned +0000": f"{y}-{mo}-{d}T{h}:{mi}:{s}+0000",
            "with slashes": f"{y}/{mo}/{d} {h}:{mi}:{s}",
            "with fractions": f"{value}.123456",
            "date only": f"{y}-{mo}-{d}",
            "impossible": f"{y}-13-32 25:61:61",
            "not a time": "昨天下午",
        }
        cases.extend(CorpusCase(f"{key} {label}", _with(sample, key, v)) for label, v in variants.items())
    return cases


def long_term_validity(sample: Native) -> list[CorpusCase]:
    """Each ``yyyy-MM-dd`` field as 长期 / 长期有效 / 2099-12-31 (how platforms write "no expiry")."""
    return [
        CorpusCase(f"{key} = {label}", _with(sample, key, label))
        for key, value in _leaf_strings(sample)
        if _DATE.match(value)
        for label in ("长期", "长期有效", "2099-12-31", "9999-12-31")
    ]


# -- identifiers -------------------------------------------------------------------------------------------
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
_RESIDENT_ID = re.compile(r"^\d{17}[\dX]$")
_REGION = re.compile(r"^[1-9]\d{5}$")
PLACEHOLDER_USCC = "0" * 17 + "X"
SAMPLE_REGISTRATION_NO = "320706600123456"
# Codes abolished in GB/T 2260 revisions that old records still carry (新浦区, 赣榆县, 崇文区, 宣武区).
RETIRED_AREA_CODES = ("320705", "320721", "110103", "110104")


def _resident_id_check(first17: str) -> str:
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    return "10X98765432"[total % 11]


def placeholder_codes(sample: Native, registration_no_field: str | None = None) -> list[CorpusCase]:
    """Each 统一社会信用代码-shaped field as the 个体工商户 placeholder 17 zeros + X, without a 工商注册号 (a
    ``DecodeError``) and — when ``registration_no_field`` names where the format carries it — with one."""
    cases: list[CorpusCase] = []
    for key, value in _leaf_strings(sample):
        if not _USCC.match(value) or _RESIDENT_ID.match(value):
            continue
        cases.append(CorpusCase(f"{key} = 17 zeros + X, no 工商注册号", _with(sample, key, PLACEHOLDER_USCC)))
        if registration_no_field is not None:
            changed = _with(sample, key, PLACEHOLDER_USCC)
            changed[registration_no_field] = SAMPLE_REGISTRATION_NO
            cases.append(CorpusCase(f"{key} = 17 zeros + X with {registration_no_field}", changed))
    return cases


def retired_area_codes(sample: Native) -> list[CorpusCase]:
    """Region-code fields set to retired 行政区划代码, and 身份证号 fields re-issued (valid checksum) under them."""
    cases: list[CorpusCase] = []
    for key, value in _leaf_strings(sample):
        if _REGION.match(value):
            cases.extend(CorpusCase(f"{key} = retired area {code}", _with(sample, key, code))
                         for code in RETIRED_AREA_CODES)
        elif _RESIDENT_ID.match(value) and value[6:8] in ("19", "20"):
            first17 = RETIRED_AREA_CODES[0] + value[6:17]
            cases.append(CorpusCase(f"{key} 身份证号 from a retired area",
                                    _with(sample, key, first17 + _resident_id_check(first17))))
    return cases


# -- whole-payload breakage --------------------------------------------------------------------------------
def broken_json(sample: Native) -> list[CorpusCase]:
    """The record as a JSON *string* (some platforms embed it), intact and broken in the usual ways."""
    text = json.dumps(sample, ensure_ascii=False)
    return [
        CorpusCase("as a JSON string", text),
        CorpusCase("JSON string truncated", text[: len(text) // 2]),
        CorpusCase("JSON string with trailing garbage", text + "}}"),
        CorpusCase("JSON string of an array", json.dumps([sample], ensure_ascii=False)),
        CorpusCase("JSON string 'null'", "null"),
        CorpusCase("empty string", ""),
        CorpusCase("JSON string nested 100000 deep", "[" * 100_000 + "]" * 100_000),
        CorpusCase("JSON as UTF-8 bytes", text.encode("utf-8")),
        CorpusCase("JSON as GBK bytes", text.encode("gbk", errors="replace")),
    ]


def non_object_payloads(_sample: Native | None = None) -> list[CorpusCase]:
    """Payloads that are not records at all."""
    return [
        CorpusCase("payload null", None),
        CorpusCase("payload a list", []),
        CorpusCase("payload a number", 42),
        CorpusCase("payload a boolean", False),
    ]


Family = Callable[[Native], list[CorpusCase]]


def standard_corpus(sample: Native, *, registration_no_field: str | None = None) -> list[CorpusCase]:
    """Every family above, applied to ``sample``; names are unique within one sample."""
    families: list[Family] = [
        blank_each_field,
        null_each_field,
        drop_each_field,
        wrong_type_each_field,
        fullwidth_strings,
        special_characters,
        time_variants,
        long_term_validity,
        lambda s: placeholder_codes(s, registration_no_field),
        retired_area_codes,
        broken_json,
        non_object_payloads,
    ]
    return [case for family in families for case in family(sample)]
