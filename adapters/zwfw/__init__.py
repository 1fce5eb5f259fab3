"""政务服务一体化平台 (``zwfw``): source of 办结 approvals, pulled from its signed, cursor-paged feed."""

from adapters.zwfw.adapter import ZwfwAdapter

__all__ = ["ZwfwAdapter"]
