"""Paper deliveries render to a notice and a 送达回证 whose text a receiver (and pypdf) can read back.

Text is checked through pypdf's extraction: reportlab's STSong-Light CID font (UniGB-UCS2-H) maps back
to Unicode, so what a test asserts is what a copy-paste or a search in a PDF viewer would find.
Whitespace is removed before comparing because table cells and wrapped lines put line breaks where the
layout, not the content, decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from pypdf import PdfReader
from stdnum.cn import ric

from factories import CST, approval, envelope
from gateway.paper import PaperItem, cli_progress, receipt_code, render_batch, render_item, safe_output_path
from gateway.paper.render import _qr_drawing
from schemas import Envelope, SupervisionTaskCreated
from schemas.identifiers import mask_id_number

RECEIPT_LABELS = (
    "送达文书名称",
    "文号",
    "受送达人",
    "送达地点",
    "送达方式",
    "收件人签名或盖章",
    "签收日期",
    "代收理由",
    "见证人",
    "送达人",
    "备注",
)


def _person_id() -> str:
    body = "32070619900307123"
    return body + ric.calc_check_digit(body + "0")


def item(delivery_id: int = 42, env: Envelope | None = None, **changes: object) -> PaperItem:
    env = env or envelope()
    data: dict[str, object] = {
        "delivery_id": delivery_id,
        "message_id": env.id,
        "envelope": env,
        "destination": "连云港市海州区市场监督管理局",
        "address": "连云港市海州区朝阳东路1号",
        "issuer": "连云港市海州区行政审批局",
        "created_at": datetime(2026, 11, 21, 9, 30, tzinfo=CST),
    }
    data.update(changes)
    return PaperItem(**data)  # type: ignore[arg-type]


def pages(path: Path) -> list[str]:
    """Each page's text with all whitespace removed."""
    return [re.sub(r"\s+", "", page.extract_text()) for page in PdfReader(path).pages]


def test_approval_notice_carries_the_business_content(tmp_path: Path) -> None:
    out = render_item(item(), tmp_path / "a.pdf")
    notice, _receipt = pages(out)

    assert "审批结果信息告知书" in notice
    assert "连云港市海州区市场监督管理局：" in notice  # addressed to the receiver
    for text in (
        "连云港海州区某某餐饮有限公司",
        "统一社会信用代码91320700MA1X2Y3K05",  # a legal person's code is public (双公示): printed in full
        "事项名称食品经营许可",
        "办件编号320700261121000012345",
        "审批结果准予许可",
        "决定日期2026年11月20日",
        "证照编号JY33207000012345",
        "有效期2026年11月20日至2031年11月19日",
        "告知承诺是（事后核查），承诺期限20个工作日",
        "320700",
        "连云港市海州区行政审批局",
        "2026年11月21日",
    ):
        assert text in notice, text
    assert "13800138000" not in notice  # phone numbers are not printed
    assert "收件人签名或盖章" not in notice and "本回证一式两份" not in notice  # the receipt is its own page


def test_long_term_certificate_and_other_results_read_in_chinese(tmp_path: Path) -> None:
    env = envelope(
        result="rejected",
        result_description=None,
        certificate={"number": "JY1", "valid_from": "2026-11-20", "long_term": True},
        commitment={"mode": "deferred_materials"},
    )
    (notice, _) = pages(render_item(item(env=env), tmp_path / "a.pdf"))
    assert "审批结果不予许可" in notice
    assert "有效期自2026年11月20日起长期有效" in notice
    assert "告知承诺是（材料延期），承诺期限按本地区规定" in notice
    assert "rejected" not in notice and "deferred_materials" not in notice


def test_natural_persons_id_number_appears_only_masked(tmp_path: Path) -> None:
    id_number = _person_id()
    env = envelope(
        applicant={"kind": "natural", "name": "张三", "id_type": "resident_id", "id_number": id_number},
    )
    out = render_item(item(env=env), tmp_path / "a.pdf")
    texts = pages(out)
    assert f"居民身份证号码{mask_id_number(id_number)}" in texts[0]
    assert all(id_number not in text for text in texts)
    assert all(id_number[6:14] not in text for text in texts)  # not even the birth date
    assert id_number.encode() not in out.read_bytes()  # nor anywhere in the file (metadata, streams)


