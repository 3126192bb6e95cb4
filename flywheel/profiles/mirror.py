"""The warehouse mirror: events, latest profiles and items, through a transactional outbox.

A batch's warehouse rows are built as Arrow tables and written to ``warehouse_outbox`` in the
same operational transaction that applies the batch. :func:`drain` then appends them to the
warehouse and deletes the outbox row once the warehouse transaction committed. Replaying an
outbox row is harmless: events are anti-joined on their id, profiles and items are upserted
whole (``INSERT OR REPLACE``), deletes are deletes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from flywheel.core.clock import utc_naive
from flywheel.profiles.models import WarehouseOutbox
from flywheel.profiles.service import to_warehouse
from flywheel.store import Database
from flywheel.warehouse import Warehouse
from flywheel.warehouse.engine import ARROW_TYPES, BASE_ARROW, PropertyType, TableKind

log = structlog.get_logger(__name__)

_KINDS = (TableKind.EVENTS, TableKind.USERS, TableKind.ITEMS)
_BASE: dict[TableKind, tuple[str, ...]] = {
    TableKind.EVENTS: ("id", "user_id", "distinct_id", "event", "time", "$receive_time"),
    TableKind.USERS: ("user_id", "$update_time"),
    TableKind.ITEMS: ("item_type", "item_id", "$update_time", "$is_deleted"),
}
_STORED_AS_IS = frozenset(
    {PropertyType.NUMBER, PropertyType.STRING, PropertyType.BOOL, PropertyType.LIST}
)
_drain_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass
class WarehouseBatch:
    """What one applied batch changes in the warehouse."""

    events: pa.Table | None = None
    users: pa.Table | None = None
    deleted_users: list[int] = field(default_factory=list)
    items: pa.Table | None = None

    def table(self, kind: TableKind) -> pa.Table | None:
        return {
            TableKind.EVENTS: self.events,
            TableKind.USERS: self.users,
            TableKind.ITEMS: self.items,
        }[kind]

    @property
    def empty(self) -> bool:
        return not self.deleted_users and all(
            t is None or t.num_rows == 0 for t in (self.events, self.users, self.items)
        )


def build_table(
    kind: TableKind,
    base: Mapping[str, Sequence[Any]],
    properties: Sequence[Mapping[str, Any]],
    types: Mapping[str, PropertyType],
) -> pa.Table:
    """An Arrow table of ``kind``: base columns plus typed property columns.

    ``properties`` hold stored JSON values (see ``profiles.service``), one mapping per row.
    Events get a column per property present; users and items a column per registered
    property, since their rows replace whole rows (DuckDB's ``INSERT OR REPLACE`` only
    overwrites the columns it is given, so an unset property must arrive as NULL).
    """
    if kind is TableKind.EVENTS:
        names = sorted({n for row in properties for n in row if n in types})
    else:
        names = sorted(types)
    columns: dict[str, pa.Array] = {
        name: pa.array(list(base[name]), type=BASE_ARROW[name]) for name in _BASE[kind]
    }
    for name in names:
        ptype = types[name]
        array = None
        if ptype in _STORED_AS_IS:  # Arrow converts these stored forms itself …
            try:
                array = pa.array([row.get(name) for row in properties], type=ARROW_TYPES[ptype])
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                array = None  # … except integers beyond 2**53, converted below
        if array is None:
            values = [to_warehouse(ptype, row.get(name)) for row in properties]
            array = pa.array(values, type=ARROW_TYPES[ptype])
        columns[name] = array
    return pa.table(columns)


def _property_type(dtype: pa.DataType) -> PropertyType:
    for ptype, arrow_type in ARROW_TYPES.items():
        if dtype.equals(arrow_type):
            return ptype
    raise ValueError(f"no property type for Arrow type {dtype}")


# -- encoding ------------------------------------------------------------------------------------
def encode(batch: WarehouseBatch) -> bytes:
    """Header (JSON, length-prefixed) then one compressed Arrow IPC stream per table."""
    header: dict[str, Any] = {"deleted_users": batch.deleted_users, "parts": []}
    parts: list[bytes] = []
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    for kind in _KINDS:
        table = batch.table(kind)
        if table is None or table.num_rows == 0:
            continue
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table)
        data = sink.getvalue().to_pybytes()
        header["parts"].append([kind.value, len(data)])
        parts.append(data)
    head = orjson.dumps(header)
    return len(head).to_bytes(4, "big") + head + b"".join(parts)


def decode(payload: bytes) -> WarehouseBatch:
    size = int.from_bytes(payload[:4], "big")
    header = orjson.loads(payload[4 : 4 + size])
    batch = WarehouseBatch(deleted_users=[int(u) for u in header["deleted_users"]])
    offset = 4 + size
    for kind, length in header["parts"]:
        with pa.ipc.open_stream(pa.py_buffer(payload[offset : offset + length])) as reader:
            table = reader.read_all()
        offset += length
        setattr(batch, TableKind(kind).value, table)
    return batch


# -- outbox --------------------------------------------------------------------------------------
def enqueue(*, session: Session, project_id: int, batch: WarehouseBatch, now: datetime) -> None:
    """Stage a batch's warehouse rows in the caller's transaction (nothing if empty)."""
    if batch.empty:
        return
    session.add(
        WarehouseOutbox(project_id=project_id, payload=encode(batch), created_at=utc_naive(now))
    )


def write(warehouse: Warehouse, project_id: int, batch: WarehouseBatch) -> int:
    """Apply one batch to the warehouse in one DuckDB transaction; returns events inserted."""
    with warehouse.write_lock:
        return _write(warehouse, project_id, batch)


def _write(warehouse: Warehouse, project_id: int, batch: WarehouseBatch) -> int:
    warehouse.ensure_project(project_id)
    for kind in _KINDS:
        table = batch.table(kind)
        if table is None:
            continue
        extra = {
            name: _property_type(table.schema.field(name).type)
            for name in table.column_names
            if name not in _BASE[kind]
        }
        warehouse.ensure_columns(project_id, kind, extra)
    cur = warehouse.cursor()
    cur.execute("BEGIN TRANSACTION")
    try:
        inserted = 0
        if batch.events is not None:
            inserted = warehouse.append_new_events(project_id, batch.events)
        if batch.deleted_users:
            warehouse.delete_users(project_id, batch.deleted_users)
        if batch.users is not None:
            warehouse.append(project_id, TableKind.USERS, batch.users)
        if batch.items is not None:
            warehouse.append(project_id, TableKind.ITEMS, batch.items)
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return inserted


def _lock_for(warehouse: Warehouse) -> threading.Lock:
    with _locks_guard:
        return _drain_locks.setdefault(id(warehouse), threading.Lock())


def drain(*, db: Database, warehouse: Warehouse, limit: int = 100) -> int:
    """Move pending outbox rows into the warehouse, oldest first; returns events inserted.

    Entry-point level (owns its units of work). One drain at a time per warehouse (a process
    lock), so the anti-join never races itself. A row is deleted only after its warehouse
    transaction committed; a crash in between replays it harmlessly.
    """
    inserted = 0
    with _lock_for(warehouse):
        with db.unit_of_work() as session:
            pending = session.execute(
                select(WarehouseOutbox.id, WarehouseOutbox.project_id, WarehouseOutbox.payload)
                .order_by(WarehouseOutbox.id)
                .limit(limit)
            ).all()
        for outbox_id, project_id, payload in pending:
            inserted += write(warehouse, int(project_id), decode(payload))
            with db.unit_of_work() as session:
                session.execute(delete(WarehouseOutbox).where(WarehouseOutbox.id == outbox_id))
    if pending:
        log.debug("warehouse_outbox_drained", batches=len(pending), events=inserted)
    return inserted


def pending_count(*, session: Session) -> int:
    """How many outbox rows wait for the warehouse."""
    return len(session.scalars(select(WarehouseOutbox.id)).all())
