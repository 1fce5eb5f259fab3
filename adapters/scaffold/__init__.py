"""The adapter scaffold: ``shenguan adapter new NAME`` writes a separate, installable adapter package.

Why a generator rather than a page of instructions: the parts an author most often gets wrong — the entry
point, the error taxonomy, the idempotency key, a mock to test against, the conformance kit wired in —
are the same for every platform. Generating them means a new adapter *starts* conforming (its tests pass
before the author has changed a line) and every later change is checked by the same kit the built-in
adapters pass. What differs per platform is marked ``# TODO(n):`` and listed, in order, in the README.

Templates are plain files under ``templates/`` with ``{{placeholder}}`` tokens, rendered by plain string
replacement (no template engine dependency). Template files end in ``.tmpl`` so that neither ruff nor
pytest mistakes them for this project's own code; the suffix is dropped when rendering, and a path
segment ``__package__`` becomes the import package name.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError, entry_points, version
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = [
    "NAME_PATTERN",
    "ScaffoldError",
    "ScaffoldNames",
    "create_adapter_package",
    "names_for",
    "render_text",
    "validate_name",
]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
"""Lowercase letters, digits and single inner underscores, starting with a letter.

The name becomes the entry-point name (``adapter = "NAME"`` in shenguan.toml), part of an import package
(``shenguan_adapter_NAME``) and of a class name, so it must be a valid identifier fragment in all three.
"""

MAX_NAME_LENGTH = 40
TEMPLATE_SUFFIX = ".tmpl"
PACKAGE_SEGMENT = "__package__"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_SKIPPED = {"__pycache__"}


class ScaffoldError(ValueError):
    """The package cannot be created; the message says what to change (a user error, not a bug)."""


@dataclass(frozen=True, slots=True)
class ScaffoldNames:
    """Every spelling of one adapter name the templates need."""

    name: str  # entry-point and config name: demo_sms
    package: str  # import package: shenguan_adapter_demo_sms
    distribution: str  # PyPI-style project name: shenguan-adapter-demo-sms
    directory: str  # the folder created: shenguan-adapter-demo_sms
    class_name: str  # DemoSmsAdapter
    title: str  # human title: Demo Sms
    shenguan_version: str  # the SDK version the package was generated with (its lower bound)

    def placeholders(self) -> dict[str, str]:
        return {
            "name": self.name,
            "package": self.package,
            "distribution": self.distribution,
            "class_name": self.class_name,
            "title": self.title,
            "shenguan_version": self.shenguan_version,
        }


def validate_name(name: str) -> str:
    """Return ``name`` if it can name an adapter; ``ScaffoldError`` saying what is wrong otherwise."""
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"invalid adapter name {name!r}: use lowercase letters, digits and underscores, starting with a "
            f"letter, at most {MAX_NAME_LENGTH} characters, no leading, trailing or double underscores "
            "(e.g. city_sms). The name becomes the entry point, the config value `adapter = \"NAME\"` and "
            "the package shenguan_adapter_NAME."
        )
    return name


def _sdk_version() -> str:
    try:
        return version("shenguan")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.1.0"


def names_for(name: str) -> ScaffoldNames:
    """All derived names of a validated adapter name."""
    validate_name(name)
    parts = name.split("_")
    return ScaffoldNames(
        name=name,
        package=f"shenguan_adapter_{name}",
        distribution=f"shenguan-adapter-{name.replace('_', '-')}",
        directory=f"shenguan-adapter-{name}",
        class_name="".join(p.capitalize() for p in parts) + "Adapter",
        title=" ".join(p.capitalize() for p in parts),
        shenguan_version=_sdk_version(),
    )


def render_text(template: str, values: dict[str, str], *, where: str = "template") -> str:
    """Replace every ``{{key}}``; an unknown key is a bug in the template and fails loudly, naming it."""

    def substitute(match: re.Match[str]) -> str:
        key = match[1]
        if key not in values:
            raise KeyError(f"{where}: unknown placeholder {{{{{key}}}}} (known: {', '.join(sorted(values))})")
        return values[key]

    return _PLACEHOLDER.sub(substitute, template)


def _templates() -> Traversable:
    return resources.files("adapters.scaffold").joinpath("templates")


def _walk(folder: Traversable, relative: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    """Every template file below ``folder`` with its path parts, in a stable order."""
    found: list[tuple[tuple[str, ...], Traversable]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name in _SKIPPED:
            continue
        if entry.is_dir():
            found.extend(_walk(entry, (*relative, entry.name)))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append(((*relative, entry.name), entry))
    return found


def _target_parts(parts: tuple[str, ...], names: ScaffoldNames) -> tuple[str, ...]:
    renamed = [names.package if p == PACKAGE_SEGMENT else p for p in parts]
    renamed[-1] = renamed[-1].removesuffix(TEMPLATE_SUFFIX)
    return tuple(renamed)


def installed_adapter_names() -> set[str]:
    """Entry-point names already registered in ``shenguan.adapters`` (a second one would be ambiguous)."""
    return {ep.name for ep in entry_points(group="shenguan.adapters")}


def create_adapter_package(name: str, parent: Path) -> Path:
    """Render the templates into ``parent / shenguan-adapter-NAME`` and return that folder.

    Refuses an invalid name, a name an installed adapter already uses, and an existing target (never
    overwrites an author's work). Files are rendered into a temporary sibling folder which is renamed into
    place at the end, so a failure leaves no half-written package behind.
    """
    names = names_for(name)
    if name in installed_adapter_names():
        raise ScaffoldError(
            f"an installed adapter is already registered as {name!r}; pick another name so that "
            f"`adapter = \"{name}\"` in shenguan.toml stays unambiguous"
        )
    target = parent / names.directory
    if target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} already exists; refusing to overwrite it (choose another --dir or name)")
    parent.mkdir(parents=True, exist_ok=True)
    values = names.placeholders()
    staging = Path(tempfile.mkdtemp(prefix=f".{names.directory}-", dir=parent))
    try:
        for parts, template in _walk(_templates()):
            out = staging.joinpath(*_target_parts(parts, names))
            out.parent.mkdir(parents=True, exist_ok=True)
            text = render_text(template.read_text(encoding="utf-8"), values, where="/".join(parts))
            out.write_text(text, encoding="utf-8")
        staging.rename(target)  # atomic on one filesystem; fails if someone created target meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
