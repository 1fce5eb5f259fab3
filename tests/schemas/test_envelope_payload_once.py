"""An envelope validates its payload once and keeps the model (a hot-path measure, docs/benchmarks.md).

What must not change with it: equality, serialisation, and that a load still checks the payload and the hash.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from factories import VALID_USCC, approval
from schemas import ApprovalDecided, Envelope


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``ApprovalDecided.model_validate`` call from here on."""
    calls: list[Any] = []
    original = ApprovalDecided.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[ApprovalDecided], obj: Any, *args: Any, **kwargs: Any) -> ApprovalDecided:
        calls.append(obj)
        return original(cls, obj, *args, **kwargs)

    monkeypatch.setattr(ApprovalDecided, "model_validate", classmethod(counting))
    return calls


def test_wrap_does_not_validate_the_payload_model_it_was_given_again(validations: list[Any]) -> None:
    payload = approval()
    validations.clear()  # the factory's own validation
    env = Envelope.wrap(payload, source="zwfw")
    assert validations == []
    assert env.payload() is payload


def test_a_load_validates_once_and_payload_then_costs_nothing(validations: list[Any]) -> None:
    env = Envelope.wrap(approval(), source="zwfw")
    validations.clear()
    loaded = Envelope.model_validate_json(env.model_dump_json())
    assert len(validations) == 1
    assert loaded.payload() == env.payload() and len(validations) == 1
    assert loaded == env, "the kept model is not part of equality"


def test_the_kept_model_is_never_serialised() -> None:
    env = Envelope.wrap(approval(), source="zwfw")
    assert "_shenguan" not in env.model_dump_json()
    assert set(env.model_dump()) == set(Envelope.model_fields)


def test_replaced_data_is_validated_afresh() -> None:
    env = Envelope.wrap(approval(), source="zwfw")
    other = approval("320700261121000099999").model_dump(mode="json")
    copied = env.model_copy(update={"data": other})
    assert copied.payload().case_no == "320700261121000099999"
    assert env.model_copy(update={"revision": 2}).payload() is env.payload(), "same data, same model"


def test_a_load_still_refuses_a_bad_payload_or_hash() -> None:
    env = Envelope.wrap(approval(), source="zwfw")
    wrong_hash = env.model_dump(mode="json") | {"content_hash": "0" * 64}
    with pytest.raises(ValidationError, match="content_hash does not match data"):
        Envelope.model_validate(wrong_hash)
    bad_payload = env.model_dump(mode="json")
    bad_payload["data"] = {**bad_payload["data"], "case_no": ""}
    with pytest.raises(ValidationError):
        Envelope.model_validate(bad_payload)


def _with_applicant_id(env: Envelope, id_number: str) -> str:
    """The envelope's stored JSON with the applicant's 统一社会信用代码 replaced (as a corrupted row would be)."""
    body = env.model_dump(mode="json")
    body["data"]["applicant"]["id_number"] = id_number
    return json.dumps(body, ensure_ascii=False)


def test_from_stored_gives_the_same_envelope_as_a_full_load() -> None:
    env = Envelope.wrap(approval(), source="zwfw")
    stored = Envelope.from_stored(env.model_dump_json())
    assert stored == env
    assert stored.payload() == env.payload()


def test_a_lazy_load_gives_the_attributes_and_data_and_validates_the_payload_only_when_asked() -> None:
    env = Envelope.wrap(approval(), source="zwfw", region="320700")
    lazy = Envelope.from_stored_lazy(env.model_dump_json())
    fields = ("id", "type", "source", "business_key", "revision", "correlation_id", "region", "content_hash", "data")
    assert all(getattr(lazy, name) == getattr(env, name) for name in fields)
    assert lazy.time == env.time and lazy.time.tzinfo is not None  # an aware datetime, as validated ones are
    assert lazy.classification == env.classification
    assert lazy.payload() == env.payload()  # validated now, on demand
    broken = _with_applicant_id(env, "not eighteen chars")
    assert Envelope.from_stored_lazy(broken).business_key == env.business_key  # nothing validated at load ...
    with pytest.raises(ValidationError):
        Envelope.from_stored_lazy(broken).payload()  # ... the payload when asked


def test_from_stored_skips_the_checksums_a_full_load_still_applies() -> None:
    """What the stored-record path trusts — the checksum and the hash, checked at acceptance — and only that."""
    env = Envelope.wrap(approval(), source="zwfw")
    bad_check_char = VALID_USCC[:17] + ("0" if VALID_USCC[17] != "0" else "1")
    body = _with_applicant_id(env, bad_check_char)
    with pytest.raises(ValidationError, match="check character"):
        Envelope.model_validate_json(body)
    assert Envelope.from_stored(body).payload().applicant.id_number == bad_check_char


def test_from_stored_still_refuses_a_record_of_the_wrong_shape() -> None:
    env = Envelope.wrap(approval(), source="zwfw")
    body = env.model_dump(mode="json")
    del body["data"]["applicant"]
    with pytest.raises(ValidationError, match="applicant"):
        Envelope.from_stored(json.dumps(body))
    with pytest.raises(ValidationError):
        Envelope.from_stored(_with_applicant_id(env, "not eighteen chars")[:-3])  # truncated JSON
