"""The envelope: derived ids and hashes, payload validation, and the committed JSON Schema files."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from factories import approval, envelope
from schemas import Envelope, event_types
from schemas.export import SCHEMA_DIR, render_schemas


def test_same_record_decoded_twice_gets_the_same_id() -> None:
    assert envelope("A").id == envelope("A").id
    assert envelope("A").id != envelope("A", revision=2).id
    assert envelope("A").id != envelope("A", result_description="不同").id


def test_envelope_round_trips_through_json() -> None:
    env = envelope("A")
    again = Envelope.model_validate_json(env.model_dump_json())
    assert again == env and again.payload() == approval("A")


def test_unknown_event_type_is_refused_by_name() -> None:
    data = envelope("A").model_dump() | {"type": "approval.teleported"}
    with pytest.raises(ValidationError, match=r"unknown event type 'approval\.teleported'"):
        Envelope.model_validate(data)


def test_tampered_data_fails_the_content_hash() -> None:
    data = envelope("A").model_dump(mode="json")
    data["data"]["result_description"] = "篡改"
    with pytest.raises(ValidationError, match="content_hash does not match"):
        Envelope.model_validate(data)


def test_naive_times_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValidationError, match="timezone"):
        approval(decided_at=datetime(2026, 11, 20, 16, 40))


def test_long_term_validity_has_no_end_date() -> None:
    cert = approval(certificate={"number": "X", "valid_from": "2026-11-20", "long_term": True}).certificate
    assert cert is not None and cert.long_term and cert.valid_to is None
    with pytest.raises(ValidationError, match="long_term"):
        approval(certificate={"valid_to": "2099-12-31", "long_term": True})


@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_any_case_number_wraps_and_validates(case_no: str) -> None:
    env = envelope(case_no.strip()[:64])
    assert env.business_key == case_no.strip()[:64]
    assert Envelope.model_validate(env.model_dump(mode="json")) == env


def test_committed_json_schema_files_match_the_models() -> None:
    rendered = render_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert set(committed) == set(rendered), "run `python -m schemas.export` and commit the files"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} is out of date: run `python -m schemas.export`"
    assert {f"{t}.json" for t in event_types()} <= set(committed)
    assert json.loads(committed["envelope.json"])["title"] == "Envelope"
