"""The timeliness report (考核): how many statutory deadlines of a period were met, missed or defaulted.

The quarterly assessment of 审管联动 asks, per supervising department, approval item or region: were approval
records pushed on time, were tasks claimed on time or left to default claim (默认认领), were supervision results
and feedback within their limits. This module turns deadline rows (``Store.deadlines``) into those figures; it
is pure, so the counting rules are tested without a store and stated once:

- a deadline belongs to the period in which it *falls due* (``--from``/``--to`` bound the due day);
- ``on_time`` / ``late`` / ``default``: closed deadlines by outcome (a late claim the platform still accepted is
  ``late``; a default claim, reported by the platform or recorded by shenguan, is ``default``);
- ``overdue``: still open after its due day (as of the report day); ``pending``: still open, not yet due;
- rates are over the *decided* deadlines (all but ``pending``): ``on_time_rate`` = on time / decided, and for
  claims ``default_rate`` = default / decided. A measure with nothing decided has no rate (``None``), not 0 %.

Measures whose event types the gateway cannot see yet (results, feedback) are reported as not tracked rather
than as zero, so a perfect-looking 0-of-0 is never mistaken for compliance.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from gateway.deadlines import DeadlineKind, active_rules

__all__ = ["BY", "MEASURES", "Report", "Tally", "render_csv", "render_text", "timeliness"]

Grouping = Literal["department", "item", "region"]
BY: tuple[str, ...] = ("department", "item", "region")

#: What the assessment counts, in report order: deadline kind → label.
MEASURES: dict[str, str] = {
    DeadlineKind.push.value: "pushes (推送)",
    DeadlineKind.claim.value: "claims (认领)",
    DeadlineKind.result.value: "results (监管结果)",
    DeadlineKind.feedback.value: "feedback (反馈)",
    DeadlineKind.credit.value: "双公示 records (信用公示)",
}


@dataclass(slots=True)
class Tally:
    """Counts of one measure in one group."""

    total: int = 0
    on_time: int = 0
    late: int = 0
    default: int = 0
    overdue: int = 0
    pending: int = 0

    @property
    def decided(self) -> int:
        return self.total - self.pending

    @property
    def on_time_rate(self) -> float | None:
        return round(self.on_time / self.decided, 4) if self.decided else None

    @property
    def default_rate(self) -> float | None:
        return round(self.default / self.decided, 4) if self.decided else None

    def add(self, row: Mapping[str, Any], today: date) -> None:
        self.total += 1
        if row["state"] == "open":
            if date.fromisoformat(str(row["due_on"])) < today:
                self.overdue += 1
            else:
                self.pending += 1
            return
        outcome = row["outcome"]
        if outcome == "on_time":
            self.on_time += 1
        elif outcome == "default":
            self.default += 1
        else:
            self.late += 1

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "on_time_rate": self.on_time_rate, "default_rate": self.default_rate}


@dataclass(slots=True)
class Group:
    key: str
    label: str
    tallies: dict[str, Tally] = field(default_factory=lambda: {m: Tally() for m in MEASURES})


@dataclass(slots=True)
class Report:
    """The figures of one period: per group and in total, per measure."""

    start: date
    end: date
    as_of: date
    by: str | None
    tracked: dict[str, bool]
    groups: list[Group]
    total: Group

    def as_dict(self) -> dict[str, Any]:
        def tallies(group: Group) -> dict[str, Any]:
            return {m: t.as_dict() for m, t in group.tallies.items()}

        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "as_of": self.as_of.isoformat(),
            "by": self.by,
            "measures": {m: {"label": label, "tracked": self.tracked[m]} for m, label in MEASURES.items()},
            "groups": [{"key": g.key, "label": g.label, **tallies(g)} for g in self.groups],
            "total": tallies(self.total),
        }


def _group_of(row: Mapping[str, Any], by: str) -> tuple[str, str]:
    """(key, label) of a row under a grouping; rows that lack the attribute share an explicit ``(unknown)``."""
    if by == "department":
        name, code = row.get("department_name"), row.get("department_code")
        key = code or name or ""
        label = f"{name} ({code})" if name and code else (name or code or "(unknown department)")
        return key, label
    if by == "item":
        code, name = row.get("item_code"), row.get("item_name")
        return code or "", f"{code} {name}" if code and name else (code or "(unknown item)")
    region = row.get("region") or ""
    return region, region or "(unknown region)"


def timeliness(
    rows: Iterable[Mapping[str, Any]],
    *,
    start: date,
    end: date,
    as_of: date,
    by: str | None = None,
    known_types: Iterable[str] | None = None,
) -> Report:
    """Count ``rows`` (deadlines due between ``start`` and ``end``) per measure, grouped ``by`` if given."""
    if by is not None and by not in BY:
        raise ValueError(f"--by must be one of {', '.join(BY)}, got {by!r}")
    active = {r.kind.value for r in active_rules(known=known_types)}
    groups: dict[str, Group] = {}
    total = Group("", "total")
    for row in rows:
        measure = str(row["kind"])
        due = date.fromisoformat(str(row["due_on"]))
        if measure not in MEASURES or not start <= due <= end:
            continue
        total.tallies[measure].add(row, as_of)
        if by is not None:
            key, label = _group_of(row, by)
            groups.setdefault(key, Group(key, label)).tallies[measure].add(row, as_of)
    ordered = sorted(groups.values(), key=lambda g: (g.key == "", g.key))
    return Report(start, end, as_of, by, {m: m in active for m in MEASURES}, ordered, total)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def render_text(report: Report) -> str:
    """A table per measure, one line per group and a total line, for the terminal."""
    grouped = f", by {report.by}" if report.by else ""
    lines = [
        f"Timeliness (考核) of deadlines due {report.start.isoformat()} … {report.end.isoformat()}"
        f" (as of {report.as_of.isoformat()}){grouped}"
    ]
    header = f"  {'':<34} {'total':>6} {'on time':>8} {'late':>6} {'default':>8} {'overdue':>8} {'pending':>8}"
    header += f" {'on-time rate':>13} {'default rate':>13}"
    for measure, label in MEASURES.items():
        lines.append("")
        if not report.tracked[measure]:
            lines.append(f"{label}: not tracked yet (no such events reach the gateway)")
            continue
        lines.append(label)
        lines.append(header)
        for group in [*report.groups, report.total]:
            t = group.tallies[measure]
            name = group.label if len(group.label) <= 34 else group.label[:33] + "…"
            default_rate = _percent(t.default_rate) if measure == DeadlineKind.claim.value else ""
            lines.append(
                f"  {name:<34} {t.total:>6} {t.on_time:>8} {t.late:>6} {t.default:>8} {t.overdue:>8} "
                f"{t.pending:>8} {_percent(t.on_time_rate):>13} {default_rate:>13}"
            )
    return "\n".join(lines)


CSV_COLUMNS = (
    "group",
    "label",
    "measure",
    "tracked",
    "total",
    "on_time",
    "late",
    "default_claimed",
    "overdue",
    "pending",
    "on_time_rate",
    "default_rate",
)


def render_csv(report: Report) -> str:
    """One row per group and measure (the total as group ``*``), UTF-8 with a header; rates as fractions."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for group, key in [*((g, g.key) for g in report.groups), (report.total, "*")]:
        for measure, t in group.tallies.items():
            writer.writerow(
                [
                    key,
                    group.label,
                    measure,
                    "yes" if report.tracked[measure] else "no",
                    t.total,
                    t.on_time,
                    t.late,
                    t.default,
                    t.overdue,
                    t.pending,
                    "" if t.on_time_rate is None else t.on_time_rate,
                    "" if t.default_rate is None else t.default_rate,
                ]
            )
    return out.getvalue()
