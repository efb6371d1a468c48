"""Configuration: a TOML file read into pydantic-settings models.

Precedence: environment (``BOT_TOKEN`` for the token, ``REDRESERVE_<SECTION>__<KEY>``
for anything else) over the file over the built-in defaults. A missing or invalid
key is reported by its dotted name and the file, before anything starts.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG_PATH = Path("config.toml")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Telegram's rule for setWebhook's secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramConfig(_Section):
    token: SecretStr | None = None
    api_base: str = "https://api.telegram.org"
    bot_username: str | None = None  # for invite links printed by the CLI; else asked with getMe
    # How updates arrive: long polling (no public address needed) or Telegram posting to webhook_url.
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, v: str | None) -> str | None:
        # Telegram only posts to https URLs (ports 443, 80, 88 or 8443).
        if v is not None and not v.startswith("https://"):
            raise ValueError("must be an https:// URL (Telegram posts updates only over TLS)")
        return v

    @field_validator("webhook_secret")
    @classmethod
    def _secret_chars(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not _WEBHOOK_SECRET.fullmatch(v.get_secret_value()):
            raise ValueError("must be 1 to 256 characters: letters, digits, _ and -")
        return v


class HttpConfig(_Section):
    """The bot's own HTTP server: /healthz, /metrics and, in webhook mode, the webhook."""

    listen: str | None = None  # "HOST:PORT"; unset: no server (polling mode only)
    # /healthz fails when polling has not succeeded for this long (a poll returns at least every ~10 s).
    max_poll_age_s: float = Field(default=120.0, gt=0)
    # Where donors reach this server from outside (its TLS proxy): the signed answer links sent by SMS
    # are <public_url>/a/<token>. Unset: no links, keyword answers only.
    public_url: str | None = None
    # Signs the answer links (ground.answer_link); required with public_url. Changing it voids the links out.
    link_secret: SecretStr | None = None

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("https://", "http://")) or len(v) > 60:
            raise ValueError("must be an http(s):// URL of at most 60 characters (it goes into SMS)")
        return v.rstrip("/")

    @field_validator("link_secret")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. python3 -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))')")
        return v

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if v is None:
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT, e.g. '127.0.0.1:8080'")
        return v

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = (self.listen or "").rpartition(":")
        return host.strip("[]"), int(port)


class LogConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///redreserve.db"
    # On a database behind the code, back it up and run the migrations at start instead of refusing.
    auto_upgrade: bool = False
    # The connection pool (SQLAlchemy's QueuePool): at most pool_size + max_overflow connections;
    # a checkout waits pool_timeout seconds for one, then fails.
    pool_size: int = Field(default=5, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout: float = Field(default=30.0, ge=0)
    # Connections kept for the work that is not an update: the sender, the dispatcher's own
    # transactions, scheduled wake-ups. Updates are admitted only up to the pool's size minus
    # these, so that a burst waits in memory instead of timing out on the pool (issue 10).
    reserved_connections: int = Field(default=3, ge=0)

    def pool_options(self) -> dict[str, Any]:
        """The keyword arguments of models.engine.make_engine for this pool."""
        return {"pool_size": self.pool_size, "max_overflow": self.max_overflow, "pool_timeout": self.pool_timeout}

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class BotConfig(_Section):
    admins: list[int] = Field(default_factory=list)
    default_locale: str = "vi"
    phone_region: str = "VN"
    timezone: str = "Asia/Ho_Chi_Minh"
    policy_version: str = "2026-01"
    max_upload_mb: float = 5.0
    # Rows of a roster file sent in chat (blank ones included): a small workbook can hold a million.
    max_roster_rows: int = Field(default=10_000, ge=1)
    page_size: int = Field(default=10, ge=1, le=50)

    @field_validator("default_locale")
    @classmethod
    def _supported_locale(cls, v: str) -> str:
        if v not in ("vi", "en"):
            raise ValueError("must be 'vi' or 'en'")
        return v

    @property
    def tz(self) -> ZoneInfo:
        """The zone of every local day and hour: donation dates, quiet hours, invite expiries."""
        return ZoneInfo(self.timezone)  # ZoneInfo keeps one instance per key

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as 'Asia/Ho_Chi_Minh'") from None
        return v


class EligibilityConfig(_Section):
    """Pre-filter limits; defaults from DOMAIN.md §2 (Circular 26/2013/TT-BYT)."""

    min_age: int = 18
    max_age: int = 60
    min_weight_female_kg: float = 42.0
    min_weight_male_kg: float = 45.0
    min_weight_apheresis_kg: float = 50.0
    interval_whole_blood_days: int = 84
    interval_apheresis_days: int = 14
    # DOMAIN.md §2: no legal cap; NIHBT advises 3–4 whole-blood donations a year (dispatcher.eligibility).
    max_whole_blood_per_year: int = Field(default=4, ge=1)


class PerUrgency(_Section):
    """One value per urgency (DOMAIN.md §5–6): critical, urgent, planned."""

    critical: float
    urgent: float
    planned: float

    def of(self, urgency: str) -> float:
        return float(getattr(self, urgency))


class Margins(_Section):
    """The stop target's "available" per unit, per urgency (DOMAIN.md §5). A missing value
    means 1 / (arrives × passes) from [dispatch.rates], ≈ 1.73 with the defaults."""

    # A critical request has no time to replace a drop-out: it asks for the full margin. An urgent or
    # planned one does (a drop-out reopens it and its deadline leaves time to ask again): 1.3 "available"
    # per unit keeps every request of the policy lab's urgent and planned streams donated in time with
    # fewer calls than BloodConnect's and Haemologix's (BENCHMARKS.md "Policy lab").
    critical: float | None = Field(default=None, ge=1)
    urgent: float | None = Field(default=1.3, ge=1)
    planned: float | None = Field(default=1.3, ge=1)

    def of(self, urgency: str) -> float | None:
        value = getattr(self, urgency)
        return None if value is None else float(value)


class DispatchRates(_Section):
    """The wave model's per-step rates, DOMAIN.md §5 defaults; learned rates use them as a Beta prior."""

    reads: float = Field(default=0.85, gt=0, le=1)
    says_available: float = Field(default=0.40, gt=0, le=1)
    arrives: float = Field(default=0.75, gt=0, le=1)
    passes: float = Field(default=0.77, gt=0, le=1)
    prior_strength: float = Field(default=20.0, ge=0)  # pseudo-observations behind each default


class SendConfig(_Section):
    """Telegram's limits (DOMAIN.md §8, Bots FAQ) and the retry policy of the one outbound path."""

    global_per_second: float = Field(default=30.0, gt=0)
    per_chat_per_second: float = Field(default=1.0, gt=0)
    group_per_minute: float = Field(default=20.0, gt=0)
    safety_margin_s: float = Field(default=0.005, ge=0)  # widens each window against clock rounding
    max_in_flight: int = Field(default=30, ge=1)
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    poll_interval_s: float = Field(default=0.5, gt=0)


def _check_hh_mm(v: str) -> str:
    hh, _, mm = v.partition(":")
    if not (hh.isdigit() and mm.isdigit() and 0 <= int(hh) < 24 and 0 <= int(mm) < 60):
        raise ValueError("must be HH:MM, 24 h")
    return v


class DispatchConfig(_Section):
    """How the dispatcher asks donors; every number here is a default from DOMAIN.md §5–6 or a design choice."""

    deadline_hours: PerUrgency = Field(default_factory=lambda: PerUrgency(critical=3, urgent=12, planned=72))
    response_window_min: PerUrgency = Field(default_factory=lambda: PerUrgency(critical=10, urgent=20, planned=60))
    wave_interval_min: PerUrgency = Field(default_factory=lambda: PerUrgency(critical=10, urgent=20, planned=120))
    # Critical: a sure first wave, since a drop-out cannot be replaced in time. Urgent and planned: a
    # small one, each decline replaced at once (DOMAIN.md §5, "alert a few, replace each refusal").
    confidence: PerUrgency = Field(default_factory=lambda: PerUrgency(critical=0.9, urgent=0.4, planned=0.4))
    road_factor: float = Field(default=1.4, ge=1)
    speed_kmh: float = Field(default=30.0, gt=0)
    prep_min: float = Field(default=15.0, ge=0)
    visit_min: int = Field(default=60, ge=0)  # at the hospital, whole blood or red cells (DOMAIN.md §6)
    apheresis_min: int = Field(default=120, ge=0)  # platelets or plasma by apheresis (DOMAIN.md §6)
    initial_radius_km: float = Field(default=10.0, gt=0)
    radius_growth: float = Field(default=2.0, ge=1)
    max_radius_km: float = Field(default=100.0, gt=0)
    last_resort_from_wave: int = Field(default=3, ge=1)
    rare_pool_threshold: int = Field(default=20, ge=0)
    contact_cap_count: int = Field(default=3, ge=1)
    contact_cap_days: int = Field(default=7, ge=1)
    margin: Margins = Field(default_factory=Margins)
    min_wave: int = Field(default=3, ge=1)
    max_wave: int = Field(default=50, ge=1)
    rare_max_wave: int = Field(default=300, ge=1)
    response_weight_min: float = Field(default=30.0, ge=0)
    rest_weight_min: float = Field(default=10.0, ge=0)
    max_units: int = Field(default=20, ge=1)
    require_contact_consent: bool = True
    quiet_start: str = "22:00"
    quiet_end: str = "06:30"  # quiet hours are local: in [bot] timezone
    rates: DispatchRates = Field(default_factory=DispatchRates)
    send: SendConfig = Field(default_factory=SendConfig)

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _hh_mm(cls, v: str) -> str:
        return _check_hh_mm(v)

    @field_validator("margin", mode="before")
    @classmethod
    def _one_margin_for_all(cls, v: Any) -> Any:
        # A config.toml written before margins were per urgency says `margin = 1.5`: every urgency.
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"critical": v, "urgent": v, "planned": v}
        return v


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class RemindersConfig(_Section):
    """Scheduled messages (issue 4). Times are local, in [bot] timezone."""

    # Donors: "you may donate again", on the day the interval after their last donation ends.
    eligible_enabled: bool = True
    eligible_time: str = "09:00"
    # Club leads: a weekly digest of their roster and of the requests around the club.
    digest_enabled: bool = True
    digest_weekday: str = "monday"
    digest_time: str = "08:00"
    digest_days: int = Field(default=7, ge=1, le=31)  # how far back the digest looks at requests
    # Leads and staff who asked (/monthly on): last month's report on the first of the month, at this time.
    monthly_enabled: bool = True
    monthly_time: str = "08:00"
    # Hospital staff: a donor who said available is not marked arrived after her travel time plus this.
    arrival_margin_min: float = Field(default=30, ge=0)
    # Hospital staff: a request not covered this long before its deadline (at most a quarter of its time).
    deadline_nudge_min: float = Field(default=30, ge=0)

    @field_validator("eligible_time", "digest_time", "monthly_time")
    @classmethod
    def _hh_mm(cls, v: str) -> str:
        return _check_hh_mm(v)

    @field_validator("digest_weekday")
    @classmethod
    def _weekday(cls, v: str) -> str:
        if v.lower() not in WEEKDAYS:
            raise ValueError("must be a weekday name in English, e.g. 'monday'")
        return v.lower()


