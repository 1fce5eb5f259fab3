"""Render paper deliveries: a Chinese notice (告知书) and its 送达回证 (service receipt) as PDF.

Online first, paper as fallback (线上为主、线下为辅): a delivery lands here when no platform can carry it,
when its route's channel is paper, or when the message is classified (涉密). What the receiving
department gets is what it would have read on the platform, so the notice carries the business content
of the record (for an approval: applicant, 事项, 办件编号, result, certificate, validity, 告知承诺), and
the receipt carries the fields of a 送达回证 the recipient signs.

Matching a signed receipt back. Every page carries a QR code encoding ``shenguan:delivery:<id>`` and the
delivery id printed under it, so an operator scanning or reading a returned receipt finds the delivery
whose state becomes ``paper_delivered``, even if the pages of a batch got shuffled.

Personal data. A natural person's 证件号码 is printed masked (``320706***********7``); the full number is
not needed to identify the case (the 办件编号 does that) and a printed sheet travels through many hands.
Phone numbers are not printed at all.

Where files go. The renderer writes only to the path it is given, through a temporary file in the same
directory that is renamed into place, so a half-written PDF never appears under the final name. It does
not choose paths: the caller (the paper queue) restricts them to the configured paper directory with
:func:`safe_output_path`, which matters because secret (涉密) items are rendered like any other and their
PDFs must stay where the operator's controls apply. The PDF's metadata holds no business content, so a
PDF viewer's properties dialog or a document indexer reveals nothing about the case.

Fonts. reportlab's built-in CID font ``STSong-Light`` (Adobe's Simplified Chinese set, ``UniGB-UCS2-H``)
is used: no font file to download, ship or license, every PDF viewer has a substitute, and the text
remains extractable (pypdf reads it back, which the tests rely on).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Frame, Paragraph, Spacer, Table, TableStyle
from reportlab.platypus.doctemplate import LayoutError

from schemas import (
    ApprovalDecided,
    CommitmentMode,
    DecisionResult,
    Envelope,
    IdType,
    PartyKind,
    SupervisionTaskCreated,
)
from schemas.identifiers import mask_id_number

__all__ = [
    "FONT_NAME",
    "PaperItem",
    "Progress",
    "cli_progress",
    "receipt_code",
    "render_batch",
    "render_item",
    "safe_output_path",
]

FONT_NAME = "STSong-Light"
CST = timezone(timedelta(hours=8))  # China has no DST: a fixed offset is Asia/Shanghai
APPROVAL_TITLE = "审批结果信息告知书"
SUPERVISION_TITLE = "监管任务信息告知书"
GENERIC_TITLE = "审管联动信息告知书"
RECEIPT_TITLE = "送达回证"
RECEIPT_NOTE = "本回证一式两份，一份由受送达人留存，一份由送达人带回归档。"
# Paragraphs collapse runs of spaces; non-breaking ones keep room to write the date by hand.
_SIGN_DATE = "&nbsp;" * 12 + "年" + "&nbsp;" * 8 + "月" + "&nbsp;" * 8 + "日" + "&nbsp;" * 4
EMPTY = "—"  # printed for a value the record does not carry, so a blank is never mistaken for an omission

RESULT_TEXT = {
    DecisionResult.granted: "准予许可",
    DecisionResult.rejected: "不予许可",
    DecisionResult.voided: "作废",
    DecisionResult.forwarded: "转报办结",
}
COMMITMENT_TEXT = {
    CommitmentMode.deferred_materials: "材料延期",
    CommitmentMode.material_verification: "材料核验",
    CommitmentMode.post_verification: "事后核查",
}
ID_TYPE_TEXT = {
    IdType.uscc: "统一社会信用代码",
    IdType.resident_id: "居民身份证号码",
    IdType.passport: "护照号码",
    IdType.other: "证件号码",
}

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: called after each rendered item; ``total`` is None when unknown."""

_PAGE_W, _PAGE_H = A4
_MARGIN = 20 * mm
_QR_SIZE = 26 * mm
_CELL_LIMIT = 160  # characters; longer values leave the table (see _notice_flowables)
_HEADER_H = _QR_SIZE + 8 * mm  # the band at the top of every page that holds the QR code and its caption
_FOOTER_H = 10 * mm

_font_lock = threading.Lock()
_font_registered = False


def _register_font() -> str:
    """Register the CID font once per process (registration mutates reportlab's global font table)."""
    global _font_registered
    with _font_lock:
        if not _font_registered:
            pdfmetrics.registerFont(UnicodeCIDFont(FONT_NAME))
            _font_registered = True
    return FONT_NAME


