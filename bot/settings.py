"""Settings from ARREARS_* environment variables, Twilio's own variables and an optional
TOML file (``ARREARS_CONFIG_FILE``, default ``arrears.toml`` when present).

Precedence: environment, then the file, then defaults. A malformed value raises
``SettingsError`` whose message is one line naming the variable at fault.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "ARREARS_"
_ALIASES = {"twilio_account_sid": "TWILIO_ACCOUNT_SID", "twilio_auth_token": "TWILIO_AUTH_TOKEN"}


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it in one line."""


def _config_file() -> Path | None:
    explicit = os.environ.get("ARREARS_CONFIG_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SettingsError(f"setting ARREARS_CONFIG_FILE: no such file {explicit!r}")
        return path
    default = Path("arrears.toml")
    return default if default.is_file() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True)

    database_url: str = "sqlite:///var/arrears.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    api_token: str | None = None
    secret_key: str | None = None
    var_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    policy_file: Path | None = None

    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str | None = None
    rasa_timeout_seconds: float = Field(default=10.0, gt=0)
    action_server_url: str = "http://127.0.0.1:5055"
    redis_url: str | None = None

    sms_backend: Literal["auto", "twilio", "sink"] = "auto"
    email_backend: Literal["auto", "smtp", "sink"] = "auto"
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    twilio_auth_token: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    provider_timeout_seconds: float = Field(default=15.0, gt=0)
    sms_segment_cost: Decimal = Field(default=Decimal("0.0079"), ge=0)  # USD per segment
    sms_segment_budget: int = Field(default=3, ge=1)  # templates longer than this fail lint

    push_backend: Literal["auto", "fcm", "sink"] = "auto"
    fcm_credentials_file: Path | None = None
    fcm_project_id: str | None = None
    fcm_base_url: str = "https://fcm.googleapis.com"

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    email_from: str = "Harbor Finance <service@example.com>"
    # The name messages sign with; it must not say "debt" or "collections" (US-13, US-09).
    lender_name: str = "Harbor Finance"
    lender_name_zh: str = "海港金融"

    dispatch_interval_seconds: int = Field(default=15, ge=1)
    dispatch_max_attempts: int = Field(default=5, ge=1)
    dispatch_backoff_seconds: int = Field(default=60, ge=1)
    # A claimed row still not settled after this long is presumed lost by a crashed
    # worker and becomes "unknown" (reconciled, never resent blindly).
    dispatch_claim_timeout_seconds: int = Field(default=600, ge=30)
    # Rows a worker sends concurrently.
    dispatch_concurrency: int = Field(default=4, ge=1, le=256)
    # Rows claimed and judged in one transaction (fewer when rate limits are low); the
    # next batch is judged while this one is sent.
    dispatch_batch_size: int = Field(default=500, ge=1, le=5000)
    # At most this many messages are marked "sending" together before their sends (one
    # statement per group; fewer when the senders' rate limits are low). A crash may
    # leave about two groups with an unknown outcome, to reconcile.
    dispatch_group_size: int = Field(default=64, ge=1, le=1000)
    # PostgreSQL: each dispatching process judges its batches in a child process, so
    # judging never holds up its sends (scheduler.judge_process); off: in a thread.
    dispatch_judge_process: bool = True
    # Per-sender rate limits (token buckets): a Twilio long code sends 1 message a second.
    sms_rate_per_second: float = Field(default=1.0, gt=0)
    email_rate_per_second: float = Field(default=10.0, gt=0)
    push_rate_per_second: float = Field(default=100.0, gt=0)
    sms_rate_burst: int = Field(default=1, ge=1)
    email_rate_burst: int = Field(default=1, ge=1)
    push_rate_burst: int = Field(default=1, ge=1)
    plan_interval_minutes: int = Field(default=15, ge=1)  # how soon after local midnight
    heartbeat_stale_seconds: int = Field(default=60, ge=5)
    handoff_sla_minutes: int = Field(default=60, ge=1)
    leader_retry_seconds: int = Field(default=5, ge=1)
    chat_link_ttl_hours: int = Field(default=72, ge=1)
    # Desk and review pages: a login lasts this long (logout ends it at once).
    desk_session_hours: int = Field(default=8, ge=1, le=24 * 7)
    # Failed logins allowed per username and per client IP within the window; one more
    # locks that username or IP for login_lock_minutes (recorded in the database, so
    # every app process sees it).
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def sms_uses_twilio(self) -> bool:
        if self.sms_backend == "auto":
            return bool(self.twilio_account_sid and self.twilio_auth_token)
        return self.sms_backend == "twilio"

    @property
    def push_uses_fcm(self) -> bool:
        if self.push_backend == "auto":
            return self.fcm_credentials_file is not None
        return self.push_backend == "fcm"

    @property
    def email_uses_smtp(self) -> bool:
        if self.email_backend == "auto":
            return bool(self.smtp_host)
        return self.email_backend == "smtp"

    def require(self, *names: str) -> None:
        """Raise ``SettingsError`` naming the first of ``names`` that is unset."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"setting {env_name(name)} is required but not set")


def env_name(field: str) -> str:
    return _ALIASES.get(field, ENV_PREFIX + field.upper())


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation failure into one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        field = field.lower() if field.isupper() else field
        value = err.get("input")
        raise SettingsError(f"setting {env_name(field)}: {err['msg']} (got {value!r})") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
