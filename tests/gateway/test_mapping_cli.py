"""``shenguan mapping import|list|restore``: versioned, all-or-nothing imports."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app

runner = CliRunner()
DATA = Path(__file__).parent / "data"


def run(*args: str) -> tuple[int, dict | list | str]:
    result = runner.invoke(app, list(args))
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.output


def versions(db: Path) -> list[dict]:
    code, listed = run("mapping", "list", "--db", str(db), "--json")
    assert code == 0
    return listed  # type: ignore[return-value]


def test_import_is_versioned_all_or_nothing_and_restorable(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    valid = DATA / "mapping_valid.csv"

    code, report = run("mapping", "import", str(valid), "--dry-run", "--json", "--db", str(db))
    assert code == 0 and report["ok"] and report["dry_run"] and report["version"] is None
    code, report = run("mapping", "import", str(valid), "--json", "--db", str(db))
    assert code == 0 and report["version"] == 1 and report["rows"] > 0
    code, report = run("mapping", "import", str(valid), "--json", "--db", str(db))
    assert code == 0 and report["unchanged"], "the same sheet again changes nothing"

    changed = tmp_path / "changed.csv"
    changed.write_text(
        valid.read_text(encoding="utf-8-sig").replace("市场监督管理局", "市场监管局", 1), encoding="utf-8"
    )
    code, report = run("mapping", "import", str(changed), "--json", "--db", str(db))
    assert code == 0 and report["version"] == 2
    assert [v["active"] for v in versions(db)] == [True, False]

    code, report = run("mapping", "import", str(DATA / "mapping_invalid.csv"), "--json", "--db", str(db))
    assert code == 1 and not report["ok"] and report["version"] is None
    assert all({"row", "column", "message"} <= set(p) for p in report["problems"])
    assert len(versions(db)) == 2, "a malformed sheet changes nothing"

    result = runner.invoke(app, ["mapping", "restore", "1", "--db", str(db)])
    assert result.exit_code == 0
    assert [(v["version"], v["active"]) for v in versions(db)] == [(2, False), (1, True)]


def test_problems_are_listed_by_row_and_column(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["mapping", "import", str(DATA / "mapping_invalid.csv"), "--db", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 1
    assert "nothing was imported" in result.output and "row " in result.output and "column " in result.output


def test_restore_of_an_unknown_version_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mapping", "restore", "9", "--db", str(tmp_path / "x.db")])
    assert result.exit_code == 2 and "no mapping version 9" in result.output


def test_unreadable_file_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mapping", "import", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and result.output.startswith("error:")