def test_receipt_has_every_field_and_the_document_being_served(tmp_path: Path) -> None:
    env = envelope(
        certificate={
            "number": "JY33207000012345",
            "document_name": "准予行政许可决定书",
            "document_no": "连海审许〔2026〕1234号",
            "valid_from": "2026-11-20",
            "valid_to": "2031-11-19",
        }
    )
    (_, receipt) = pages(render_item(item(env=env, method="邮寄送达"), tmp_path / "a.pdf"))
    assert "送达回证" in receipt
    for label in RECEIPT_LABELS:
        assert label in receipt, label
    assert "送达文书名称准予行政许可决定书" in receipt  # defaults to the certificate's decision document
    assert "文号连海审许〔2026〕1234号" in receipt
    assert "受送达人连云港市海州区市场监督管理局" in receipt
    assert "送达地点连云港市海州区朝阳东路1号" in receipt
    assert "送达方式邮寄送达" in receipt
    assert "签收日期年月日" in receipt
    assert "本回证一式两份" in receipt
    assert "事项名称" not in receipt  # the business content stays on the notice


def test_explicit_document_overrides_and_defaults(tmp_path: Path) -> None:
    (_, receipt) = pages(
        render_item(item(document_name="责令改正通知书", document_no="连海监〔2026〕9号"), tmp_path / "a.pdf")
    )
    assert "送达文书名称责令改正通知书" in receipt and "文号连海监〔2026〕9号" in receipt

    (_, receipt) = pages(render_item(item(address=None), tmp_path / "b.pdf"))
    assert "送达文书名称审批结果信息告知书" in receipt  # no decision document: the notice itself is served
    assert "文号—" in receipt
    assert "送达方式直接送达" in receipt


def test_delivery_id_is_on_both_pages_and_in_the_qr_code(tmp_path: Path) -> None:
    texts = pages(render_item(item(delivery_id=90817), tmp_path / "a.pdf"))
    assert len(texts) == 2
    assert all("送达编号：90817" in text for text in texts)
    assert receipt_code(90817) == "shenguan:delivery:90817"
    assert _qr_drawing(receipt_code(90817), 50).contents[0].value == "shenguan:delivery:90817"


def test_overlong_notice_continues_on_a_second_page(tmp_path: Path) -> None:
    # Free text (办理结果描述) has no length limit; it must flow onto a continuation page, never off the sheet.
    long_text = "经审查，申请材料齐全、符合法定形式。" * 150
    texts = pages(render_item(item(env=envelope(result_description=long_text)), tmp_path / "a.pdf"))
    assert len(texts) >= 3
    assert "审批结果详见下文" in texts[0]
    assert all("送达编号：42" in text for text in texts)
    assert "续1" in texts[1]
    # Nothing lost at the page breaks: without each page's QR caption and footer, the text is continuous.
    furniture = re.compile(r"^送达编号：42送达编号42·告知书(（续\d+）)?·消息[0-9a-f-]+shenguan审管联动")
    body = "".join(furniture.sub("", text, count=1) for text in texts[:-1])
    assert body.count("经审查，申请材料齐全、符合法定形式。") == 150
    assert "本回证一式两份" in texts[-1] and all("本回证一式两份" not in t for t in texts[:-1])


def test_cli_progress_accepts_known_and_unknown_totals() -> None:
    with cli_progress(2) as progress:
        progress(1, 2)
        progress(2, 2)
    with cli_progress(None) as progress:
        progress(1, None)


def test_user_text_is_not_markup(tmp_path: Path) -> None:
    (notice, receipt) = pages(render_item(item(destination="A&B<局>"), tmp_path / "a.pdf"))
    assert "A&B<局>：" in notice and "受送达人A&B<局>" in receipt


