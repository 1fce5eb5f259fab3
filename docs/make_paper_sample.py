"""Render ``docs/paper-sample.png``: a sample paper delivery (notice and 送达回证 side by side).

Run from the repository root with the test extra and pypdfium2 installed (``pip install pypdfium2``; it
is a documentation tool only, not a dependency of shenguan):

    python docs/make_paper_sample.py

The data is the canonical test approval of ``tests/factories.py``, so the picture shows what the tests
check. pypdfium2 is used instead of poppler's ``pdftoppm`` because it installs from a wheel.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import pypdfium2  # noqa: E402
from PIL import Image  # noqa: E402

import factories  # noqa: E402
from gateway.paper import PaperItem, render_item  # noqa: E402


def main(out: Path = ROOT / "docs" / "paper-sample.png", scale: float = 1.4) -> Path:
    env = factories.envelope(
        certificate={
            "number": "JY33207000012345",
            "name": "食品经营许可证",
            "document_name": "准予行政许可决定书",
            "document_no": "连海审许〔2026〕1234号",
            "valid_from": "2026-11-20",
            "valid_to": "2031-11-19",
        }
    )
    item = PaperItem(
        delivery_id=1024,
        message_id=env.id,
        envelope=env,
        destination="连云港市海州区市场监督管理局",
        address="连云港市海州区朝阳东路1号",
        issuer="连云港市海州区行政审批局",
        created_at=datetime(2026, 11, 21, 9, 30, tzinfo=factories.CST),
    )
    with tempfile.TemporaryDirectory() as tmp:
        pdf_path = render_item(item, Path(tmp) / "sample.pdf")
        pdf = pypdfium2.PdfDocument(str(pdf_path))
        try:
            pages = [pdf[i].render(scale=scale).to_pil().convert("RGB") for i in range(len(pdf))]
        finally:
            pdf.close()
    gap = 16
    width = sum(p.width for p in pages) + gap * (len(pages) + 1)
    height = max(p.height for p in pages) + 2 * gap
    sheet = Image.new("RGB", (width, height), (200, 200, 200))
    x = gap
    for page in pages:
        sheet.paste(page, (x, gap))
        x += page.width + gap
    sheet.save(out, optimize=True)
    return out


if __name__ == "__main__":
    print(main())
