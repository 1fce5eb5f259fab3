"""Event payload models, one module per family. Importing this package registers every event type."""

from schemas.events.approval import (
    ApprovalDecided,
    ApprovalItem,
    Certificate,
    Commitment,
    CommitmentMode,
    DecisionResult,
)
from schemas.events.commitment import CommitmentBreachReported, LicenseRevocationAdvised
from schemas.events.credit import (
    CreditLicensePublished,
    CreditPenaltyPublished,
    LicenseCategory,
    LicenseStatus,
    PenaltyCategory,
    Yuan,
)
from schemas.events.credit_commitment import CreditCommitmentPublished, CreditFulfilmentPublished, FulfilmentStatus
from schemas.events.feedback import ApprovalFeedbackSent, FeedbackOutcome
from schemas.events.guidance import GuidanceAnswered, GuidanceRequested, GuidanceSide
from schemas.events.inspection import InspectionResult, SupervisionInspectionReported
from schemas.events.loop import CaseNo, Inspector, LoopEvent
from schemas.events.preapproval import (
    ConfirmationDecision,
    PreapprovalConfirmationAnswered,
    PreapprovalConfirmationRequested,
)
from schemas.events.result import LicenseAction, ResultConclusion, SupervisionResultReported
from schemas.events.site_inspection import (
    SiteInspectionConclusion,
    SiteInspectionMode,
    SiteInspectionReported,
    SiteInspectionRequested,
)
from schemas.events.supervision import ClaimMode, SuperviseObject, SupervisionTaskClaimed, SupervisionTaskCreated

__all__ = [
    "ApprovalDecided",
    "ApprovalFeedbackSent",
    "ApprovalItem",
    "CaseNo",
    "Certificate",
    "ClaimMode",
    "Commitment",
    "CommitmentBreachReported",
    "CommitmentMode",
    "ConfirmationDecision",
    "CreditCommitmentPublished",
    "CreditFulfilmentPublished",
    "CreditLicensePublished",
    "CreditPenaltyPublished",
    "DecisionResult",
    "FeedbackOutcome",
    "FulfilmentStatus",
    "GuidanceAnswered",
    "GuidanceRequested",
    "GuidanceSide",
    "InspectionResult",
    "Inspector",
    "LicenseAction",
    "LicenseCategory",
    "LicenseRevocationAdvised",
    "LicenseStatus",
    "LoopEvent",
    "PenaltyCategory",
    "PreapprovalConfirmationAnswered",
    "PreapprovalConfirmationRequested",
    "ResultConclusion",
    "SiteInspectionConclusion",
    "SiteInspectionMode",
    "SiteInspectionReported",
    "SiteInspectionRequested",
    "SuperviseObject",
    "SupervisionInspectionReported",
    "SupervisionResultReported",
    "SupervisionTaskClaimed",
    "SupervisionTaskCreated",
    "Yuan",
]
