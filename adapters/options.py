"""Checks for the options of an adapter's config section (a TOML table).

A mistyped option should stop the gateway at start-up with a message naming the option, not surface as
an ``AttributeError`` at the first poll. Keys an adapter does not know are left alone: the section also
carries the gateway's own settings (routing, polling interval) that the adapter never sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["base_url_option", "positive_float_option", "str_option"]


def str_option(options: Mapping[str, Any], key: str, *, adapter: str) -> str:
    """A required, non-blank string option."""
    value = options.get(key)
    if value is None:
        raise ValueError(f"{adapter}: missing option {key!r}")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{adapter}: option {key!r} must be a non-empty string")
    return value.strip()


def base_url_option(options: Mapping[str, Any], key: str = "base_url", *, adapter: str) -> str:
    """A required http(s) URL, returned without a trailing slash."""
    value = str_option(options, key, adapter=adapter)
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{adapter}: option {key!r} must be an http:// or https:// URL")
    return value.rstrip("/")


def positive_float_option(options: Mapping[str, Any], key: str, default: float, *, adapter: str) -> float:
    """An optional positive number (seconds and the like)."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{adapter}: option {key!r} must be a positive number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{adapter}: option {key!r} must be a positive number")
    return float(value)
