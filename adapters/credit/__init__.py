"""公共信用信息平台 (``credit``): batch destination for 双公示 records — 行政许可 from granted approvals and
``credit.license.published``, 行政处罚 from ``credit.penalty.published``."""

from adapters.credit.adapter import CreditAdapter

__all__ = ["CreditAdapter"]
