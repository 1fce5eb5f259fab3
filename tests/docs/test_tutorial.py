"""docs/writing-an-adapter.md runs: every ```python block is executed, in order, in one namespace.

A tutorial whose code does not run teaches the wrong thing with authority. Executing its blocks keeps the
page honest as the SDK changes: a renamed function, a changed error message of the conformance kit or a
new required capability breaks this test, not an adapter author's afternoon. Blocks are compiled with the
Markdown file's name and line numbers, so a traceback points at the line of the page to fix.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "writing-an-adapter.md"
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
KIT_CHECKS = {
    "test_samples_are_canonical",
    "test_same_fact_twice_is_one_effect",
    "test_lost_reply_is_outcome_unknown_and_no_duplicate",
    "test_error_classification",
    "test_logs_carry_no_personal_data",
}


@dataclass(frozen=True, slots=True)
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the first code line in the Markdown file


def blocks(text: str) -> Iterator[Block]:
    for match in FENCE.finditer(text):
        first_line = text.count("\n", 0, match.start("body")) + 1
        yield Block(match["lang"], match["body"], first_line)


@pytest.fixture(scope="module")
def tutorial_text() -> str:
    return TUTORIAL.read_text(encoding="utf-8")


@pytest.fixture
def module() -> Iterator[types.ModuleType]:
    """A real module for the blocks to run in, so classes they define have a home in ``sys.modules``."""
    mod = types.ModuleType("writing_an_adapter_tutorial")
    mod.__file__ = str(TUTORIAL)
    sys.modules[mod.__name__] = mod
    try:
        yield mod
    finally:
        sys.modules.pop(mod.__name__, None)


def test_every_python_block_runs_in_order(tutorial_text: str, module: types.ModuleType) -> None:
    python = [b for b in blocks(tutorial_text) if b.lang == "python"]
    assert len(python) >= 6, "the tutorial builds its adapter step by step in python blocks"
    for block in python:
        # Leading newlines make the code's line numbers those of the Markdown file.
        code = compile("\n" * (block.line - 1) + block.code, str(TUTORIAL), "exec")
        try:
            exec(code, module.__dict__)
        except Exception as exc:
            raise AssertionError(f"the python block at {TUTORIAL.name}:{block.line} failed: {exc!r}") from exc
    namespace = module.__dict__
    # The page's promise: its adapter passes the conformance kit, run by the final block.
    assert set(namespace.get("passed", ())) == KIT_CHECKS
    assert "kit.test_" in python[-1].code, "the final python block must run the conformance checks"


def test_the_tutorial_adapter_is_a_destination_adapter(tutorial_text: str, module: types.ModuleType) -> None:
    """The protocol check the registry relies on holds for the class the page builds."""
    from adapters.base import DestinationAdapter

    for block in (b for b in blocks(tutorial_text) if b.lang == "python"):
        exec(compile("\n" * (block.line - 1) + block.code, str(TUTORIAL), "exec"), module.__dict__)
    adapter_cls = module.__dict__["CitySmsAdapter"]
    adapter = module.__dict__["adapter"]
    assert isinstance(adapter, DestinationAdapter)
    assert adapter_cls.capabilities.event_types == ("supervision.task.created",)


def test_toml_blocks_parse_and_the_gateway_config_block_validates(tutorial_text: str) -> None:
    """The shell blocks are what ``tests/adapters/test_scaffold.py`` does for real (new, install, test,
    list); the TOML blocks are checked here: each parses, and the gateway section is a valid config."""
    import tomllib

    from gateway.config import Config

    docs = [tomllib.loads(b.code) for b in blocks(tutorial_text) if b.lang == "toml"]
    assert docs, "the tutorial shows its pyproject and its shenguan.toml section"
    gateway_docs = [d for d in docs if "destinations" in d]
    assert gateway_docs
    for doc in gateway_docs:
        config = Config.model_validate(doc)
        assert config.destinations["city_sms"].adapter == "city_sms"


def test_only_python_blocks_are_executed_and_others_are_labelled(tutorial_text: str) -> None:
    langs = {b.lang for b in blocks(tutorial_text)}
    assert "" not in langs, "label every code block (python, sh, toml) so readers and this test know what runs"
    assert langs <= {"python", "sh", "toml"}, langs


@pytest.mark.parametrize(
    "heading",
    [
        "## Reference: the protocol",
        "## Reference: the error taxonomy and how to choose",
        "## Reference: capabilities",
        "## Reference: the conformance kit",
    ],
)
def test_reference_sections_exist(tutorial_text: str, heading: str) -> None:
    assert f"\n{heading}\n" in tutorial_text


def test_fence_parser_finds_blocks_and_their_lines() -> None:
    text = "intro\n```python\nx = 1\n```\n\n```sh\nls\n```\n"
    found = list(blocks(text))
    assert [(b.lang, b.code, b.line) for b in found] == [("python", "x = 1\n", 3), ("sh", "ls\n", 7)]
