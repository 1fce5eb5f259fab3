"""Configuration: one TOML file, overridable from the environment.

Sources and destinations are named sections whose ``adapter`` key names an installed adapter (entry
point of ``shenguan.adapters``). Keys the gateway owns (polling, concurrency, retry budget, breaker)
are read here; every other key of the section is handed to the adapter's ``from_config`` untouched,
so an adapter can grow options without the gateway knowing them.

Environment overrides: ``SHENGUAN__<SECTION>__<NAME>__<KEY>=value`` (double underscores separate the
path, case-insensitive), e.g. ``SHENGUAN__DESTINATIONS__HLWJG__CLIENT_SECRET=...``;
``SHENGUAN_DB`` overrides ``gateway.db``. Values are read as TOML literals when they parse as one.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

__all__ = [
    "AdminSettings",
    "AdminUser",
    "AlertSettings",
    "AuditSettings",
    "Config",
    "ConfigError",
    "DeadlineSettings",
    "DestinationConfig",
    "GatewaySettings",
    "IngestAuthConfig",
    "RouteConfig",
    "SourceConfig",
    "load_config",
]


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")

    adapter: str = Field(min_length=1, description="entry-point name of the adapter")

    def adapter_options(self) -> dict[str, Any]:
        """The keys the gateway does not own: passed to the adapter as is."""
        return dict(self.model_extra or {})


class IngestAuthConfig(BaseModel):
    """Who may push to ``POST /ingest/{source}``: the x-tif signed headers (DESIGN §3) or API keys.

    ``tif``: the caller signs each request with ``paasid`` and the shared ``secret`` (the platform's token),
    a timestamp within ``window_s`` and a single-use nonce. ``api_key``: the caller sends one of ``api_keys``
    in ``X-API-Key`` (or ``Authorization: Bearer``); store them as ``sha256$<hex>`` hashes, not in clear.
    """

    model_config = ConfigDict(extra="forbid")

    auth: Literal["tif", "api_key"]
    paasid: str | None = Field(default=None, min_length=1)
    secret: SecretStr | None = Field(default=None, description="x-tif token shared with the pushing platform")
    api_keys: list[SecretStr] = Field(default=[], description="sha256$<hex of the key> (or the key itself)")
    window_s: float = Field(default=300.0, gt=0, le=3600, description="accepted clock difference of x-tif-timestamp")

    @model_validator(mode="after")
    def _credentials_for_the_scheme(self) -> IngestAuthConfig:
        if self.auth == "tif" and (not self.paasid or self.secret is None or not self.secret.get_secret_value()):
            raise ValueError("auth = 'tif' needs paasid and secret")
        if self.auth == "api_key" and not self.api_keys:
            raise ValueError("auth = 'api_key' needs at least one entry in api_keys")
        return self


class SourceConfig(_Section):
    poll_interval_s: float = Field(default=2.0, gt=0)
    page_size: int = Field(default=100, ge=1, le=1000)
    error_backoff_max_s: float = Field(default=30.0, gt=0)
    mode: Literal["poll", "push", "both"] = Field(
        default="poll", description="poll its feed, accept pushes to /ingest/{source}, or both"
    )
    ingest: IngestAuthConfig | None = Field(default=None, description="credentials of pushes (mode push or both)")

    @model_validator(mode="after")
    def _push_needs_credentials(self) -> SourceConfig:
        if self.mode != "poll" and self.ingest is None:
            raise ValueError(f"mode = {self.mode!r} needs an [ingest] table with the pushers' credentials")
        return self


class DestinationConfig(_Section):
    concurrency: int = Field(default=8, ge=1, le=256)
    max_attempts: int = Field(default=12, ge=1, description="retry budget; past it a delivery is dead")
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    backoff_jitter_s: float = Field(default=1.0, ge=0)
    breaker_failures: int = Field(default=20, ge=1, description="consecutive failures that open the breaker")
    breaker_cooldown_s: float = Field(default=15.0, gt=0)
    lease_s: float = Field(default=120.0, gt=0, description="how long an attempt may hold its delivery")
    paper_fallback: bool = Field(
        default=False, description="when the retry budget is spent, queue the delivery for paper instead of dead"
    )
    paper_recipient: str | None = Field(default=None, description="受送达人 printed on paper notices")
    paper_address: str | None = Field(default=None, description="送达地点 printed on the 送达回证")
    batch_size: int | None = Field(
        default=None, ge=1, le=10_000, description="records per batch for an adapter taking batches (default: its max)"
    )
    batch_max_age_s: float = Field(
        default=2.0, gt=0, description="longest a leased record waits for its batch to fill before the batch is sent"
    )

    @model_validator(mode="after")
    def _batch_age_within_lease(self) -> DestinationConfig:
        # A record is leased while its batch fills; the lease must outlive the wait and the send.
        if self.batch_max_age_s >= self.lease_s / 2:
            raise ValueError(f"batch_max_age_s ({self.batch_max_age_s}) must be under half of lease_s ({self.lease_s})")
        return self


class RouteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, description="event type, e.g. approval.decided")
    destinations: list[str] = Field(min_length=1)
    channel: Literal["platform", "paper"] = "platform"
    require_mapping: bool = Field(
        default=False,
        description="route only approvals whose item is in the active 审管事项关联映射清单; hold the rest as unrouted",
    )
    sources: list[str] | None = Field(
        default=None,
        min_length=1,
        description="only messages from these sources, e.g. ['shenguan'] for the default claims the gateway records",
    )
    where: dict[str, list[str]] = Field(
        default_factory=dict,
        description='only messages whose payload value at a dotted path is one of these, e.g. {result = ["granted"]}',
    )


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: str = "shenguan.db"
    listen: str = "127.0.0.1:8780"
    instance_id: str | None = None
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    pg_pool_size: int = Field(
        default=10, ge=2, le=200, description="most PostgreSQL connections one instance holds (pollers, relay, HTTP)"
    )
    source_lease_s: float = Field(
        default=15.0,
        gt=0,
        description="how long a source's single owner may go without renewing before another instance takes it",
    )
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    intake: Literal["process", "inline"] = Field(
        default="process",
        description="where serve runs pollers and the deadline tracker: a child process of their own, or the relay's",
    )
    intake_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="how far below the relay's the intake process's CPU priority is (a nice increment; 0: equal)",
    )
    mapping_poll_s: float = Field(default=5.0, gt=0, description="how often serve looks for a newly imported mapping")
    ingest_max_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest body POST /ingest/{source} accepts; larger ones get 413"
    )


class PaperSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dir: str = Field(default="paper", description="the only directory paper PDFs and receipt scans are written to")
    issuer: str = Field(default="行政审批局", description="the authority named at the foot of every notice (落款)")
    reconcile_s: float = Field(
        default=60.0, gt=0, description="how often fallback paper items are checked against their platform's status"
    )


class AuditSettings(BaseModel):
    """The audit chain (全程留痕): hash algorithm and what entries may hold."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["sha256", "sm3"] = Field(
        default="sha256", description="fixed when the chain starts; a store's chain never mixes algorithms"
    )
    mode: Literal["metadata", "full"] = Field(
        default="metadata", description="metadata: no personal data in the chain; full: payloads of accepted messages"
    )


