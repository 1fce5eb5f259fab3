"""Platform adapters and the SDK they are written with (protocol, error taxonomy, registry)."""

from adapters.base import (
    AcknowledgingSource,
    Adapter,
    BatchDestinationAdapter,
    BatchResult,
    Capabilities,
    DeliveryReceipt,
    DestinationAdapter,
    Direction,
    PollPage,
    RawRecord,
    RecordOutcome,
    SourceAdapter,
)
from adapters.errors import (
    AdapterError,
    DecodeError,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
    classify_transport_error,
)

__all__ = [
    "AcknowledgingSource",
    "Adapter",
    "AdapterError",
    "BatchDestinationAdapter",
    "BatchResult",
    "Capabilities",
    "DecodeError",
    "DeliveryReceipt",
    "DestinationAdapter",
    "Direction",
    "OutcomeUnknownError",
    "PermanentError",
    "PollPage",
    "RawRecord",
    "RecordOutcome",
    "RetryableError",
    "SourceAdapter",
    "classify_transport_error",
]
