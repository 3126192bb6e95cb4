"""Alembic migrations of the operational store, applied automatically on start.

Each domain adds its tables in its own revision; the chain is linear (one head).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema behind ``engine`` up to ``revision`` (all heads by default)."""
    command.upgrade(alembic_config(engine), revision)
