"""Personal data never reaches a log line unmasked, whichever logger wrote it."""

from __future__ import annotations

import json
import logging

import structlog

from adapters.masking import mask_text
from gateway.logging import configure_logging


def test_json_logs_mask_id_numbers_and_phones(capsys) -> None:
    configure_logging("json", "info")
    try:
        structlog.get_logger("t").info(
            "applicant 11010519491231002X called", phone="13800138000", extra={"p": ["+8613912345678"]}
        )
        logging.getLogger("uvicorn.error").warning("client 13800138000 sent 11010519491231002X")
    finally:
        structlog.reset_defaults()
    err = capsys.readouterr().err
    assert "11010519491231002X" not in err and "13800138000" not in err and "13912345678" not in err
    first = json.loads(err.splitlines()[0])
    assert first["event"] == "applicant 110105***********X called" and first["phone"] == "138****8000"
    assert "138****8000" in err.splitlines()[1]


def test_codes_that_are_not_personal_data_are_left_alone() -> None:
    text = "USCC 91320700MA1X2Y3K05 PROJID 320700261121000012345 task JGRW32070000000001"
    assert mask_text(text) == text
