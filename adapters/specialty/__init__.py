"""工程建设项目审批管理系统 via its 前置库 (``specialty``): the mapping engine with a packaged mapping."""

from adapters.specialty.adapter import PACKAGED_MAPPING, SpecialtyAdapter, packaged_mapping

__all__ = ["PACKAGED_MAPPING", "SpecialtyAdapter", "packaged_mapping"]
