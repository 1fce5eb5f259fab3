import sys
from pathlib import Path

# Tests import their own helpers (tests/factories.py, tests/gateway/fakes.py) by plain module name.
# Appended, not prepended: the real packages (adapters, gateway, …) must win over test folders of the same name.
sys.path.append(str(Path(__file__).parent))

# PostgreSQL fixtures (a database per session, a schema per test; skip locally / fail under CI=true without a server).
from pgtest import pg_database, pg_url  # noqa: F401
