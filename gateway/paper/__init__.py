"""The paper channel (线上为主、线下为辅): notices and 送达回证 for deliveries no platform can carry.

``render`` turns paper deliveries into PDF; the queue that selects them, the operator workflow and the
recording of signed receipts build on it.
"""

from gateway.paper.render import (
    PaperItem,
    Progress,
    cli_progress,
    receipt_code,
    render_batch,
    render_item,
    safe_output_path,
)

__all__ = [
    "PaperItem",
    "Progress",
    "cli_progress",
    "receipt_code",
    "render_batch",
    "render_item",
    "safe_output_path",
]