class ClusterConfig(_Section):
    """Several instances on one PostgreSQL (issue 14). The defaults need nothing for one instance."""

    # This instance's name in leases and logs; empty: "<hostname>-<pid>", unique per process.
    instance_id: str = ""
    # How long a claimed outbox row stays this instance's without renewal; a dead instance's rows
    # are taken over by another once their lease has expired.
    lease_s: float = Field(default=30.0, gt=0)
    # How often a follower tries to take the leadership (polling, timers) a dead leader left.
    leader_retry_s: float = Field(default=2.0, gt=0)
    # How often the leader (PostgreSQL) looks at every open request and the reminders again: a request
    # posted or answered on another instance (webhook mode) has its next wake-up armed there, where no
    # timer runs; its next wave or reminder is at most this late.
    rescan_s: float = Field(default=30.0, gt=0)
    # Telegram's per-token budget (dispatcher.send_budget): "local" to this process (exact windows,
    # ranks, no database connection per reply: the default, for one instance), or "shared" by every
    # instance through PostgreSQL — set it on each instance when running several (SQLite: always local).
    budget: Literal["shared", "local"] = "local"

    def resolved_id(self) -> str:
        return self.instance_id or f"{socket.gethostname()}-{os.getpid()}"


class SmsHttpConfig(_Section):
    """A commercial SMS provider's HTTP API (``[sms] gateway = "http"``): one JSON POST per SMS, its
    fields named as the provider names them. Vietnamese providers send from a registered brandname."""

    url: str = ""
    auth_header: str = "Authorization"
    auth_value: SecretStr | None = None  # e.g. "Bearer …" (or REDRESERVE_SMS__HTTP__AUTH_VALUE)
    phone_field: str = "to"
    text_field: str = "text"
    id_field: str = "id"  # our id for the message, so a resend is one SMS to a provider that checks; "" to omit
    sender_field: str = "from"
    sender: str = ""  # the registered brandname; "" to omit the field
    extra: dict[str, str] = Field(default_factory=dict)  # fixed fields the provider wants in every body


