"""Fast bulk writes for hot paths (the journey engine's states and messages).

SQLAlchemy's executemany converts every value of every row through its type processors; for
hundreds of thousands of rows that dominates. Here rows arrive as tuples of values already in
the driver's form (:func:`db_datetime`, :func:`db_json`) and go to the DB-API ``executemany``
directly, with the placeholder style of the connection's driver. Values stay bound
parameters — never formatted into the SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from flywheel.core.clock import utc_naive


def is_sqlite(connection: Connection) -> bool:
    return connection.dialect.name == "sqlite"


def db_datetime(connection: Connection, moment: datetime | None) -> Any:
    """A UTC datetime as the driver stores it for SQLAlchemy's ``DateTime`` (naive UTC)."""
    if moment is None:
        return None
    naive = utc_naive(moment)
    if is_sqlite(connection):
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f")
    return naive


def db_json(value: Any) -> str:
    """A JSON column value (SQLAlchemy's ``JSON`` stores text on both dialects)."""
    return orjson.dumps(value).decode()


def executemany(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run ``sql`` (written with ``?`` placeholders) once per row, in chunks."""
    if not rows:
        return
    if connection.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("?", "%s")
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(rows), 10_000):
            cursor.executemany(sql, rows[start : start + 10_000])
    finally:
        cursor.close()
