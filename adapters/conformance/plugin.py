"""pytest plugin of the conformance kit, loaded through the ``pytest11`` entry point ``shenguan_conformance``.

Why a plugin at all, when the kit is plain classes: so an adapter author's CI can select or exclude the
kit uniformly (``pytest -m conformance``) and see in the report header which kit version judged the
adapter, without a line of conftest. It adds nothing else: the checks work without it.
"""

from __future__ import annotations

import pytest

KIT_VERSION = "1"
MARKER = "conformance"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: a check of the shenguan adapter conformance kit (adapters.conformance)"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"shenguan adapter conformance kit v{KIT_VERSION}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test a kit class contributes, so ``-m conformance`` selects exactly the kit's checks."""
    from adapters.conformance.destination import DestinationConformance
    from adapters.conformance.source import SourceConformance

    for item in items:
        cls = getattr(item, "cls", None)
        if cls is not None and issubclass(cls, DestinationConformance | SourceConformance):
            item.add_marker(MARKER)
