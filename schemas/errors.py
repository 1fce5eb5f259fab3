"""Turn pydantic validation errors into one line a platform operator can act on."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_validation_error"]


def describe_validation_error(exc: ValidationError, *, prefix: str = "") -> str:
    """``'applicant.id_number: 统一社会信用代码 check character is 'X', expected '5''``; errors joined by ``; ``.

    Values are not echoed: an invalid 身份证号 in a reason string would end up in logs unmasked.
    """
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
        msg = str(err["msg"]).removeprefix("Value error, ")
        where = f"{prefix}{'.' if prefix and loc else ''}{loc}"
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
