"""Fast bulk writes for hot paths (the journey engine's states and messages).

SQLAlchemy's executemany converts every value of every row through its type processors; for
hundreds of thousands of rows that dominates. Here rows arrive as tuples of values already in
the driver's form (:func:`db_datetime`, :func:`db_json`) and go to the driver directly: SQLite
gets the DB-API ``executemany``; PostgreSQL gets ``COPY … FROM STDIN`` (binary-safe, one
stream per batch), through a temporary table when conflicting rows must be skipped or the
inserted rows read back. Values are never formatted into the SQL text.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from flywheel.core.clock import utc_naive

_CHUNK = 10_000
_temp_names = itertools.count(1)


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


def _driver_cursor(connection: Connection) -> Any:
    return connection.connection.driver_connection.cursor()  # type: ignore[union-attr]


def executemany(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run ``sql`` (written with ``?`` placeholders) once per row, in chunks."""
    if not rows:
        return
    if connection.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("?", "%s")
    cursor = _driver_cursor(connection)
    try:
        for start in range(0, len(rows), _CHUNK):
            cursor.executemany(sql, rows[start : start + _CHUNK])
    finally:
        cursor.close()


def insert(
    connection: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    skip_conflicts_on: str | None = None,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (values in ``columns`` order) into ``table``.

    ``skip_conflicts_on`` names the unique column whose duplicates are skipped (``ON CONFLICT
    DO NOTHING``); ``returning`` names columns read back from the rows actually inserted
    (PostgreSQL only: SQLite callers find their rows by id, see :mod:`channels.outbox`).
    """
    if not rows:
        return []
    names = ", ".join(columns)
    conflict = f" ON CONFLICT ({skip_conflicts_on}) DO NOTHING" if skip_conflicts_on else ""
    if is_sqlite(connection):
        if returning:
            raise ValueError("bulk.insert cannot return rows on SQLite")
        marks = ", ".join("?" * len(columns))
        executemany(connection, f"INSERT INTO {table} ({names}) VALUES ({marks}){conflict}", rows)
        return []
    cursor = _driver_cursor(connection)
    try:
        if not conflict and not returning:
            _copy(cursor, f"{table} ({names})", rows)
            return []
        # One set-oriented INSERT … SELECT that skips conflicts and returns what it inserted.
        back = f" RETURNING {', '.join(returning)}" if returning else ""
        with _staged(cursor, table, names, rows) as temp:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp}{conflict}{back}"
            )
            return [tuple(r) for r in cursor.fetchall()] if returning else []
    finally:
        cursor.close()


def update_by_id(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Set ``columns`` of the rows of ``table`` whose ``id`` is each row's last value."""
    if not rows:
        return
    if is_sqlite(connection):
        sets = ", ".join(f"{c} = ?" for c in columns)
        executemany(connection, f"UPDATE {table} SET {sets} WHERE id = ?", rows)
        return
    cursor = _driver_cursor(connection)
    try:
        with _staged(cursor, table, ", ".join([*columns, "id"]), rows) as temp:
            sets = ", ".join(f"{c} = {temp}.{c}" for c in columns)
            cursor.execute(f"UPDATE {table} SET {sets} FROM {temp} WHERE {table}.id = {temp}.id")
    finally:
        cursor.close()


@contextmanager
def _staged(cursor: Any, table: str, names: str, rows: Sequence[Sequence[Any]]) -> Iterator[str]:
    """``rows`` COPYed into a temporary table shaped like ``table``'s columns ``names``
    (dropped after the block, and at commit in any case); yields its name."""
    temp = f"_bulk_{table}_{next(_temp_names)}"
    cursor.execute(
        f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"
    )
    _copy(cursor, f"{temp} ({names})", rows)
    yield temp
    cursor.execute(f"DROP TABLE {temp}")


def _copy(cursor: Any, target: str, rows: Sequence[Sequence[Any]]) -> None:
    with cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