# ── the input ────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperItem:
    """One paper delivery: the message, who receives it, and what the 送达回证 states.

    ``document_name`` / ``document_no`` (送达文书名称 / 文号) default, for an approval, to the
    certificate's decision document; otherwise to the notice's title and no number.
    ``created_at`` is when the delivery was queued; it dates the notice, so re-rendering a lost sheet
    produces the same document.
    """

    delivery_id: int
    message_id: str
    envelope: Envelope
    destination: str  # 受送达人: the receiving department
    issuer: str  # the authority that issues the notice (落款)
    created_at: datetime
    address: str | None = None  # 送达地点
    method: str = "直接送达"  # 送达方式
    document_name: str | None = None  # 送达文书名称
    document_no: str | None = None  # 文号


def receipt_code(delivery_id: int) -> str:
    """What the QR code on every page encodes: enough to find the delivery, nothing about its content."""
    return f"shenguan:delivery:{delivery_id}"


# ── paths ────────────────────────────────────────────────────────────────────────────────────────────


def safe_output_path(paper_dir: Path, name: str) -> Path:
    """``paper_dir / name``, refusing any name that could leave ``paper_dir``.

    Refused with ``ValueError``: empty names, absolute paths (POSIX or Windows, drive letters, UNC),
    ``..`` components, NUL characters, and names that resolve outside the directory through a symlink.
    Subdirectories inside ``paper_dir`` (``2026-11-20/batch.pdf``) are allowed.
    """
    if not name or not name.strip() or "\x00" in name:
        raise ValueError("paper file name is empty or contains NUL")
    for flavour in (PurePosixPath(name), PureWindowsPath(name)):
        if flavour.is_absolute() or flavour.anchor:
            raise ValueError(f"paper file name must be relative to the paper directory, got {name!r}")
        if ".." in flavour.parts:
            raise ValueError(f"paper file name must not contain '..', got {name!r}")
    base = paper_dir.resolve()
    target = (base / name).resolve()
    if target == base or not target.is_relative_to(base):
        raise ValueError(f"paper file name {name!r} leaves the paper directory")
    return target


# ── rendering ────────────────────────────────────────────────────────────────────────────────────────


def render_item(item: PaperItem, out: Path) -> Path:
    """Write ``item``'s notice and 送达回证 (two pages, more only for an overlong notice) to ``out``."""
    return render_batch([item], out)


def render_batch(items: Iterable[PaperItem], out: Path, *, progress: Progress | None = None) -> Path:
    """Write a whole queue into one PDF, each item's notice then its receipt, in order.

    Items are consumed one at a time from the iterable (a store cursor works), so a day's queue is never
    held in memory as objects; the pages are drawn on one canvas. ``total`` for ``progress`` is
    ``len(items)`` when the iterable is sized, None otherwise.
    """
    total = len(items) if isinstance(items, Sized) else None
    font = _register_font()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            # invariant: no creation timestamp or random document id, so the same queue renders to the
            # same bytes (a re-print can be compared with the original).
            canvas = Canvas(fh, pagesize=A4, invariant=True, pageCompression=1)
            canvas.setCreator("shenguan")
            canvas.setTitle("送达文书")
            styles = _Styles(font)
            done = 0
            for item in items:
                _draw_item(canvas, item, styles)
                done += 1
                if progress is not None:
                    progress(done, total)
            if done == 0:
                _draw_empty(canvas, font)
            canvas.save()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


