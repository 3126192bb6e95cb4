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
    #: Built console assets (``console/dist`` of a source checkout when unset).
    console_dir: Path | None = None
    log_level: str = "INFO"
    log_json: bool = False
    cookie_secure: bool = False
    access_token_minutes: int = Field(default=12 * 60, ge=1)
    webhook_allow: str = "127.0.0.0/8"
    #: Login attempts allowed per minute per username and per client IP (0 = no limit).
    login_rate_per_user_per_minute: int = Field(default=10, ge=0)
    login_rate_per_ip_per_minute: int = Field(default=120, ge=0)
    #: Collection requests (/sa, /sa.gif, /debug, /v1/*) per second per project or write key,
    #: with bursts up to ``ingest_burst`` (0 = no limit). Shared via Redis when redis_url is set.
    ingest_rate_per_second: float = Field(default=1000.0, ge=0)
    ingest_burst: int = Field(default=5000, ge=1)
    #: Content-Security-Policy of every answer (the console SPA is served from the same origin).
    content_security_policy: str = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    #: Optional OIDC login (authorization-code flow with PKCE); enabled when issuer is set.
    oidc_issuer: str | None = None
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    #: Where the IdP sends the browser back: https://<console>/api/v1/auth/oidc/callback
    oidc_redirect_uri: str = ""
    oidc_scopes: str = "openid email profile"
    #: id_token claim matched to a console username; ``email`` is tried next.
    oidc_username_claim: str = "preferred_username"
    #: Where the browser lands after a successful OIDC login.
    oidc_post_login_redirect: str = "/"
    #: S3-compatible media storage for content images (disk under data_dir when bucket unset).
    #: Endpoint of MinIO / Ceph / OSS / COS (``https://…``); empty for AWS S3 itself.
    media_s3_endpoint: str | None = None
    media_s3_bucket: str | None = None
    #: Keys (empty: boto3's usual chain — environment, instance profile …).
    media_s3_access_key: str = ""
    media_s3_secret_key: str = ""
    media_s3_region: str = "us-east-1"
    #: Key prefix inside the bucket, e.g. ``flywheel/`` (objects: ``{prefix}p{project}/<name>``).
    media_s3_prefix: str = ""
    #: ``path`` (MinIO, most on-premises services), ``virtual`` or ``auto``.
    media_s3_addressing_style: Literal["path", "virtual", "auto"] = "path"

    #: Dispatcher (flywheel/channels/dispatch.py): messages claimed per batch, how long a
    #: claimed message stays leased before another dispatcher may send it again (same
    #: idempotency key), retries before dead-lettering, exponential backoff with jitter.
    dispatch_batch_size: int = Field(default=500, ge=1, le=20_000)
    dispatch_interval_seconds: float = Field(default=0.2, gt=0)
    dispatch_lease_seconds: float = Field(default=120.0, gt=0)
    dispatch_max_attempts: int = Field(default=8, ge=1)
    dispatch_retry_base_seconds: float = Field(default=30.0, gt=0)
    dispatch_retry_max_seconds: float = Field(default=3600.0, gt=0)
    #: Webhook channel: per-request timeout and concurrent requests per dispatcher.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=64, ge=1)
    #: Email channel (SMTP via aiosmtplib). ``smtp_tls`` = implicit TLS (465); ``smtp_starttls``
    #: upgrades a plain connection (587).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Flywheel <noreply@localhost>"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Public base URL customers and providers reach this server at: tracked links (/l/…),
    #: one-click unsubscribe (/u/…) and provider receipt callbacks (/callbacks/…).
    public_url: str = "http://127.0.0.1:8000"

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
