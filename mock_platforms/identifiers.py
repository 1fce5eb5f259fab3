"""Check-digit arithmetic for the Chinese identifiers the fake platforms emit.

The checksums are written out here (a dozen lines) rather than borrowed from python-stdnum because stdnum's
validators also enforce prefix and area-code rules that real records break (see DESIGN §5): a fake that can
only produce what stdnum accepts could never exercise an adapter's handling of N2… village collectives or
ID numbers from retired 行政区划. The tests cross-check these functions against stdnum's checksum helpers.
"""

from __future__ import annotations

import random
from datetime import date

# GB 32100-2015 alphabet: digits and capitals without I, O, S, V, Z.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


def uscc_check_char(first17: str) -> str:
    """Return the 18th character of a 统一社会信用代码 (unified social credit code) given its first 17."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """Return the 9th character of a GB 11714 组织机构代码 (organisation code), embedded in a USCC."""
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def ric_check_char(first17: str) -> str:
    """Return the 18th character of a 居民身份证号码 (resident ID number, GB 11643 mod 11-2)."""
    total = sum(int(c) * w for c, w in zip(first17, _RIC_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def make_uscc(rng: random.Random, prefix: str, area_code: str) -> str:
    """Build a checksum-valid USCC: 2-char prefix (登记管理部门 + 机构类别), area, organisation code, check.

    Codes issued since 2015 carry an organisation code beginning with ``MA`` (enterprises, collectives) or
    ``MB`` (机关, government bodies); the organisation code carries its own GB 11714 check character.
    """
    head = "MB" if prefix[0] == "1" else "MA"
    body = head + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
    org = body + org_code_check_char(body)
    first17 = prefix + area_code + org
    return first17 + uscc_check_char(first17)


def make_ric(rng: random.Random, area_code: str, birth: date, male: bool) -> str:
    """Build a checksum-valid 18-digit ID number; the sequence digit's parity encodes sex (odd = male)."""
    seq = rng.randrange(0, 50) * 2 + (1 if male else 0)
    first17 = f"{area_code}{birth:%Y%m%d}{rng.randrange(0, 10)}{seq:02d}"
    return first17 + ric_check_char(first17)
