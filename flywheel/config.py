"""Settings from the environment (prefix ``FLYWHEEL_``), read once at the entry point.

Services never read settings: the entry point (app factory, CLI, worker) passes values in.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    """Every knob of a Flywheel process.

    ``data_dir`` holds the embedded stores (SQLite + DuckDB) unless the URLs point elsewhere.
    Outside ``env=dev`` a real ``secret_key`` is required: the placeholder is refused.
    """

    model_config = SettingsConfigDict(env_prefix="FLYWHEEL_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("./flywheel-data")
    database_url: str | None = None
    warehouse_url: str | None = None
    bus_url: str | None = None
    redis_url: str | None = None
    secret_key: str = DEV_SECRET
    #: Fernet keys for PII encrypted at rest, newest first (comma separated); derived from
    #: ``secret_key`` when empty. Rotation: prepend a new key, run ``flywheel keys rotate-pii``.
    encryption_keys: str = ""
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_records_per_request: int = Field(default=5000, ge=1)
    processor_interval_seconds: float = Field(default=0.1, gt=0)
    processor_batch_size: int = Field(default=5000, ge=1)
    log_level: str = "INFO"
    log_json: bool = False
    cookie_secure: bool = False
    access_token_minutes: int = Field(default=12 * 60, ge=1)
    webhook_allow: str = "127.0.0.0/8"

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.env == "prod" and self.secret_key == DEV_SECRET:
            raise ValueError(
                "FLYWHEEL_SECRET_KEY must be set to a real secret when FLYWHEEL_ENV=prod"
            )
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'flywheel.db'}"

    @cached_property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or f"duckdb:///{self.data_dir.resolve() / 'warehouse.duckdb'}"
