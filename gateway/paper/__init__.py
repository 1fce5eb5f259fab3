"""The paper channel (线上为主、线下为辅): notices and 送达回证 for deliveries no platform can carry.

``render`` turns paper deliveries into PDF; ``queue`` selects them from the store and streams them to the
renderer; the operator workflow (``shenguan paper``) records what happens to them.
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
