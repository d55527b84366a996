"""One Settings object: environment and `.env` for secrets and wiring,
`<RENKEI_CONFIG>/renkei.toml` for what a team tunes (privacy, freshness, hours)."""

from __future__ import annotations

import tomllib
from datetime import time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PrivacyConfig(BaseModel):
    # "minimal": channel posts carry code, initials, form, urgency, author only.
    # "full": the note body is posted too (a team's explicit choice).
    channel_detail: str = Field("minimal", pattern="^(minimal|full)$")


class ScheduleConfig(BaseModel):
    quiet_start: time = time(21, 0)
    quiet_end: time = time(7, 0)
    # A missed timed message is still sent if it is at most this late.
    late_grace_hours: float = 12.0


class VacancyConfig(BaseModel):
    freshness_hours: float = 48.0
    morning_prompt: time = time(8, 30)
    max_range_days: int = 31


class PatientsConfig(BaseModel):
    # Who may register patients: members of these professions, the members
    # named here (platform-qualified, `slack:U0123`), and admins.
    register_professions: list[str] = ["介護支援専門員", "退院調整看護師", "医療ソーシャルワーカー", "MSW"]
    registrars: list[str] = []


class PlanConfig(BaseModel):
    # The weekly digest: Monday (0) at 09:00; a day off moves it to the next working day.
    digest_weekday: int = Field(0, ge=0, le=6)
    digest_time: time = time(9, 0)
    # The plan channel ("slack:C0123"); empty: set by `/plan channel`, else
    # the channel in which /plan was first used.
    channel: str = ""


class TeamConfig(BaseModel):
    privacy: PrivacyConfig = PrivacyConfig()
    patients: PatientsConfig = PatientsConfig()
    plan: PlanConfig = PlanConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    vacancy: VacancyConfig = VacancyConfig()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: str = Field("", alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str = Field("", alias="SLACK_SIGNING_SECRET")
    slack_app_token: str = Field("", alias="SLACK_APP_TOKEN")
    database_url: str = Field("sqlite:///renkei.db", alias="RENKEI_DATABASE_URL")
    slack_api_url: str = Field("https://slack.com/api/", alias="RENKEI_SLACK_API_URL")
    config_dir: Path = Field(Path("config"), alias="RENKEI_CONFIG")
    timezone: str = Field("Asia/Tokyo", alias="RENKEI_TIMEZONE")
    admins_csv: str = Field("", alias="RENKEI_ADMINS")
    # The public HTTPS address of `renkei serve` (calendar feed URLs); empty
    # behind a firewall (Socket Mode): the calendar is then sent as a file.
    public_url: str = Field("", alias="RENKEI_PUBLIC_URL")
    # Serving processes of `renkei serve` on its one port (HTTP only, not
    # Socket Mode; `--processes` wins): about one per core.
    processes: int = Field(1, ge=1, alias="RENKEI_PROCESSES")
    # How long any one database wait may last, in seconds (0: no limit), so a
    # slow, locked or frozen database gets the person a "please retry" well
    # inside Slack's 3 s instead of a hang (`bot.store.db.Limits`).
    db_statement_timeout: float = Field(1.5, ge=0, alias="RENKEI_DB_STATEMENT_TIMEOUT")
    db_lock_timeout: float = Field(1.0, ge=0, alias="RENKEI_DB_LOCK_TIMEOUT")
    db_idle_in_transaction_timeout: float = Field(10.0, ge=0, alias="RENKEI_DB_IDLE_IN_TRANSACTION_TIMEOUT")
    db_pool_timeout: float = Field(1.0, gt=0, alias="RENKEI_DB_POOL_TIMEOUT")
    db_connect_timeout: int = Field(2, ge=2, alias="RENKEI_DB_CONNECT_TIMEOUT")
    db_tcp_timeout: float = Field(5.0, ge=0, alias="RENKEI_DB_TCP_TIMEOUT")
    db_busy_timeout: float = Field(2.0, ge=0, alias="RENKEI_DB_BUSY_TIMEOUT")  # SQLite

    team: TeamConfig = TeamConfig()

    @property
    def admins(self) -> frozenset[str]:
        """Platform-qualified ids (`slack:U01ADMIN`); a bare id means Slack."""
        return _admins(self.admins_csv)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def has_slack_credentials(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def forms_dir(self) -> Path:
        return self.config_dir / "forms"


@lru_cache(maxsize=8)  # asked on every request (is_admin)
def _admins(csv: str) -> frozenset[str]:
    ids = (a.strip() for a in csv.split(","))
    return frozenset(a if ":" in a else f"slack:{a}" for a in ids if a)


def load_settings(**overrides) -> Settings:
    """Environment first, then explicit overrides (tests, the console); the
    team file is read from the resulting config directory."""
    settings = Settings(**overrides)
    toml_path = settings.config_dir / "renkei.toml"
    if "team" not in overrides and toml_path.exists():
        with toml_path.open("rb") as f:
            settings.team = TeamConfig.model_validate(tomllib.load(f))
    return settings
