"""Event payload models, one module per family. Importing this package registers every event type."""

from schemas.events.approval import (
    ApprovalDecided,
    ApprovalItem,
    Certificate,
    Commitment,
    CommitmentMode,
    DecisionResult,
)
from schemas.events.credit import (
    CreditLicensePublished,
    CreditPenaltyPublished,
    LicenseCategory,
    LicenseStatus,
    PenaltyCategory,
    Yuan,
)
from schemas.events.supervision import ClaimMode, SuperviseObject, SupervisionTaskClaimed, SupervisionTaskCreated

__all__ = [
    "ApprovalDecided",
    "ApprovalItem",
    "Certificate",
    "ClaimMode",
    "Commitment",
    "CommitmentMode",
    "CreditLicensePublished",
    "CreditPenaltyPublished",
    "DecisionResult",
    "LicenseCategory",
    "LicenseStatus",
    "PenaltyCategory",
    "SuperviseObject",
    "SupervisionTaskClaimed",
    "SupervisionTaskCreated",
    "Yuan",
]