def test_supervision_task_renders_its_own_notice(tmp_path: Path) -> None:
    task = SupervisionTaskCreated(
        task_no="RW2026112100001",
        approval_case_no="320700261121000012345",
        supervision_matter_code="32070012345678",
        supervision_matter_name="食品经营许可事后核查",
        department_name="连云港市海州区市场监督管理局",
        created_at=datetime(2026, 11, 21, 10, 0, tzinfo=CST),
        objects=({"type": "natural", "name": "张三", "credentials_value": _person_id()},),  # type: ignore[arg-type]
    )
    env = Envelope.wrap(task, source="hlwjg", region="320700")
    (notice, receipt) = pages(render_item(item(env=env), tmp_path / "a.pdf"))
    assert "监管任务信息告知书" in notice
    assert "任务编号RW2026112100001" in notice
    assert mask_id_number(_person_id()) in notice and _person_id() not in notice
    assert "送达文书名称监管任务信息告知书" in receipt


def test_revision_is_marked(tmp_path: Path) -> None:
    (notice, _) = pages(render_item(item(env=envelope(revision=2)), tmp_path / "a.pdf"))
    assert "第2版（更正，以本版为准）" in notice


def test_batch_streams_items_in_order_and_reports_progress(tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    consumed: list[int] = []

    def queue() -> Iterator[PaperItem]:  # a generator: unsized, consumed lazily
        for n in (101, 102, 103):
            consumed.append(n)
            assert len(consumed) == len(calls) + 1  # the previous item was rendered before the next is pulled
            yield item(n, env=envelope(case_no=f"32070026112100001{n}"))

    out = render_batch(queue(), tmp_path / "day.pdf", progress=lambda done, total: calls.append((done, total)))
    texts = pages(out)
    assert len(texts) == 6
    assert calls == [(1, None), (2, None), (3, None)]
    for index, n in enumerate((101, 102, 103)):
        notice, receipt = texts[2 * index], texts[2 * index + 1]
        assert f"送达编号：{n}" in notice and "审批结果信息告知书" in notice
        assert f"办件编号32070026112100001{n}" in notice
        assert f"送达编号：{n}" in receipt and "本回证一式两份" in receipt


def test_batch_of_a_list_knows_its_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    render_batch([item(1), item(2)], tmp_path / "x.pdf", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]


def test_empty_batch_is_still_a_valid_pdf(tmp_path: Path) -> None:
    texts = pages(render_batch([], tmp_path / "empty.pdf"))
    assert texts == ["无待打印的送达文书"]


def test_failed_render_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> Iterator[PaperItem]:
        yield item(1)
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError):
        render_batch(broken(), tmp_path / "day.pdf")
    assert list(tmp_path.iterdir()) == []  # neither the PDF nor its temporary file


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    a = render_item(item(), tmp_path / "a.pdf").read_bytes()
    b = render_item(item(), tmp_path / "b.pdf").read_bytes()
    assert a == b


def test_approval_factory_is_what_the_notice_shows() -> None:
    # Guards the fixtures above: the canonical approval is a granted 事后核查 case of a legal person.
    a = approval()
    assert a.result == "granted" and a.commitment is not None and a.applicant.kind == "legal"


@pytest.mark.parametrize(
    "name",
    ["", "   ", "../x.pdf", "a/../../x.pdf", "/etc/passwd", "..", ".", "C:\\x.pdf", "\\\\host\\share\\x.pdf", "a\x00b"],
)
def test_safe_output_path_refuses_escapes(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        safe_output_path(tmp_path, name)


def test_safe_output_path_refuses_symlinks_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        safe_output_path(paper, "link/x.pdf")


def test_safe_output_path_allows_names_and_subdirectories(tmp_path: Path) -> None:
    assert safe_output_path(tmp_path, "2026-11-21.pdf") == tmp_path.resolve() / "2026-11-21.pdf"
    assert safe_output_path(tmp_path, "2026-11-21/batch.pdf") == tmp_path.resolve() / "2026-11-21" / "batch.pdf"
