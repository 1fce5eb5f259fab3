"""Event payload models, one module per family. Importing this package registers every event type."""

from schemas.events.approval import (
    ApprovalDecided,
    ApprovalItem,
    Certificate,
    Commitment,
    CommitmentMode,
    DecisionResult,
)
from schemas.events.supervision import ClaimMode, SuperviseObject, SupervisionTaskClaimed, SupervisionTaskCreated

__all__ = [
    "ApprovalDecided",
    "ApprovalItem",
    "Certificate",
    "ClaimMode",
    "Commitment",
    "CommitmentMode",
    "DecisionResult",
    "SuperviseObject",
    "SupervisionTaskClaimed",
    "SupervisionTaskCreated",
]