@contextlib.contextmanager
def cli_progress(total: int | None, *, label: str = "打印送达文书") -> Iterator[Progress]:
    """A ``progress`` callback drawing a rich progress bar on stderr (stdout stays clean for ``--json``).

    ``with cli_progress(len(items)) as progress: render_batch(items, out, progress=progress)``. An unknown
    total shows a pulsing bar and the count.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with bar:
        task = bar.add_task(label, total=total)

        def update(done: int, known_total: int | None) -> None:
            bar.update(task, completed=done, total=known_total)

        yield update


# ── layout ───────────────────────────────────────────────────────────────────────────────────────────


class _Styles:
    """Paragraph styles in the CID font; CJK word wrap so long names break anywhere, as Chinese does."""

    def __init__(self, font: str) -> None:
        base = ParagraphStyle("base", fontName=font, fontSize=11, leading=16, wordWrap="CJK")
        self.font = font
        self.body = base
        self.title = ParagraphStyle("title", parent=base, fontSize=20, leading=28, alignment=TA_CENTER)
        self.subtitle = ParagraphStyle("subtitle", parent=base, fontSize=10, leading=14, alignment=TA_CENTER)
        self.label = ParagraphStyle("label", parent=base, alignment=TA_CENTER)
        self.right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)
        self.indent = ParagraphStyle("indent", parent=base, firstLineIndent=22)
        self.small = ParagraphStyle("small", parent=base, fontSize=9, leading=12)


def _draw_item(canvas: Canvas, item: PaperItem, styles: _Styles) -> None:
    title, rows = _notice_content(item)
    notice = _notice_flowables(item, title, rows, styles)
    _flow(canvas, item, notice, styles, part="告知书")
    _flow(canvas, item, _receipt_flowables(item, title, styles), styles, part=RECEIPT_TITLE)


def _flow(canvas: Canvas, item: PaperItem, flowables: list[Flowable], styles: _Styles, *, part: str) -> None:
    """Lay ``flowables`` out on as many pages as they need, each with the QR header and a footer."""
    pending = list(flowables)
    page = 0
    while pending:
        page += 1
        _draw_page_frame(canvas, item, styles, part=part, page=page)
        frame = Frame(
            _MARGIN,
            _MARGIN + _FOOTER_H,
            _PAGE_W - 2 * _MARGIN,
            _PAGE_H - 2 * _MARGIN - _HEADER_H - _FOOTER_H,
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
            showBoundary=0,
        )
        placed = 0
        while pending:
            head = pending[0]
            if frame.add(head, canvas, trySplit=1):
                pending.pop(0)
                placed += 1
                continue
            parts = frame.split(head, canvas)
            if len(parts) > 1:
                pending[0:1] = parts
                continue
            if placed == 0:  # does not fit on an empty page and cannot split: a bug, not a data problem
                raise LayoutError(f"cannot place {type(head).__name__} on a page")
            break
        canvas.showPage()


def _draw_page_frame(canvas: Canvas, item: PaperItem, styles: _Styles, *, part: str, page: int) -> None:
    """The QR code with the delivery id under it (top right), and a footer naming delivery and message."""
    code = receipt_code(item.delivery_id)
    drawing = _qr_drawing(code, _QR_SIZE)
    x = _PAGE_W - _MARGIN - _QR_SIZE
    y = _PAGE_H - _MARGIN - _QR_SIZE
    drawing.drawOn(canvas, x, y)
    canvas.setFont(styles.font, 8)
    canvas.drawCentredString(x + _QR_SIZE / 2, y - 4 * mm, f"送达编号：{item.delivery_id}")
    canvas.setFont(styles.font, 8)
    suffix = f"（续{page - 1}）" if page > 1 else ""
    canvas.drawString(_MARGIN, _MARGIN, f"送达编号 {item.delivery_id} · {part}{suffix} · 消息 {item.message_id}"[:120])
    canvas.drawRightString(_PAGE_W - _MARGIN, _MARGIN, "shenguan 审管联动")


def _qr_drawing(value: str, size: float) -> Drawing:
    """A QR code scaled to ``size`` points square; error-correction M survives a stamp over a corner."""
    widget = QrCodeWidget(value, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    width, height = x1 - x0, y1 - y0
    drawing = Drawing(size, size, transform=[size / width, 0, 0, size / height, 0, 0])
    drawing.add(widget)
    return drawing


def _draw_empty(canvas: Canvas, font: str) -> None:
    """An empty queue still yields a valid PDF (a PDF with no pages is not one), saying so."""
    canvas.setFont(font, 14)
    canvas.drawCentredString(_PAGE_W / 2, _PAGE_H / 2, "无待打印的送达文书")
    canvas.showPage()


# ── the notice (page 1) ──────────────────────────────────────────────────────────────────────────────


def _notice_content(item: PaperItem) -> tuple[str, list[tuple[str, str]]]:
    """The notice's title and its (label, value) rows, from the typed payload of the envelope."""
    env = item.envelope
    payload = env.payload()
    if isinstance(payload, ApprovalDecided):
        rows = _approval_rows(payload)
        title = APPROVAL_TITLE
    elif isinstance(payload, SupervisionTaskCreated):
        rows = _supervision_rows(payload)
        title = SUPERVISION_TITLE
    else:
        rows = [("信息类型", env.type), ("业务编号", env.business_key), ("发生时间", _date_time(env.time))]
        title = GENERIC_TITLE
    if env.revision > 1:
        rows.append(("版本", f"第 {env.revision} 版（更正，以本版为准）"))
    return title, rows


