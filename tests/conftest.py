import sys
from pathlib import Path

import pytest

from gateway.logging import configure_logging

# Tests import their own helpers (tests/factories.py, tests/gateway/fakes.py) by plain module name.
# Appended, not prepended: the real packages (adapters, gateway, …) must win over test folders of the same name.
sys.path.append(str(Path(__file__).parent))

# PostgreSQL fixtures (a database per session, a schema per test; skip locally / fail under CI=true without a server).
from pgtest import pg_database, pg_url  # noqa: F401


@pytest.fixture(autouse=True)
def _logs_on_stderr() -> None:
    """Every test starts with the gateway's logging: JSON lines on stderr, debug level (tests assert on it).

    Logging is process-wide; without this a test that resets structlog to its defaults (stdout) or
    a demo that raised the level would leak into whichever test runs next — a CLI's JSON report
    mixed with log lines, or captured logs missing.
    """
    configure_logging("json", "debug")
