"""Masking of personal data (身份证号, 手机号) in anything that may reach a log.

A structlog processor is a plain function in a list, so masking is one such function that every
log line passes through (gateway and adapters alike), rather than something each call site remembers.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

__all__ = ["mask_personal_data", "mask_text"]

# 18-char 身份证号 (17 digits + digit/X) not embedded in a longer alphanumeric run.
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{11})([\dXx])(?![0-9A-Za-z])")
# Mainland mobile numbers, optionally +86.
_MOBILE = re.compile(r"(?<!\d)((?:\+?86)?1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    """Replace every 身份证号 and mobile number in ``text`` by its masked form."""
    text = _RESIDENT_ID.sub(lambda m: f"{m[1]}{'*' * 11}{m[3]}", text)
    return _MOBILE.sub(lambda m: f"{m[1]}****{m[3]}", text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_value(v) for v in value)
    if isinstance(value, BaseException):
        return mask_text(str(value))
    return value


def mask_personal_data(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in the event and every bound value."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask_value(value)
    return event_dict
