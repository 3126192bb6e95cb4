"""Operational store: SQLAlchemy 2 on SQLite (embedded default) or PostgreSQL."""

from flywheel.store.db import Base, Database, create_database, utcnow_column

__all__ = ["Base", "Database", "create_database", "utcnow_column"]
