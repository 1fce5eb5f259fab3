"""structlog set-up: JSON lines for ``serve``, readable lines on a terminal, personal data always masked.

Masking is a processor in the chain (``adapters.masking.mask_personal_data``) placed before any
renderer, so no code path can log a 身份证号 or a phone number in clear by forgetting to mask it.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from adapters.masking import mask_personal_data

__all__ = ["configure_logging"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is *now*, not the stream present when logging was configured.

    A test runner or a CLI harness may swap ``sys.stderr`` and later close its replacement; a logger
    bound to that closed stream would raise on the next line and take a gateway task down with it.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _CurrentStderr()


def configure_logging(fmt: Literal["auto", "json", "console"] = "auto", level: str = "info") -> None:
    """Configure structlog (and route stdlib logging, e.g. uvicorn's, through the same masking)."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=False),
        structlog.processors.format_exc_info,
        mask_personal_data,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=_STDERR),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_STDERR)  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(_LEVELS[level], logging.INFO) if level != "debug" else logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn may have installed its own handlers (dictConfig); they would bypass the masking.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
