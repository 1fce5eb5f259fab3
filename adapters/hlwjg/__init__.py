"""互联网+监管 (``hlwjg``): destination for approval records; opens a supervision task for each."""

from adapters.hlwjg.adapter import HlwjgAdapter

__all__ = ["HlwjgAdapter"]
