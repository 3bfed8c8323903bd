"""Settings for the oracle, read from the environment once at start-up.

Each field's environment variable is its name in upper case (``explorer_url``
is ``EXPLORER_URL``). Command-line flags override the environment, which
overrides the defaults. Nothing here runs at import time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError, shorten

# Account actions the explorer client knows how to fetch.
KNOWN_SOURCES = ("txlist", "txlistinternal", "tokentx", "balance")

_ASCII_DIGITS = re.compile(r"[0-9]+")

# Settings whose values never appear in an error message.
_SECRET_SETTINGS = {"explorer_api_key"}

# Etherscan caps one query window at 10,000 rows (page x offset <= 10,000).
EXPLORER_WINDOW_ROWS = 10_000


class Settings(BaseSettings):
    """All settings of the service; built once by the CLI and passed down."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Service
    oracle_key_file: Path = Path("/app/ecdsa.sec")
    oracle_host: str = "0.0.0.0"
    oracle_port: int = Field(3000, ge=1, le=65535)
    log_level: str = "INFO"

    # Explorer (Etherscan-compatible API)
    explorer_url: str = "https://api.etherscan.io/v2/api"
    explorer_api_key: SecretStr | None = None
    explorer_chain_id: str = "1"
    explorer_sources: Annotated[tuple[str, ...], NoDecode] = KNOWN_SOURCES
    explorer_timeout_s: float = Field(10.0, gt=0, le=300)
    explorer_page_size: int = Field(1000, ge=1, le=EXPLORER_WINDOW_ROWS)
    explorer_max_rows: int = Field(10_000, ge=1, le=1_000_000)
    explorer_retries: int = Field(3, ge=0, le=10)
    explorer_backoff_s: float = Field(0.5, ge=0, le=60)

    # Language model (Ollama)
    ollama_host: str = "http://127.0.0.1:11434"
    ollama_model: str = Field("llama3.2:1b", min_length=1)
    ollama_timeout_s: float = Field(60.0, gt=0, le=600)
    ollama_health_timeout_s: float = Field(2.0, gt=0, le=2.0)
    ollama_num_predict: int = Field(256, ge=16, le=4096)
    ollama_retries: int = Field(2, ge=0, le=5)
    ollama_max_concurrent: int = Field(1, ge=1, le=64)
    ollama_warm_up: bool = True
    score_llm_band: int = Field(100, ge=0, le=1000)
    score_deadline_s: float = Field(120.0, gt=0, le=900)

    @field_validator("explorer_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        sources = tuple(value)  # type: ignore[arg-type]
        unknown = [source for source in sources if source not in KNOWN_SOURCES]
        if unknown or not sources:
            raise ValueError(
                f"invalid explorer sources {list(sources)!r}: "
                f"use a comma-separated subset of {', '.join(KNOWN_SOURCES)}"
            )
        return sources

    @field_validator("explorer_url", "ollama_host")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"invalid URL {value!r}: expected http://host[:port][/path]")
        return value

    @field_validator("oracle_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        # An empty host would make uvicorn listen on every interface without saying so.
        if not value.strip():
            raise ValueError("empty host: give an address to listen on, such as 127.0.0.1 or 0.0.0.0")
        return value.strip()

    @field_validator("explorer_chain_id")
    @classmethod
    def _check_chain_id(cls, value: str) -> str:
        value = value.strip()
        if value and not _ASCII_DIGITS.fullmatch(value):
            raise ValueError(f"invalid chain id {value!r}: expected a decimal number, or empty")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"invalid log level {value!r}: use DEBUG, INFO, WARNING or ERROR")
        return level


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment and explicit overrides.

    Overrides whose value is ``None`` are ignored, so unset CLI flags fall
    through to the environment. Raises ``ConfigError`` naming each bad setting.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = "; ".join(_describe(problem) for problem in error.errors())
        raise ConfigError(f"invalid configuration: {problems}") from error


def _describe(problem: dict) -> str:
    field = ".".join(str(part) for part in problem["loc"])
    message = problem["msg"].removeprefix("Value error, ")
    if field in _SECRET_SETTINGS or problem["type"] == "value_error":
        # Our own validators already quote the value; secrets are never quoted.
        return f"{field.upper()}: {message}"
    return f"{field.upper()}: {message}, got {shorten(problem.get('input'))!r}"