def _approval_rows(p: ApprovalDecided) -> list[tuple[str, str]]:
    applicant = p.applicant
    id_label = ID_TYPE_TEXT.get(applicant.id_type, "证件号码")
    id_value = applicant.id_number
    if applicant.kind == PartyKind.natural or applicant.id_type == IdType.resident_id:
        id_value = mask_id_number(id_value)
    result = RESULT_TEXT.get(p.result, str(p.result))
    if p.result_description and p.result_description != result:
        result = f"{result}（{p.result_description}）"
    rows: list[tuple[str, str]] = [
        ("申请人", applicant.name),
        (id_label, id_value),
    ]
    if applicant.business_registration_no:
        rows.append(("工商注册号", applicant.business_registration_no))
    if applicant.kind != PartyKind.natural and applicant.legal_representative:
        rows.append(("法定代表人", applicant.legal_representative))
    rows += [
        ("事项名称", p.item.name),
        ("事项编码", p.item.code),
        ("办件编号", p.case_no),
        ("审批结果", result),
        ("受理日期", _date(p.received_at) if p.received_at else EMPTY),
        ("决定日期", _date(p.decided_at)),
    ]
    cert = p.certificate
    if cert is not None:
        rows += [
            ("证照名称", cert.name or EMPTY),
            ("证照编号", cert.number or EMPTY),
            ("决定文书", _join(cert.document_name, cert.document_no)),
            ("有效期", _validity(cert.valid_from, cert.valid_to, long_term=cert.long_term)),
        ]
    else:
        rows.append(("证照", "无"))
    rows.append(("告知承诺", _commitment(p)))
    rows.append(("行政区划代码", p.region))
    return rows


def _supervision_rows(p: SupervisionTaskCreated) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = [
        ("任务编号", p.task_no),
        ("关联办件编号", p.approval_case_no or EMPTY),
        ("监管事项", _join(p.supervision_matter_name, p.supervision_matter_code)),
        ("监管部门", p.department_name or EMPTY),
        ("生成时间", _date_time(p.created_at)),
        ("认领期限", _date(p.claim_deadline) if p.claim_deadline else EMPTY),
    ]
    for n, obj in enumerate(p.objects, start=1):
        ident = obj.credentials_value or obj.code
        if ident and (obj.type == "natural" or "身份证" in (obj.credentials_type or "")):
            ident = mask_id_number(ident)
        rows.append((f"监管对象{n}", _join(obj.name, ident)))
    if p.region:
        rows.append(("行政区划代码", p.region))
    return rows


def _commitment(p: ApprovalDecided) -> str:
    if p.commitment is None:
        return "否"
    mode = COMMITMENT_TEXT.get(p.commitment.mode, str(p.commitment.mode))
    if p.commitment.period_days is None:
        period = "承诺期限按本地区规定"
    else:
        period = f"承诺期限 {p.commitment.period_days} 个工作日"
    return f"是（{mode}），{period}"


def _validity(valid_from: date | None, valid_to: date | None, *, long_term: bool) -> str:
    start = _date(valid_from) if valid_from else None
    if long_term:
        return f"自 {start} 起长期有效" if start else "长期"
    if start and valid_to:
        return f"{start} 至 {_date(valid_to)}"
    if valid_to:
        return f"至 {_date(valid_to)}"
    return f"自 {start} 起" if start else EMPTY


def _notice_flowables(item: PaperItem, title: str, rows: list[tuple[str, str]], styles: _Styles) -> list[Flowable]:
    name, number = _document(item, title)
    # Under the title: the document being served, unless it is this notice itself (then only its 文号).
    subtitle = (number or "") if name == title else _join(name, number)
    # A table row cannot break across pages cleanly, and free text (办理结果描述) has no length limit: a long
    # value is printed after the table as ordinary paragraphs, which do, and its row points there.
    cells: list[list[Flowable]] = []
    appendix: list[Flowable] = []
    for label, value in rows:
        if len(value) > _CELL_LIMIT:
            appendix += [Spacer(0, 3 * mm), Paragraph(f"{_esc(label)}：{_esc(value)}", styles.indent)]
            value = "详见下文"
        cells.append([Paragraph(_esc(label), styles.label), Paragraph(_esc(value), styles.body)])
    table = Table(cells, colWidths=[36 * mm, None], style=_grid())
    intro = (
        f"现将{_esc(_what(item))}告知你单位。本告知书经线下送达，与平台推送具有同等效力；"
        "请依职责做好后续监管工作，并在所附送达回证上签收。"
    )
    return [
        Paragraph(_esc(title), styles.title),
        Paragraph(_esc(subtitle), styles.subtitle),
        Spacer(0, 6 * mm),
        Paragraph(f"{_esc(item.destination)}：", styles.body),
        Spacer(0, 2 * mm),
        Paragraph(intro, styles.indent),
        Spacer(0, 4 * mm),
        table,
        *appendix,
        Spacer(0, 10 * mm),
        Paragraph(_esc(item.issuer), styles.right),
        Paragraph(_date(item.created_at), styles.right),
    ]


