"""Every setting of the service, read from the environment (and a `.env` file).

One pydantic-settings class: names are the environment variables (case-insensitive), each with
a type, a development default and a description. `Settings()` is built by `create_app` and by
`python -m service`, never at import time, so tests can build their own.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class CacheMode(StrEnum):
    strict = "strict"
    bounded = "bounded"


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class Pooler(StrEnum):
    none = "none"
    transaction = "transaction"


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    """Configuration of one service process."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL DSN (postgresql://user:password@host:port/db). "
        "Unset: start the embedded default database under EMBEDDED_DATA_DIR.",
    )
    database_direct_url: SecretStr | None = Field(
        None,
        description="DSN straight to PostgreSQL, bypassing any pooler: the cache-invalidation "
        "listener (LISTEN) and the sweeper (advisory lock) use it. Unset: DATABASE_URL.",
    )
    db_pooler: Pooler = Field(
        Pooler.none,
        description="`transaction`: DATABASE_URL goes through a transaction-pooling PgBouncer "
        "(needs DATABASE_DIRECT_URL; statement cache 0 and no lost-write settling unless set; "
        "timeouts applied per statement).",
    )
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Number of uvicorn worker processes.")
    prometheus_multiproc_dir: str | None = Field(
        None,
        description="Folder where the workers pool their metrics (emptied at start-up); "
        "unset with WORKERS > 1: a temporary one.",
    )
    log_level: str = Field("INFO", description="Python logging level name, any case.")
    log_format: LogFormat = Field(LogFormat.text, description="`text` for humans, `json` lines.")
    environment: Environment = Field(
        Environment.development,
        description="`production` refuses to start without API_KEYS.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer keys; when set, /api/v1/* requires one.",
    )
    metrics_require_key: bool = Field(
        False, description="Require an API key for /metrics and /health too."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed by CORS; empty turns CORS off.",
    )
    cache_ttl_seconds: float = Field(
        60.0, ge=0, description="Lifetime of a cached session/agent; 0 turns the cache off."
    )
    cache_mode: CacheMode = Field(
        CacheMode.strict,
        description="`strict`: every hit is checked against the row's version; "
        "`bounded`: hits skip the database and rely on invalidation notices.",
    )
    cache_max_entries: int = Field(10_000, ge=1, description="Upper bound on cached entries.")
    cache_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1, description="Upper bound on the bytes of cached bodies."
    )
    cache_max_entry_share: float = Field(
        0.05,
        gt=0,
        le=1,
        description="A body larger than this share of CACHE_MAX_BYTES is not cached.",
    )
    migrate_on_start: bool = Field(True, description="Apply migrations before serving.")
    db_pool_min_size: int = Field(2, ge=0, description="Connections the pool keeps open.")
    db_pool_max_size: int = Field(10, ge=1, description="Most connections the pool opens.")
    db_statement_timeout_seconds: float = Field(
        10.0, gt=0, description="PostgreSQL statement_timeout for every statement."
    )
    db_acquire_timeout_seconds: float = Field(
        5.0, gt=0, description="How long a request waits for a pooled connection."
    )
    db_connect_timeout_seconds: float = Field(
        5.0, gt=0, description="Time-out of one connection attempt."
    )
    db_connect_deadline_seconds: float = Field(
        60.0, gt=0, description="At start-up, give up reaching the database after this long."
    )
    db_statement_cache_size: int = Field(
        100, ge=0, description="asyncpg prepared-statement cache per connection (0 for pgbouncer)."
    )
    db_retry_attempts: int = Field(
        4, ge=1, description="Attempts of one transaction on transient database errors."
    )
    db_settle_lost_writes: bool = Field(
        True,
        description="When a write's connection is lost, end its server process "
        "(pg_terminate_backend) to learn its outcome; turn off behind a pooler such as pgbouncer.",
    )
    idempotency_ttl_seconds: float = Field(
        86_400.0,
        ge=60,
        description="How long a write's Idempotency-Key is kept (the sweeper removes it after).",
    )
    export_max_concurrent: int = Field(
        2, ge=1, description="Exports streaming at once; more wait, then answer 503."
    )
    export_send_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="An export or message stream whose reader takes no data for this long is "
        "cut off.",
    )
    request_timeout_seconds: float = Field(
        14.0, gt=0, description="Longest a request may take before it is answered 503."
    )
    shutdown_grace_seconds: float = Field(
        10.0, ge=0, description="On SIGTERM, time in-flight requests get to finish."
    )
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_json_depth: int = Field(64, ge=2, description="Deepest JSON nesting accepted (422 above).")
    default_session_ttl_seconds: float = Field(
        0.0,
        ge=0,
        le=3_153_600_000,
        description="Lifetime given to a new session that asks for none; 0: sessions never expire.",
    )
    sweep_interval_seconds: float = Field(
        60.0, ge=0, description="How often expired sessions are deleted; 0 turns the sweeper off."
    )
    sweep_batch_size: int = Field(
        100, ge=1, le=10_000, description="Expired sessions deleted per sweeper transaction."
    )
    storage_max_object_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="Largest value /api/v1/storage accepts (413 above)."
    )
    embedded_data_dir: Path = Field(
        PROJECT_ROOT / ".data" / "postgres",
        description="Data folder of the embedded default database.",
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"unknown logging level {value!r}")
        return level

    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _postgres_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// DSN")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("DB_POOL_MIN_SIZE: must not exceed DB_POOL_MAX_SIZE")
        if self.environment is Environment.production and not self.api_keys:
            raise ValueError("API_KEYS: required when ENVIRONMENT=production")
        if "*" in self.cors_origins and len(self.cors_origins) > 1:
            raise ValueError("CORS_ORIGINS: '*' cannot be combined with other origins")
        if self.db_pooler is Pooler.transaction:
            # LISTEN and session-level advisory locks need a connection of their own, which
            # transaction pooling does not give: they must reach PostgreSQL directly.
            if self.database_direct_url is None:
                raise ValueError("DATABASE_DIRECT_URL: required when DB_POOLER=transaction")
            # PgBouncer before 1.21 cannot hold prepared statements across transactions.
            if "db_statement_cache_size" not in self.model_fields_set:
                self.db_statement_cache_size = 0
            # A lost write's server process is PgBouncer's to reuse, not ours to terminate.
            if "db_settle_lost_writes" not in self.model_fields_set:
                self.db_settle_lost_writes = False
        return self

    @property
    def dsn(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    def direct_dsn(self, dsn: str) -> str:
        """Where connections that must not be pooled per transaction go: DATABASE_DIRECT_URL,
        else `dsn` (the one the pool uses)."""
        return self.database_direct_url.get_secret_value() if self.database_direct_url else dsn

    @property
    def cache_enabled(self) -> bool:
        return self.cache_ttl_seconds > 0


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced by `***`, safe for logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
