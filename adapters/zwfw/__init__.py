"""政务服务一体化平台 (``zwfw``): source of 办结 approvals (signed, cursor-paged feed), destination of the supervision
side's messages of the closed loop (linkage inbox), and source of the approval bureau's own (linkage feed)."""

from adapters.zwfw.adapter import ZwfwAdapter, ZwfwLinkageAdapter

__all__ = ["ZwfwAdapter", "ZwfwLinkageAdapter"]
