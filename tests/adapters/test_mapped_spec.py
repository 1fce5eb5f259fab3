"""Mapping files: every shipped file loads; a bad one is refused whole, each problem led by its key."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.mapped import MappedAdapter, MappingError, load_mapping, parse_mapping
from adapters.specialty import PACKAGED_MAPPING, SpecialtyAdapter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "mappings").glob("*.toml")) + sorted(
    (ROOT / "examples" / "mappings").glob("*.yaml")
)


def packaged() -> dict[str, Any]:
    return tomllib.loads(PACKAGED_MAPPING.read_text(encoding="utf-8"))


def problems_of(data: Any, tmp_path: Path | None = None) -> list[str]:
    with pytest.raises(MappingError) as caught:
        parse_mapping(data, origin="test.toml", base_dir=tmp_path)
    return caught.value.problems


def test_shipped_mappings_load() -> None:
    assert len(EXAMPLES) == 2
    for path in [PACKAGED_MAPPING, *EXAMPLES]:
        spec = load_mapping(path)
        assert spec.mapping.event_type == "approval.decided"
        assert spec.origin == str(path)


def test_yaml_and_toml_of_the_same_mapping_are_the_same_spec(tmp_path: Path) -> None:
    as_yaml = tmp_path / "spgl.yaml"
    as_yaml.write_text(yaml.safe_dump(packaged(), allow_unicode=True), encoding="utf-8")
    from_yaml, from_toml = load_mapping(as_yaml), load_mapping(PACKAGED_MAPPING)
    assert from_yaml.model_dump() == from_toml.model_dump()
    assert from_yaml.code_table("decision") == from_toml.code_table("decision")


def test_yaml_integer_codes_are_read_as_text(tmp_path: Path) -> None:
    text = PACKAGED_MAPPING.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    dumped = yaml.safe_dump(data, allow_unicode=True).replace("'11': granted", "11: granted")
    assert "11: granted" in dumped  # YAML reads this key as the integer 11
    path = tmp_path / "m.yml"
    path.write_text(dumped, encoding="utf-8")
    assert load_mapping(path).code_table("decision")["11"] == "granted"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["fields"].__setitem__("decided_at", {"from": "BLSJ", "type": "datetime", "date_fromat": "%Y"}),
            'fields."decided_at".date_fromat: unknown key (a typo?)',
        ),
        (
            lambda d: d["fields"].__setitem__("applicant.nmae", "SQRMC"),
            "fields.\"applicant.nmae\": no field 'nmae' in applicant (has: kind, name,",
        ),
        (lambda d: d["fields"].__setitem__("applicant", "SQRMC"), 'fields."applicant": is an object; map its members'),
        (
            lambda d: d["fields"].__setitem__("result", {"from": "BLZT", "code_table": "decisions"}),
            "fields.\"result\".code_table: no code table 'decisions' (known: applicant_kind, commitment,",
        ),
        (
            lambda d: d["fields"].__setitem__("case_no", {"from": "SPSXSLBM", "type": "date"}),
            'fields."case_no".type: date does not fit a field that is not a date or time',
        ),
        (
            lambda d: d["fields"].__setitem__("case_no", {"from": "SPSXSLBM", "date_format": "%Y%m%d"}),
            'fields."case_no": date_format needs type',
        ),
        (
            lambda d: d["fields"].__setitem__("case_no", {"from": "SPSXSLBM", "const": "x"}),
            'fields."case_no": give exactly one of from, concat, const (got from, const)',
        ),
        (
            lambda d: d["fields"].__setitem__("decided_at", {"from": "BLSJ", "type": "datetime", "date_format": "%Q"}),
            "fields.\"decided_at\".date_format: '%Q' cannot read back what it writes",
        ),
        (
            lambda d: d["fields"].__setitem__("received_at", {"from": "SLSJ", "type": "timestamp"}),
            'fields."received_at".type: Input should be',
        ),
        (lambda d: d["source"].__setitem__("kind", "csv"), "source.kind: kind must be 'table' or 'json'"),
        (lambda d: d["source"].pop("order_column"), "source.order_column: Field required"),
        (
            lambda d: d["source"].__setitem__("accepted", 0),
            "source: pending, accepted and rejected must be three different status values",
        ),
        (lambda d: d["source"].__setitem__("url", "sqlite:///x.db"), "source.url: unknown key (a typo?)"),
        (
            lambda d: d["mapping"].__setitem__("event_type", "approval.done"),
            "mapping.event_type: unknown event type 'approval.done'",
        ),
        (lambda d: d["mapping"].__setitem__("timezone", "Beijing"), "mapping.timezone: unknown time zone 'Beijing'"),
        (
            lambda d: d["code_tables"]["secrecy"]["values"].__setitem__("5", "top-secret"),
            "envelope.classification: values must be internal, public, secret (got top-secret)",
        ),
        (
            lambda d: d["objects"].__setitem__("commitment", {"requires": "kind"}),
            "objects.commitment.requires: 'kind' is not mapped",
        ),
        (lambda d: d["objects"].__setitem__("region", {"requires": "x"}), "objects.region: is not an object"),
        (lambda d: d["code_tables"].__setitem__("x", {}), "code_tables.x: give exactly one of values, csv"),
        (lambda d: d.pop("fields"), "fields: Field required"),
        (lambda d: d.__setitem__("extra", {}), "extra: unknown key (a typo?)"),
    ],
)
def test_a_bad_mapping_names_the_key(change: Any, expected: str) -> None:
    data = copy.deepcopy(packaged())
    change(data)
    problems = problems_of(data)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_listed_at_once() -> None:
    data = packaged()
    data["fields"]["applicant.nmae"] = "SQRMC"
    data["fields"]["result"] = {"from": "BLZT", "code_table": "nope"}
    data["mapping"]["timezone"] = "Mars/Olympus"
    with pytest.raises(MappingError) as caught:
        parse_mapping(data, origin="city.toml")
    # pydantic finds the header problem first; the cross-checks run only on a structurally valid file
    assert caught.value.problems == ["mapping.timezone: unknown time zone 'Mars/Olympus' (e.g. Asia/Shanghai)"]
    data["mapping"]["timezone"] = "Asia/Shanghai"
    with pytest.raises(MappingError) as caught:
        parse_mapping(data, origin="city.toml")
    assert len(caught.value.problems) == 2
    assert str(caught.value).startswith("mapping city.toml: 2 problem(s):\n  ")


def test_csv_code_tables(tmp_path: Path) -> None:
    data = packaged()
    data["code_tables"]["decision"] = {"csv": "codes/decision.csv", "encoding": "gbk"}
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "decision.csv").write_bytes("代码,值\n11,granted\n12,rejected\n\n".encode("gbk"))
    spec = parse_mapping(data, base_dir=tmp_path)
    assert spec.code_table("decision") == {"11": "granted", "12": "rejected"}

    (tmp_path / "codes" / "decision.csv").write_bytes(b"code,value\n11,granted\n11,rejected\n")
    data["code_tables"]["decision"]["encoding"] = "utf-8"
    assert problems_of(data, tmp_path) == ["code_tables.decision.csv: decision.csv line 3: code '11' appears twice"]

    data["code_tables"]["decision"]["value_column"] = "canonical"
    assert problems_of(data, tmp_path) == [
        "code_tables.decision.csv: decision.csv has no column 'canonical' (columns: code, value)"
    ]
    data["code_tables"]["decision"] = {"csv": "codes/missing.csv"}
    (problem,) = problems_of(data, tmp_path)
    assert problem.startswith("code_tables.decision.csv: [Errno 2] No such file")


def test_unreadable_files(tmp_path: Path) -> None:
    bad_toml = tmp_path / "m.toml"
    bad_toml.write_text("[mapping\nname = 1", encoding="utf-8")
    with pytest.raises(MappingError, match=r"file: not valid TOML"):
        load_mapping(bad_toml)
    bad_yaml = tmp_path / "m.yaml"
    bad_yaml.write_text("mapping: [", encoding="utf-8")
    with pytest.raises(MappingError, match=r"file: not valid YAML"):
        load_mapping(bad_yaml)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"file: the document must be a table of sections, got list"):
        load_mapping(listed)
    with pytest.raises(MappingError, match=r"unknown mapping format '.json'"):
        load_mapping(tmp_path / "m.json")
    with pytest.raises(MappingError, match=r"file: cannot read"):
        load_mapping(tmp_path / "absent.toml")


def test_a_bad_mapping_builds_no_adapter(tmp_path: Path) -> None:
    """No half-load: the adapter (and so the gateway, which reports it as a config error) does not start."""
    data = packaged()
    data["fields"]["applicant.nmae"] = "SQRMC"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match=r"fields.\"applicant.nmae\": no field 'nmae'"):
        MappedAdapter.from_config("city", {"mapping": str(path), "url": "sqlite:///:memory:"})
    with pytest.raises(ValueError, match=r"fields.\"applicant.nmae\""):
        SpecialtyAdapter.from_config("gcjs", {"mapping": str(path), "url": "sqlite:///:memory:"})


def test_adapter_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"missing option 'url'"):
        SpecialtyAdapter.from_config("gcjs", {})
    with pytest.raises(ValueError, match=r"option 'url' cannot be used"):
        SpecialtyAdapter.from_config("gcjs", {"url": "not a url"})
    with pytest.raises(ValueError, match=r"option 'url' cannot be used: NoSuchModuleError") as caught:
        SpecialtyAdapter.from_config("gcjs", {"url": "nosuchdb://reader:s3cret-pw@exchange/qzk"})
    assert "s3cret-pw" not in str(caught.value)
    with pytest.raises(ValueError, match=r"database driver is not installed"):
        SpecialtyAdapter.from_config("gcjs", {"url": "mssql+pymssql://u@h/db"})
    with pytest.raises(ValueError, match=r"option 'engine_options' must be a table"):
        SpecialtyAdapter.from_config("gcjs", {"url": "sqlite://", "engine_options": 3})
    with pytest.raises(ValueError, match=r"missing option 'mapping'"):
        MappedAdapter.from_config("x", {"url": "sqlite://"})
    feed = str(ROOT / "examples" / "mappings" / "scjg_licence_feed.toml")
    with pytest.raises(ValueError, match=r"option 'base_url' must be an http"):
        MappedAdapter.from_config("scjg", {"mapping": feed, "base_url": "ftp://x"})
    with pytest.raises(ValueError, match=r"option 'headers' must be a table of text values"):
        MappedAdapter.from_config("scjg", {"mapping": feed, "base_url": "http://x", "headers": {"a": 1}})
    with pytest.raises(ValueError, match=r"must read a table into approval.decided"):
        SpecialtyAdapter.from_config("gcjs", {"mapping": feed, "url": "sqlite://"})
