"""``shenguan adapter new``: the generated package installs into a fresh environment and passes its tests.

The promise of the scaffold is that an author starts from green: the package installs with pip, its
entry point is found by the gateway, and the conformance kit passes before a line is changed. The only
honest way to check that is the author's way — a new virtual environment, ``pip install -e``, ``pytest``
and ``shenguan adapters list`` run by that environment's interpreter. To stay offline and fast the new
environment reuses this one's installed packages through a ``.pth`` file instead of downloading them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

import adapters
from adapters.scaffold import ScaffoldError, names_for, render_text, validate_name
from gateway.cli import app

NAME = "demo_sms"
REPO_ROOT = Path(adapters.__file__).resolve().parent.parent
runner = CliRunner()


def _clean_env() -> dict[str, str]:
    """The environment for child processes, without what would make them use this interpreter's setup."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"} and not k.startswith("PYTEST_")}
    env |= {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return env


def _run(args: list[str], *, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``shenguan adapter new demo_sms --dir <tmp>``, run as the author would, in a child process."""
    parent = tmp_path_factory.mktemp("scaffold") / "tmp"
    done = _run([sys.executable, "-m", "gateway", "adapter", "new", NAME, "--dir", str(parent)])
    assert done.returncode == 0, done.stderr
    target = parent / f"shenguan-adapter-{NAME}"
    assert f"created {target}" in done.stdout
    return target


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv whose site-packages points at this interpreter's installed packages and this checkout.

    The ``.pth`` lines are plain paths: site-packages for the dependencies (and shenguan's dist-info with its
    entry points), the repository root because shenguan is installed editable here (a directory added by a
    ``.pth`` line is not itself scanned for further ``.pth`` files, so the editable hook would be missed).
    """
    home = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    python = home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(purelib, "_shenguan_parent_env.pth").write_text(
        f"{sysconfig.get_paths()['purelib']}\n{REPO_ROOT}\n", encoding="utf-8"
    )
    return python


def test_generated_package_has_the_promised_layout(generated: Path) -> None:
    package = generated / "src" / f"shenguan_adapter_{NAME}"
    for relative in ("pyproject.toml", "README.md", "tests/test_conformance.py"):
        assert (generated / relative).is_file(), relative
    for module in ("__init__.py", "adapter.py", "mock.py"):
        assert (package / module).is_file(), module
    assert sorted(p.name for p in (generated / "samples").glob("*.json"))
    pyproject = (generated / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points."shenguan.adapters"]' in pyproject
    assert f'{NAME} = "shenguan_adapter_{NAME}:DemoSmsAdapter"' in pyproject
    readme = (generated / "README.md").read_text(encoding="utf-8")
    first_section = readme.split("\n## ")[1]
    assert first_section.startswith("What to change"), "the README must open with the author's TODO list"
    assert "TODO(" in (package / "adapter.py").read_text(encoding="utf-8")
    leftovers = [p for p in generated.rglob("*")
                 if p.is_file() and ("{{" in p.read_text("utf-8") or p.suffix == ".tmpl")]
    assert not leftovers, f"unrendered templates: {leftovers}"


def test_generated_package_installs_and_its_tests_pass_in_a_fresh_venv(generated: Path, fresh_python: Path) -> None:
    install = _run([str(fresh_python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                    "-e", str(generated)])
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]

    report = generated.parent / "junit.xml"
    tests = _run([str(fresh_python), "-m", "pytest", "-p", "no:cacheprovider", f"--junit-xml={report}"], cwd=generated)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    # Every kit check must run (none skipped for a missing declaration) and pass.
    assert counts["tests"] >= 10 and counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts

    listed = _run([str(fresh_python), "-m", "gateway", "adapters", "list", "--json"], cwd=generated.parent)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert NAME in rows, rows
    row = rows[NAME]
    assert "error" not in row, row
    assert row["direction"] == "destination" and row["version"] == "0.1.0"
    assert row["origin"] == "shenguan-adapter-demo-sms 0.1.0"
    assert {"hlwjg", "zwfw"} <= set(rows), "the built-in adapters must still be listed beside the new one"


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")
def test_rendered_python_is_ruff_clean(generated: Path) -> None:
    done = _run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=generated)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("bad", ["Demo", "demo-sms", "1sms", "_sms", "sms_", "demo__sms", "城市短信", "", "a" * 41])
def test_bad_name_exits_2_with_a_message(bad: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["adapter", "new", bad, "--dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "invalid adapter name" in result.output and "lowercase letters, digits and underscores" in result.output
    assert list(tmp_path.iterdir()) == [], "nothing may be written for a refused name"


def test_bad_name_from_the_real_command_line(tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "gateway", "adapter", "new", "Demo-SMS", "--dir", str(tmp_path)])
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid adapter name 'Demo-SMS'") and "Traceback" not in done.stderr


def test_existing_directory_is_refused_and_left_untouched(tmp_path: Path) -> None:
    existing = tmp_path / f"shenguan-adapter-{NAME}"
    existing.mkdir()
    (existing / "mine.txt").write_text("the author's work", encoding="utf-8")
    result = runner.invoke(app, ["adapter", "new", NAME, "--dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "already exists" in result.output and "refusing to overwrite" in result.output
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing.name], "no staging folder may be left behind"


def test_name_of_an_installed_adapter_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["adapter", "new", "hlwjg", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "already registered" in result.output


def test_names_and_rendering() -> None:
    names = names_for("city_sms2")
    assert (names.package, names.distribution, names.class_name) == (
        "shenguan_adapter_city_sms2", "shenguan-adapter-city-sms2", "CitySms2Adapter")
    assert validate_name("a1_b2") == "a1_b2"
    with pytest.raises(ScaffoldError):
        validate_name("A")
    assert render_text("x {{name}} {{ name }}", {"name": "n"}) == "x n n"
    with pytest.raises(KeyError, match="unknown placeholder"):
        render_text("{{nope}}", {"name": "n"})
