"""互联网+监管 (``hlwjg``): destination for approval records and claims (opens and marks supervision tasks), and a
source reading its event feed (task claims)."""

from adapters.hlwjg.adapter import HlwjgAdapter
from adapters.hlwjg.events import HlwjgEventsAdapter

__all__ = ["HlwjgAdapter", "HlwjgEventsAdapter"]
