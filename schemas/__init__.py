"""The canonical model: the language every adapter and the gateway speak. Imports nothing of ours."""

from schemas.envelope import SCHEMA_VERSION, Classification, Envelope, EventPayload, event_types, payload_model
from schemas.errors import describe_validation_error
from schemas.events import (
    ApprovalDecided,
    ApprovalItem,
    Certificate,
    ClaimMode,
    Commitment,
    CommitmentMode,
    CreditLicensePublished,
    CreditPenaltyPublished,
    DecisionResult,
    LicenseCategory,
    LicenseStatus,
    PenaltyCategory,
    SuperviseObject,
    SupervisionTaskClaimed,
    SupervisionTaskCreated,
)
from schemas.identifiers import USCC, RegionCode, ResidentID
from schemas.parties import IdType, Party, PartyKind

__all__ = [
    "SCHEMA_VERSION",
    "USCC",
    "ApprovalDecided",
    "ApprovalItem",
    "Certificate",
    "ClaimMode",
    "Classification",
    "Commitment",
    "CommitmentMode",
    "CreditLicensePublished",
    "CreditPenaltyPublished",
    "DecisionResult",
    "Envelope",
    "EventPayload",
    "IdType",
    "LicenseCategory",
    "LicenseStatus",
    "Party",
    "PartyKind",
    "PenaltyCategory",
    "RegionCode",
    "ResidentID",
    "SuperviseObject",
    "SupervisionTaskClaimed",
    "SupervisionTaskCreated",
    "describe_validation_error",
    "event_types",
    "payload_model",
]
