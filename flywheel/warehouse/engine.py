"""The analytical store behind one small interface.

Layout, per project (projects are tenants, kept physically apart):

* ``p{project}_events``: one row per event. Fixed columns ``id`` (event id), ``user_id``,
  ``distinct_id``, ``event``, ``time`` (naive UTC), ``"$receive_time"``; then one typed column per
  event property, added as the schema registry first sees it (Sensors-style wide table).
* ``p{project}_users``: one row per user (``user_id`` primary key, ``"$update_time"``) and one
  column per profile property: the latest profile, upserted by the ingest processor.
* ``p{project}_items``: one row per item (``item_type``, ``item_id`` primary key,
  ``"$update_time"``, ``"$is_deleted"``) and one column per item property.

Property names are validated against the Sensors naming rule before they get here, so quoting
them as identifiers is safe; values always travel as bound parameters or Arrow batches.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.core.errors import InvalidInput


class PropertyType(StrEnum):
    """Sensors property types."""

    NUMBER = "NUMBER"
    STRING = "STRING"
    BOOL = "BOOL"
    DATETIME = "DATETIME"
    DATE = "DATE"
    LIST = "LIST"


class TableKind(StrEnum):
    EVENTS = "events"
    USERS = "users"
    ITEMS = "items"


SQL_TYPES: dict[PropertyType, str] = {
    PropertyType.NUMBER: "DOUBLE",
    PropertyType.STRING: "VARCHAR",
    PropertyType.BOOL: "BOOLEAN",
    PropertyType.DATETIME: "TIMESTAMP",
    PropertyType.DATE: "DATE",
    PropertyType.LIST: "VARCHAR[]",
}

ARROW_TYPES: dict[PropertyType, pa.DataType] = {
    PropertyType.NUMBER: pa.float64(),
    PropertyType.STRING: pa.string(),
    PropertyType.BOOL: pa.bool_(),
    PropertyType.DATETIME: pa.timestamp("us"),
    PropertyType.DATE: pa.date32(),
    PropertyType.LIST: pa.list_(pa.string()),
}

BASE_COLUMNS: dict[TableKind, list[tuple[str, str]]] = {
    TableKind.EVENTS: [
        ("id", "VARCHAR NOT NULL"),
        ("user_id", "BIGINT NOT NULL"),
        ("distinct_id", "VARCHAR"),
        ("event", "VARCHAR NOT NULL"),
        ("time", "TIMESTAMP NOT NULL"),
        ("$receive_time", "TIMESTAMP NOT NULL"),
    ],
    TableKind.USERS: [
        ("user_id", "BIGINT PRIMARY KEY"),
        ("$update_time", "TIMESTAMP NOT NULL"),
    ],
    TableKind.ITEMS: [
        ("item_type", "VARCHAR NOT NULL"),
        ("item_id", "VARCHAR NOT NULL"),
        ("$update_time", "TIMESTAMP NOT NULL"),
        ("$is_deleted", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ],
}

BASE_ARROW: dict[str, pa.DataType] = {
    "id": pa.string(),
    "user_id": pa.int64(),
    "distinct_id": pa.string(),
    "event": pa.string(),
    "time": pa.timestamp("us"),
    "$receive_time": pa.timestamp("us"),
    "$update_time": pa.timestamp("us"),
    "item_type": pa.string(),
    "item_id": pa.string(),
    "$is_deleted": pa.bool_(),
}

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,99}$")

#: Versioned analytical DDL. Each entry runs once per project, in order; append, never edit.
PROJECT_DDL: list[str] = [
    # 1: base tables
    "\n".join(
        f'CREATE TABLE IF NOT EXISTS "p{{project}}_{kind.value}" ('
        + ", ".join(f'"{name}" {sql}' for name, sql in cols)
        + (', PRIMARY KEY ("item_type", "item_id")' if kind is TableKind.ITEMS else "")
        + ");"
        for kind, cols in BASE_COLUMNS.items()
    ),
    # 2: tag values (one dated version per tag run) and segment members (flywheel.tags/segments)
    'CREATE TABLE IF NOT EXISTS "p{project}_tag_values" (tag VARCHAR NOT NULL, '
    "user_id BIGINT NOT NULL, value VARCHAR, day DATE NOT NULL, computed_at TIMESTAMP NOT NULL);\n"
    'CREATE TABLE IF NOT EXISTS "p{project}_segment_members" (segment_id BIGINT NOT NULL, '
    "user_id BIGINT NOT NULL, since TIMESTAMP NOT NULL);",
]


def quote_ident(name: str) -> str:
    """Quote a validated property or table name as a SQL identifier."""
    if not _IDENT.match(name):
        raise InvalidInput(f"{name!r} is not a valid property name")
    return f'"{name}"'


def table_name(project_id: int, kind: TableKind) -> str:
    return f"p{int(project_id)}_{kind.value}"


class Warehouse:
    """A DuckDB database file (or ``:memory:``) shared by every thread of the process.

    DuckDB allows one process to open a file for writing; inside the process each thread
    works on its own cursor. Writes of one batch are one DuckDB transaction.
    """

    dialect = "duckdb"

    def __init__(self, path: str, *, memory_limit: str = "3GB") -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # Bounded so a worker stays well under its 4 GiB budget; DuckDB spills beyond it.
            self._root = duckdb.connect(path, config={"memory_limit": memory_limit})
        except duckdb.IOException as exc:
            raise InvalidInput(
                f"the warehouse {path} is in use by another process ({exc}); "
                "stop `flywheel serve` or send data through its HTTP API"
            ) from exc
        self._local = threading.local()
        #: Held by table changes (ALTER) and appends, and by multi-statement writes
        #: (``write_lock``): DuckDB refuses an insert in a transaction that overlaps another
        #: thread's ALTER of the same table.
        self._ddl_lock = threading.RLock()
        self._columns: dict[tuple[int, TableKind], dict[str, str]] = {}
        self._ready: set[int] = set()
        self._root.execute(
            "CREATE TABLE IF NOT EXISTS _flywheel_ddl (project_id BIGINT, version INTEGER,"
            " applied_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (project_id, version))"
        )

    # -- connections -------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the shared database."""
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._root.cursor()
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        self._root.close()

    # -- schema ------------------------------------------------------------------------------
    def ensure_project(self, project_id: int) -> None:
        """Create or upgrade the project's tables to the latest analytical DDL version."""
        if project_id in self._ready:
            return
        with self._ddl_lock:
            cur = self.cursor()
            done = {
                row[0]
                for row in cur.execute(
                    "SELECT version FROM _flywheel_ddl WHERE project_id = ?", [project_id]
                ).fetchall()
            }
            for version, ddl in enumerate(PROJECT_DDL, start=1):
                if version in done:
                    continue
                cur.execute("BEGIN")
                cur.execute(ddl.replace("{project}", str(int(project_id))))
                cur.execute(
                    "INSERT INTO _flywheel_ddl (project_id, version) VALUES (?, ?)",
                    [project_id, version],
                )
                cur.execute("COMMIT")
            self._ready.add(project_id)

    def columns(self, project_id: int, kind: TableKind) -> dict[str, str]:
        """Column name → DuckDB type of one of the project's tables."""
        key = (project_id, kind)
        cached = self._columns.get(key)
        if cached is not None:
            return cached
        self.ensure_project(project_id)
        rows = (
            self.cursor()
            .execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [table_name(project_id, kind)],
            )
            .fetchall()
        )
        cols = {str(name): str(dtype) for name, dtype in rows}
        self._columns[key] = cols
        return cols

    @property
    def write_lock(self) -> threading.RLock:
        """Serialises warehouse writes that span several statements (see ``__init__``)."""
        return self._ddl_lock

    def ensure_columns(
        self, project_id: int, kind: TableKind, properties: dict[str, PropertyType]
    ) -> None:
        """Add a typed column for each property the table does not have yet."""
        missing = {
            name: ptype
            for name, ptype in properties.items()
            if name not in self.columns(project_id, kind)
        }
        if not missing:
            return
        with self._ddl_lock:
            cur = self.cursor()
            table = table_name(project_id, kind)
            for name, ptype in missing.items():
                cur.execute(
                    f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS '
                    f"{quote_ident(name)} {SQL_TYPES[ptype]}"
                )
            self._columns.pop((project_id, kind), None)

    # -- writes ------------------------------------------------------------------------------
    def append(self, project_id: int, kind: TableKind, batch: pa.Table) -> int:
        """Insert an Arrow table whose column names match the table's columns."""
        if batch.num_rows == 0:
            return 0
        self.ensure_project(project_id)
        cur = self.cursor()
        cols = ", ".join(quote_ident(c) for c in batch.column_names)
        with self._ddl_lock:  # not while another thread alters the table (DuckDB conflict)
            cur.register("_fw_batch", batch)
            try:
                verb = "INSERT OR REPLACE" if kind is not TableKind.EVENTS else "INSERT"
                cur.execute(
                    f'{verb} INTO "{table_name(project_id, kind)}" ({cols}) '
                    f"SELECT {cols} FROM _fw_batch"
                )
            finally:
                cur.unregister("_fw_batch")
        return int(batch.num_rows)

    def append_new_events(self, project_id: int, batch: pa.Table) -> int:
        """Insert the events whose ``id`` the table does not hold yet; return how many.

        Replays of a batch and SDK retries (same event id) are skipped by an anti-join on
        ``id``, limited to the batch's ``time`` range (where a duplicate must lie) so the
        zone maps keep it cheap on a large table. Ids must be unique within ``batch``.
        """
        if batch.num_rows == 0:
            return 0
        self.ensure_project(project_id)
        cur = self.cursor()
        table = table_name(project_id, TableKind.EVENTS)
        cols = ", ".join(quote_ident(c) for c in batch.column_names)
        bounds = pc.min_max(batch.column("time"))
        with self._ddl_lock:
            cur.register("_fw_events", batch)
            try:
                row = cur.execute(
                    f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _fw_events b '
                    f'WHERE NOT EXISTS (SELECT 1 FROM "{table}" e '
                    "WHERE e.time BETWEEN ? AND ? AND e.id = b.id)",
                    [bounds["min"].as_py(), bounds["max"].as_py()],
                ).fetchone()
            finally:
                cur.unregister("_fw_events")
        return int(row[0]) if row else 0

    def delete_users(self, project_id: int, user_ids: Sequence[int]) -> None:
        if not user_ids:
            return
        self.ensure_project(project_id)
        self.cursor().execute(
            f'DELETE FROM "{table_name(project_id, TableKind.USERS)}" WHERE user_id IN '
            f"(SELECT unnest(?::BIGINT[]))",
            [list(user_ids)],
        )

    # -- reads -------------------------------------------------------------------------------
    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read query with bound parameters and return its rows."""
        return self.cursor().execute(sql, list(params or [])).fetchall()

    def fetch_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.cursor().execute(sql, list(params or []))
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def latest_tag_values(
        self, project_id: int, user_id: int, *, day: date | None = None
    ) -> dict[str, str | None]:
        """Tag name → the customer's value in each tag's latest version (at or before ``day``).

        The tag's latest run decides: a customer who dropped out of a rule tag has no row in
        it, so an older row of theirs must not show as current.
        """
        self.ensure_project(project_id)
        table = f'"p{int(project_id)}_tag_values"'
        until = " WHERE day <= ?" if day is not None else ""
        params: list[Any] = [day] if day is not None else []
        rows = self.fetch(
            f"SELECT v.tag, v.value FROM {table} v JOIN (SELECT tag, max(day) AS day "
            f"FROM {table}{until} GROUP BY tag) latest ON v.tag = latest.tag "
            "AND v.day = latest.day WHERE v.user_id = ? ORDER BY v.tag",
            [*params, user_id],
        )
        return {str(tag): value for tag, value in rows}

    def arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        result: pa.Table = self.cursor().sql(sql, params=list(params or [])).to_arrow_table()
        return result


def open_warehouse(url: str) -> Warehouse:
    """Open the warehouse named by ``url``: ``duckdb:///path/file.duckdb`` or ``duckdb:///:memory:``."""
    if url.startswith("duckdb:///"):
        return Warehouse(url.removeprefix("duckdb:///"))
    if url.startswith("duckdb://"):
        return Warehouse(url.removeprefix("duckdb://"))
    raise InvalidInput(
        f"unsupported warehouse URL {url.split(':', 1)[0]!r}: use duckdb:///path "
        "(ClickHouse support comes with the scale-out deployment)"
    )