class SmsConfig(_Section):
    """SMS, the channel every phone has (DOMAIN.md §9): off unless a gateway is set up (README "SMS").

    Each part costs money, so SMS has its own limits beside Telegram's: a pace, a cap per request and
    per day. By default it is kept for critical or rare-type requests and for donors with no other
    channel (a donor whose Telegram said it cannot deliver has none left)."""

    enabled: bool = False
    # SMS Gateway for Android's REST API (its cloud server, or the phone's own local server).
    # "android": SMS Gateway for Android (below); "http": a commercial provider's HTTP API ([sms.http]).
    gateway: Literal["android", "http"] = "android"
    api_url: str = "https://api.sms-gate.app/3rdparty/v1"
    username: str = ""
    password: SecretStr | None = None
    # Checked on each incoming webhook (the gateway signs with it); empty: incoming SMS are refused.
    webhook_secret: SecretStr | None = None
    per_second: float = Field(default=1.0, gt=0)  # a phone's SIM sends about one a second
    max_in_flight: int = Field(default=2, ge=1)
    max_per_request: int = Field(default=20, ge=0)
    max_per_day: int = Field(default=100, ge=0)
    # A call is kept to at most this many parts (a part: 160 GSM-7 or 70 UCS-2 characters).
    max_parts: int = Field(default=2, ge=1, le=4)
    # Vietnamese without diacritics (đ → d): 160 characters a part instead of 70, half the cost.
    unaccented: bool = False
    # Which requests may use SMS at all: "all", or only critical or rare-type ones (the default).
    only_for: Literal["critical_or_rare", "all"] = "critical_or_rare"
    http: SmsHttpConfig = Field(default_factory=SmsHttpConfig)

    @model_validator(mode="after")
    def _provider_set_up(self) -> "SmsConfig":
        if self.enabled and self.gateway == "http" and not self.http.url.startswith(("https://", "http://")):
            raise ValueError('gateway = "http" needs [sms.http] url (the provider\'s http(s):// endpoint)')
        return self

    def send_config(self) -> "SendConfig":
        """The SMS sender's pacing and retries, in the Telegram sender's terms (dispatcher.sender)."""
        return SendConfig(global_per_second=self.per_second, per_chat_per_second=self.per_second,
                          max_in_flight=self.max_in_flight)


