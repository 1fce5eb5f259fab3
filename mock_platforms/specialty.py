"""Fake 工程建设项目审批管理系统 (``specialty``): a 前置库 (exchange database) in an SQLite file.

The real system does not answer HTTP: it writes rows into exchange tables and reads back the marks the
consumer leaves on them. So this mock's native interface is the database file itself — table
``SPGL_XMSPSXBLXXB`` (项目审批事项办理信息), one row per decided approval inserted with ``SJSCZT = 0``; a reader
marks a row ``3`` (accepted) or ``2``/``-1`` (failed, reason in ``SJWXYY``). The ``_mock/`` control plane
writes rows (``generate``, ``inject``), reports them with their marks (``records``: ``accepted`` = rows
marked 3, ``rejected`` = rows marked 2 or -1, ``pending`` = rows still 0) and empties the table (``reset``).

Rows are derived from the same seeded 办件 generator as the zwfw mock (``generator.generate_banjian``), and
this mock keeps its own PROJID counter starting at 1 as zwfw does: ``generate`` with the seed used on the
zwfw mock yields the same approvals (same 办件编号, same content) written in the exchange table's own
conventions — compact ``yyyyMMddHHmmss`` times, ``20991231`` for 长期, its own code tables, ``NULL`` for
absent. That overlap is what a cross-source test needs: one fact arriving from both platforms.

Faults: ``down`` takes an exclusive lock on the database (rollback-journal mode, so readers are blocked
too) until it is cleared — to a reader the exchange database is unreachable (``database is locked``). The
HTTP-level faults (``error_rate``, ``latency_ms``, ``drop_response_rate``, ``malformed_rate``) apply only to
the small native info endpoint (``GET /specialty/``); a database has no responses to drop or garble.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException

from mock_platforms.control import GenerateRequest
from mock_platforms.faults import FaultState
from mock_platforms.generator import generate_banjian
from mock_platforms.traffic import TrafficLog

TABLE = "SPGL_XMSPSXBLXXB"
PENDING, ACCEPTED, FAILED = 0, 3, (2, -1)

# (column, SQL type): the 前置库 standard's names, plus the approval fields this table carries.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("LSH", "INTEGER PRIMARY KEY AUTOINCREMENT"),  # 流水号
    ("XZQHDM", "TEXT"),  # 行政区划代码
    ("XMDM", "TEXT"),  # 项目代码
    ("SPSXSLBM", "TEXT"),  # 审批事项实例编码 (= 办件编号)
    ("SPSXBM", "TEXT"),  # 审批事项编码
    ("SPSXMC", "TEXT"),  # 审批事项名称
    ("SQRLX", "TEXT"),  # 申请人类型: 10 法人, 20 自然人, 90 其他
    ("SQRMC", "TEXT"),  # 申请人名称
    ("SQRZJLX", "TEXT"),  # 证件类型: 01 统一社会信用代码, 02 居民身份证, 03 护照, 99 其他
    ("SQRZJHM", "TEXT"),  # 证件号码
    ("FDDBR", "TEXT"),  # 法定代表人
    ("LXDH", "TEXT"),  # 联系电话
    ("SLSJ", "TEXT"),  # 受理时间 yyyyMMddHHmmss
    ("BLSJ", "TEXT"),  # 办理(办结)时间 yyyyMMddHHmmss
    ("BLZT", "TEXT"),  # 办理状态: 11 准予许可, 12 不予许可, 13 退件, 14 作废, 15 转报
    ("BLYJ", "TEXT"),  # 办理意见
    ("ZZBH", "TEXT"),  # 证照编号
    ("ZZMC", "TEXT"),  # 证照名称
    ("PFWH", "TEXT"),  # 批复文号
    ("PFWJBT", "TEXT"),  # 批复文件标题
    ("YXQQ", "TEXT"),  # 有效期起 yyyyMMdd
    ("YXQZ", "TEXT"),  # 有效期止 yyyyMMdd, 20991231 = 长期
    ("FZJGDM", "TEXT"),  # 发证机关统一社会信用代码
    ("CNLX", "TEXT"),  # 告知承诺类型: 1 材料延期, 2 材料核验, 3 事后核查
    ("CNQX", "TEXT"),  # 承诺期限 (工作日)
    ("MJ", "TEXT"),  # 密级: 0 公开, 1 内部, 2 秘密, 3 机密, 4 绝密
    ("SJBBH", "INTEGER NOT NULL DEFAULT 1"),  # 数据版本号 (重报 = 2, 3, …)
    ("SJYXBS", "INTEGER NOT NULL DEFAULT 1"),  # 数据有效标识
    ("SJSCZT", "INTEGER NOT NULL DEFAULT 0"),  # 数据上传状态: 0 pending, 3 accepted, 2/-1 failed
    ("SJWXYY", "TEXT"),  # 数据无效原因
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)

_APPLICANT_KIND = {"1": "20", "2": "10", "3": "90"}
_ID_TYPE = {"001": "01", "111": "02", "414": "03"}
_PROMISE = {"材料延期": "1", "材料核验": "2", "事后核查": "3"}
_SECRECY = {"": "0", "内部": "1", "秘密": "2", "机密": "3", "绝密": "4"}
_RESULT = {"退件": "13", "作废办结": "14", "转报办结": "15"}


def _compact(text: str) -> str | None:
    """``2026-11-20 16:40:02`` → ``20261120164002`` (the exchange table's time format); ``""`` → NULL."""
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits or None


def _null(text: str) -> str | None:
    return text or None


def project_code(projid: str, area: str) -> str:
    """A 项目代码 (``2025-320700-48-01-123456``) fixed per 办件, as the 投资项目 platform would have issued it."""
    digest = hashlib.sha256(projid.encode()).hexdigest()
    year = 2000 + int(projid[6:8]) if len(projid) >= 8 and projid[6:8].isdigit() else 2025
    industry, kind, serial = int(digest[:2], 16) % 90 + 10, int(digest[2], 16) % 3 + 1, int(digest[3:9], 16) % 10**6
    return f"{year}-{area}-{industry:02d}-0{kind}-{serial:06d}"


def row_from_banjian(item: dict[str, str]) -> dict[str, Any]:
    """One 办件 of the zwfw generator, written as the 工程建设 system writes it into its exchange table."""
    result = _RESULT.get(item["TRANSACT_RESULT"])
    if result is None:  # 办结: a refusal is 不予许可, everything else 准予许可
        result = "12" if item["TRANSACT_DESCRIBE"].startswith("不予") else "11"
    valid_to = item["XK_YXQZI"]
    return {
        "XZQHDM": item["AREACODE"],
        "XMDM": project_code(item["PROJID"], item["AREACODE"]),
        "SPSXSLBM": item["PROJID"],
        "SPSXBM": item["SERVICECODE"],
        "SPSXMC": item["SERVICENAME"],
        "SQRLX": _APPLICANT_KIND.get(item["APPLY_TYPE"], "90"),
        "SQRMC": item["APPLYNAME"],
        "SQRZJLX": _ID_TYPE.get(item["APPLY_CARDTYPE"], "99"),
        "SQRZJHM": item["APPLY_CARDNUMBER"],
        "FDDBR": _null(item["LEGALMAN"]),
        "LXDH": _null(item["CONTACT_PHONE"]),
        "SLSJ": _compact(item["RECEIVETIME"]),
        "BLSJ": _compact(item["TRANSACT_TIME"]),
        "BLZT": result,
        "BLYJ": _null(item["TRANSACT_DESCRIBE"]),
        "ZZBH": _null(item["RESULT_CODE"]),
        "ZZMC": _null(item["XK_XKZS"]),
        "PFWH": _null(item["XK_WSH"]),
        "PFWJBT": _null(item["XK_XKWS"]),
        "YXQQ": _compact(item["XK_YXQZ"]),
        "YXQZ": _compact(valid_to) if valid_to not in ("长期", "长期有效") else "长期",
        "FZJGDM": _null(item["XK_XKJGDM"]),
        "CNLX": _PROMISE.get(item["PROMISE_TYPE"]),
        "CNQX": _null(item["PROMISE_PERIOD"]),
        "MJ": _SECRECY.get(item["MJ"], "0"),
        "SJBBH": int(item["DATAVERSION"]),
        "SJYXBS": 1,
        "SJSCZT": PENDING,
        "SJWXYY": None,
    }


@dataclass(slots=True)
class ExchangeFaults(FaultState):
    """``FaultState`` whose ``down`` switch also locks or unlocks the exchange database."""

    on_down: Callable[[bool], None] = field(default=lambda _down: None)

    def update(self, change: Any) -> dict[str, Any]:
        settings = FaultState.update(self, change)
        self.on_down(self.settings.down)
        return settings

    def reset(self) -> None:
        FaultState.reset(self)
        self.on_down(False)


class SpecialtyPlatform:
    """State of one 前置库 mock: the SQLite file, the PROJID counter, faults and traffic."""

    name = "specialty"

    def __init__(self, database: str | Path | None, clock: Callable[[], float], traffic_limit: int) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if database is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shenguan-specialty-")
            database = Path(self._tmp.name) / "exchange.db"
        self.path = Path(database).resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.faults = ExchangeFaults(
            server_error_status=503, server_error_body={"error": "前置库不可用"}, on_down=self._set_down
        )
        self.traffic = TrafficLog(traffic_limit)
        self._down = False
        self._next_projid_sequence = 1
        # Autocommit mode: transactions are explicit, so "down" can hold one open across requests.
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=DELETE")  # not WAL: an exclusive lock must block readers too
        self._create(fresh=True)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL a reader uses for this exchange database."""
        return f"sqlite:///{self.path}"

    # -- control plane -------------------------------------------------------------------------------------
    def records_report(self) -> dict[str, Any]:
        cursor = self._conn.execute(f"SELECT * FROM {TABLE} ORDER BY LSH")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        by_status: dict[str, int] = {}
        for row in rows:
            by_status[str(row["SJSCZT"])] = by_status.get(str(row["SJSCZT"]), 0) + 1
        return {
            "platform": self.name,
            "accepted": sum(1 for r in rows if r["SJSCZT"] == ACCEPTED),
            "duplicate_creations": 0,  # a source: nothing is delivered to it
            "rejected": sum(1 for r in rows if r["SJSCZT"] in FAILED),
            "pending": sum(1 for r in rows if r["SJSCZT"] == PENDING),
            "by_status": by_status,
            "table": TABLE,
            "database": str(self.path),
            "url": self.url,
            "records": rows,
        }

    def generate(self, request: GenerateRequest) -> dict[str, int]:
        """Insert generated rows; with the zwfw mock's seed they are the same approvals (see module doc)."""
        items = generate_banjian(
            request.count,
            request.seed,
            duplicate_rate=request.duplicate_rate,
            revision_rate=request.revision_rate,
            secret_rate=request.secret_rate,
            first_sequence=self._next_projid_sequence,
        )
        self._next_projid_sequence += request.count
        self._insert([row_from_banjian(item) for item in items])
        return {"generated": len(items), "unique_facts": request.count}

    def inject(self, records: list[Any]) -> dict[str, int]:
        """Insert exactly these rows (objects of column → value; odd values are kept, as a real table would)."""
        rows: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise HTTPException(422, f"records[{index}]: a row is an object of column → value")
            unknown = sorted(set(record) - set(COLUMN_NAMES))
            if unknown:
                raise HTTPException(422, f"records[{index}]: no column(s) {', '.join(unknown)} in {TABLE}")
            row = {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v for k, v in record.items()}
            row.setdefault("SJSCZT", PENDING)
            row.setdefault("SJYXBS", 1)
            row.setdefault("SJBBH", 1)
            rows.append(row)
        self._insert(rows)
        return {"injected": len(rows)}

    def reset(self) -> None:
        self._set_down(False)
        self._create(fresh=True)
        self._next_projid_sequence = 1

    # -- the database --------------------------------------------------------------------------------------
    def _create(self, *, fresh: bool) -> None:
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        if fresh:
            self._conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})")
        self._conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_pending ON {TABLE} (SJSCZT, LSH)")

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        runs: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]] = []  # consecutive rows with the same columns
        for row in rows:
            names = tuple(row)
            if not runs or runs[-1][0] != names:
                runs.append((names, []))
            runs[-1][1].append(tuple(row.values()))
        if not self._down:
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            for names, values in runs:
                placeholders = ", ".join("?" for _ in names)
                self._conn.executemany(f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({placeholders})", values)
        except BaseException:
            if not self._down:
                self._conn.execute("ROLLBACK")
            raise
        if not self._down:
            self._conn.execute("COMMIT")

    def _set_down(self, down: bool) -> None:
        """Hold (or release) an exclusive lock: while held, readers and writers elsewhere get "locked".

        The mock's own writes go into that open transaction and become visible when it is released.
        """
        if down and not self._down:
            self._conn.execute("BEGIN EXCLUSIVE")
            self._down = True
        elif not down and self._down:
            self._conn.execute("COMMIT")
            self._down = False

    def close(self) -> None:
        self._set_down(False)
        self._conn.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def native_router(platform: SpecialtyPlatform) -> APIRouter:
    """The only HTTP the 前置库 has: where the exchange database is (mounted under ``/specialty``)."""
    router = APIRouter(tags=["specialty"])

    @router.get("/")
    async def exchange() -> dict[str, Any]:
        """The exchange database's SQLAlchemy URL, file and table: what a reader is configured with."""
        return {"url": platform.url, "database": str(platform.path), "tables": [TABLE], "columns": list(COLUMN_NAMES)}

    return router