class AlertSettings(BaseModel):
    """Operator alerts: a WARNING log line always, and a POST to ``webhook`` when set."""

    model_config = ConfigDict(extra="forbid")

    webhook: str | None = Field(default=None, pattern=r"^https?://", description="URL that receives each alert as JSON")
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_attempts: int = Field(default=5, ge=1, le=20, description="tries per alert before it is logged as lost")
    scan_interval_s: float = Field(default=1.0, gt=0, description="how often the audit chain is read for new alerts")


class AdminUser(BaseModel):
    """One admin API / console account. Secrets are stored only as hashes (``shenguan admin hash-password``,
    ``shenguan admin new-api-key``); a user may have a password (console, HTTP Basic), an API key, or both."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["viewer", "operator"] = Field(description="viewer: read only; operator: read and act")
    password_hash: str | None = Field(default=None, description="scrypt hash from `shenguan admin hash-password`")
    api_key_hash: str | None = Field(default=None, description="sha256 hash from `shenguan admin new-api-key`")

    @model_validator(mode="after")
    def _has_a_secret(self) -> AdminUser:
        if not self.password_hash and not self.api_key_hash:
            raise ValueError("give password_hash or api_key_hash (or both)")
        if self.password_hash and not self.password_hash.startswith("scrypt$"):
            raise ValueError("password_hash is not a hash from `shenguan admin hash-password` (scrypt$…)")
        if self.api_key_hash and not self.api_key_hash.startswith("sha256$"):
            raise ValueError("api_key_hash is not a hash from `shenguan admin new-api-key` (sha256$…)")
        return self


class AdminSettings(BaseModel):
    """The admin API (``/admin/api/v1``) and web console (``/admin/``); no users means every request is refused."""

    model_config = ConfigDict(extra="forbid")

    users: dict[str, AdminUser] = {}
    session_secret: str | None = Field(
        default=None,
        min_length=32,
        description="signs console session cookies; unset = a random one per process (sessions end at restart)",
    )
    session_ttl_s: float = Field(default=8 * 3600, gt=0, description="console sessions expire after this long")
    secure_cookies: bool = Field(default=False, description="mark cookies Secure (set when served over HTTPS)")


class RegionDeadlines(BaseModel):
    """Per-region overrides of ``[deadlines]`` (e.g. a city whose rules give 3 days to claim instead of 2)."""

    model_config = ConfigDict(extra="forbid")

    push_days: int | None = Field(default=None, ge=0, le=30)
    claim_days: int | None = Field(default=None, ge=1, le=30)
    commitment_period_days: int | None = Field(default=None, ge=1, le=3650)


class DeadlineSettings(BaseModel):
    """Statutory deadlines of the closed loop (DESIGN §1) in working days (工作日); see ``gateway/deadlines.py``.

    Which claim period applies to a task: the mapping row's 认领时限 for the item, else the region override
    (county, then city, then province code), else ``claim_days``.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="track deadlines, record default claims and escalate")
    check_s: float = Field(default=60.0, gt=0, description="how often serve checks deadlines and the calendar")
    calendar_dir: str | None = Field(
        default=None, description="loaded holiday schedules [default: $SHENGUAN_STATE_DIR/calendar, .shenguan/calendar]"
    )
    push_days: int = Field(default=1, ge=0, le=30, description="push after the decision: by the next working day")
    claim_days: int = Field(default=2, ge=1, le=30, description="认领 after the task is generated")
    commitment_period_days: int = Field(default=20, ge=1, le=3650, description="告知承诺 period if the record has none")
    revocation_advice_days: int = Field(default=15, ge=1, le=365, description="撤销意见 after the commitment period")
    preapproval_days: int = Field(default=2, ge=1, le=365, description="批前确认 answered")
    result_days: int = Field(default=5, ge=1, le=365, description="supervision result after the inspection decision")
    feedback_days: int = Field(default=5, ge=1, le=365, description="审批局 feedback after a result or advice")
    guidance_days: int = Field(default=5, ge=1, le=365, description="业务指导 answered")
    credit_days: int = Field(default=7, ge=1, le=365, description="双公示 record published after the decision")
    claim_destinations: list[str] | None = Field(
        default=None,
        description="destinations whose receipt of an approval means a task exists [default: any with a remote id]",
    )
    credit_destinations: list[str] = Field(
        default=[],
        description="公共信用信息平台 destinations: approvals sent there are 双公示 records, due in credit_days",
    )
    regions: dict[str, RegionDeadlines] = Field(default={}, description='[deadlines.regions."320500"] claim_days = 3')

    @model_validator(mode="after")
    def _region_codes(self) -> DeadlineSettings:
        for code in self.regions:
            if len(code) != 6 or not code.isdigit():
                raise ValueError(f"deadlines.regions: {code!r} is not a 6-digit 行政区划代码")
        return self


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    admin: AdminSettings = AdminSettings()
    gateway: GatewaySettings = GatewaySettings()
    paper: PaperSettings = PaperSettings()
    audit: AuditSettings = AuditSettings()
    alerts: AlertSettings = AlertSettings()
    sources: dict[str, SourceConfig] = {}
    destinations: dict[str, DestinationConfig] = {}
    routes: list[RouteConfig] = []
    deadlines: DeadlineSettings = DeadlineSettings()

    @model_validator(mode="after")
    def _routes_name_destinations(self) -> Config:
        for i, route in enumerate(self.routes):
            for dest in route.destinations:
                if dest not in self.destinations and route.channel != "paper":
                    known = ", ".join(sorted(self.destinations)) or "none"
                    raise ValueError(
                        f"routes[{i}] ({route.type}) names destination {dest!r}, not configured (known: {known})"
                    )
        return self


def _literal(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``SHENGUAN__A__B__C`` overrides onto the parsed TOML document (in place, returned)."""
    if db := environ.get("SHENGUAN_DB"):
        raw.setdefault("gateway", {})["db"] = db
    for key, value in environ.items():
        if not key.startswith("SHENGUAN__"):
            continue
        path = [p.lower() for p in key.removeprefix("SHENGUAN__").split("__") if p]
        if not path:
            continue
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {part} is not a table in the configuration")
        node[path[-1]] = _literal(value)
    return raw


def load_config(path: str | os.PathLike[str] | None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment and validate; ``ConfigError`` with the key path on failure."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    apply_env(raw, os.environ if environ is None else environ)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