class ZaloConfig(_Section):
    """Zalo, the messenger nearly every Vietnamese adult has (DOMAIN.md §9): a club's bot on the Zalo Bot
    Platform, off unless set up (README "Zalo"). Text only: a donor answers by keyword ("CO 12")."""

    enabled: bool = False
    token: SecretStr | None = None  # from Zalo Bot Creator; or REDRESERVE_ZALO__TOKEN
    api_url: str = "https://bot-api.zaloplatforms.com"
    # Updates by long polling getUpdates (no public address), or Zalo posting to webhook_url.
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    # Zalo sends it back in X-Bot-Api-Secret-Token on each post; its rule: 8 to 256 characters.
    webhook_secret: SecretStr | None = None
    # The platform's limits are not published as numbers: a cautious pace, its 429s are obeyed anyway.
    per_second: float = Field(default=5.0, gt=0)
    max_in_flight: int = Field(default=2, ge=1)
    # How long a code to link a Zalo chat to a donor (from /me zalo or a lead) can be used, once.
    link_code_hours: int = Field(default=24, ge=1, le=168)
    # Shown to donors so they find the club's bot (its name in Zalo, or its zalo.me link).
    bot_name: str = ""

    @field_validator("webhook_secret")
    @classmethod
    def _secret_length(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not 8 <= len(v.get_secret_value()) <= 256:
            raise ValueError("must be 8 to 256 characters (Zalo's rule for setWebhook)")
        return v

    def send_config(self) -> "SendConfig":
        """The Zalo sender's pacing and retries, in the Telegram sender's terms (dispatcher.sender)."""
        return SendConfig(global_per_second=self.per_second, per_chat_per_second=self.per_second,
                          max_in_flight=self.max_in_flight)


class RedisConfig(_Section):
    """Reserved, not used: the per-token budget and the per-user isolation live in PostgreSQL, which the
    instances need anyway (README "Running several instances": measured, no Redis needed)."""

    url: str = ""
    # Keys of this deployment start with it (several bots, or test runs, on one Redis).
    key_prefix: str = "redreserve"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REDRESERVE_", env_nested_delimiter="__", extra="forbid")

    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    bot: BotConfig = Field(default_factory=BotConfig)
    eligibility: EligibilityConfig = Field(default_factory=EligibilityConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    sms: SmsConfig = Field(default_factory=SmsConfig)
    zalo: ZaloConfig = Field(default_factory=ZaloConfig)

    @model_validator(mode="after")
    def _webhook_complete(self) -> "Settings":
        if self.telegram.mode == "webhook":
            missing = [key for key, value in (("[telegram] webhook_url", self.telegram.webhook_url),
                                              ("[telegram] webhook_secret", self.telegram.webhook_secret),
                                              ("[http] listen", self.http.listen)) if not value]
            if missing:
                raise ValueError(f"[telegram] mode = \"webhook\" needs {', '.join(missing)}")
        if self.http.public_url and not (self.http.link_secret and self.http.listen):
            raise ValueError("[http] public_url needs [http] link_secret and [http] listen (the answer links)")
        return self

    @model_validator(mode="after")
    def _zalo_complete(self) -> "Settings":
        z = self.zalo
        if z.enabled:
            missing = [key for key, value in (("[zalo] token", z.token),) if not value]
            if z.mode == "webhook":
                missing += [key for key, value in (("[zalo] webhook_url", z.webhook_url),
                                                   ("[zalo] webhook_secret", z.webhook_secret),
                                                   ("[http] listen", self.http.listen)) if not value]
            if missing:
                raise ValueError(f"[zalo] enabled needs {', '.join(missing)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @property
    def token(self) -> str | None:
        return self.telegram.token.get_secret_value() if self.telegram.token else None


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (or ``./config.toml`` if present, else defaults) into :class:`Settings`."""
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    data: dict[str, Any] = {}
    where = "built-in defaults"
    if file.exists():
        where = str(file)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{file}: cannot be read: {exc.strerror}") from exc
    elif explicit:
        raise ConfigError(f"{file}: no such file")
    for key, value in overrides.items():
        data.setdefault(key, {}).update(value)
    env_token = os.environ.get("BOT_TOKEN")
    if env_token:
        data.setdefault("telegram", {})["token"] = env_token
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            # A check across sections (no single key) names its keys in the message itself.
            problems.append(f"{where}: [{key}] {msg}" if key else f"{where}: {msg.removeprefix('Value error, ')}")
        raise ConfigError("\n".join(problems)) from exc