def _what(item: PaperItem) -> str:
    payload_type = item.envelope.type
    if payload_type == ApprovalDecided.event_type:
        return "以下行政审批结果信息"
    if payload_type == SupervisionTaskCreated.event_type:
        return "以下监管任务信息"
    return "以下审管联动信息"


def _document(item: PaperItem, title: str) -> tuple[str, str | None]:
    """送达文书名称 and 文号: the item's own, else the approval's decision document, else the notice."""
    name, number = item.document_name, item.document_no
    if item.envelope.type == ApprovalDecided.event_type:
        payload = item.envelope.payload()
        cert = payload.certificate if isinstance(payload, ApprovalDecided) else None
        if cert is not None:
            name = name or cert.document_name
            number = number or cert.document_no
    return name or title, number


# ── the 送达回证 (page 2) ─────────────────────────────────────────────────────────────────────────────


def _receipt_flowables(item: PaperItem, title: str, styles: _Styles) -> list[Flowable]:
    name, number = _document(item, title)
    blank = ""
    # Minimum heights give room to write by hand; every row still grows with what it holds.
    rows: list[tuple[str, str, float | None]] = [
        ("送达文书名称", name, None),
        ("文号", number or EMPTY, None),
        ("受送达人", item.destination, None),
        ("送达地点", item.address or blank, 12 * mm),
        ("送达方式", item.method, None),
        ("收件人签名或盖章", blank, 32 * mm),
        ("签收日期", _SIGN_DATE, 14 * mm),
        ("代收理由", blank, 18 * mm),
        ("见证人", blank, 14 * mm),
        ("送达人", blank, 14 * mm),
        ("备注", blank, 22 * mm),
    ]
    data: list[list[Any]] = []
    heights: list[float] = []
    for label, value, height in rows:
        style = styles.right if label == "签收日期" else styles.body
        text = value if label == "签收日期" else _esc(value)  # the only markup-bearing value
        data.append([Paragraph(_esc(label), styles.label), Paragraph(text, style)])
        heights.append(height or 0)
    table = Table(data, colWidths=[40 * mm, None], minRowHeights=heights, style=_grid())
    return [
        Paragraph(RECEIPT_TITLE, styles.title),
        Paragraph(_esc(f"{item.issuer}　送达编号 {item.delivery_id}"), styles.subtitle),
        Spacer(0, 6 * mm),
        table,
        Spacer(0, 4 * mm),
        Paragraph(RECEIPT_NOTE, styles.small),
        Paragraph(
            "受送达人拒绝签收的，送达人应在备注栏注明情况，由见证人签名。签收后请将回证交回送达人，"
            "本回证右上角二维码用于登记签收结果，请勿涂改或遮挡。",
            styles.small,
        ),
    ]


# ── helpers ──────────────────────────────────────────────────────────────────────────────────────────


def _grid() -> TableStyle:
    return TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.8, colors.black),
            ("VALIGN", (0, 0), (0, -1), "MIDDLE"),
            ("VALIGN", (1, 0), (1, -1), "MIDDLE"),
            ("LEFTPADDING", (0, 0), (-1, -1), 5),
            ("RIGHTPADDING", (0, 0), (-1, -1), 5),
            ("TOPPADDING", (0, 0), (-1, -1), 4),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ]
    )


def _date(value: date | datetime) -> str:
    """``2026年11月20日``; an aware datetime is read in China Standard Time, whatever zone it carries."""
    if isinstance(value, datetime):
        value = value.astimezone(CST).date() if value.tzinfo else value.date()
    return f"{value.year}年{value.month}月{value.day}日"


def _date_time(value: datetime) -> str:
    local = value.astimezone(CST) if value.tzinfo else value
    return f"{_date(local)} {local:%H:%M}"


def _join(*parts: str | None, sep: str = "　") -> str:
    present = [p for p in parts if p]
    return sep.join(present) if present else EMPTY


def _esc(text: str) -> str:
    """Paragraph text is mini-markup: escape what the record says so ``<`` or ``&`` print as themselves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
