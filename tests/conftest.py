import sys
from pathlib import Path

# Tests import their own helpers (tests/factories.py, tests/gateway/fakes.py) by plain module name.
sys.path.insert(0, str(Path(__file__).parent))
