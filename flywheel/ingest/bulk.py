"""Bulk import: CSV / JSON lines / Parquet files (and Arrow tables) straight into the stores.

The high-volume path beside the per-record processor. A file is read by an in-memory DuckDB
in Arrow batches; every row rule (ids present and short enough, a valid event name, a
parseable time, values of the property's registered type) is evaluated by DuckDB or Arrow
compute over the whole batch, never in a Python loop per row. Then, per batch:

1. identities are resolved in bulk (``identity.service.resolve_many``, one call for the
   batch's new distinct ids, remembered for the rest of the import), rejected rows are kept
   with their reasons (``ingest.service.record_rejections``, source ``import``), and that
   unit of work commits;
2. the batch is appended to the warehouse in one DuckDB statement.

Semantics: ``events`` rows are ``track`` events of the user of ``identity_key`` = the row's
distinct id; ``profiles`` rows are ``profile_set`` (a null cell leaves the property as it
was); ``items`` rows are ``item_set``. Anonymous → login merges and other identity-graph edits
are not bulk work: send those through the per-record path (``ingest.pipeline.apply_records``).

Import jobs run while no server holds the warehouse file: :class:`~flywheel.warehouse.Warehouse`
refuses to open a file another process holds, with a message saying so.
"""

from __future__ import annotations

import re
import time as _time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from sqlalchemy.orm import Session

from flywheel.core.clock import utc_naive
from flywheel.core.errors import InvalidInput
from flywheel.identity import service as identity
from flywheel.ingest import service as ingest_service
from flywheel.ingest.validation import MAX_ID_CHARS, MAX_STRING_CHARS, is_valid_name
from flywheel.profiles import service as profiles
from flywheel.runtime import Runtime
from flywheel.warehouse import PropertyType, TableKind
from flywheel.warehouse.engine import ARROW_TYPES, SQL_TYPES

log = structlog.get_logger(__name__)

ImportKind = Literal["events", "profiles", "items"]
FileFormat = Literal["csv", "jsonl", "parquet"]

SOURCE = "import"
DEFAULT_BATCH_ROWS = 100_000

_EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: The shape of a Sensors name (reserved names are refused afterwards, per distinct name).
_NAME_SHAPE = "[A-Za-z_$][A-Za-z0-9_$]{0,99}"
_TZ_NAME = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")
_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT"
    r"|FLOAT|DOUBLE|DECIMAL(\(\d+,\s*\d+\))?)$"
)
_INTEGER = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|U\w*INT)$")


@dataclass(frozen=True)
class ImportOptions:
    """How to read one file. Column options name a column of the file (before or after
    ``mapping``); ``mapping`` renames source columns (``source → target``, an empty target
    drops the column)."""

    kind: ImportKind
    file_format: FileFormat | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    distinct_id_col: str = "distinct_id"
    event_col: str = "event"
    #: A constant event name for every row (instead of ``event_col``).
    event_name: str | None = None
    time_col: str = "time"
    item_type_col: str = "item_type"
    item_id_col: str = "item_id"
    #: A constant item type for every row (instead of ``item_type_col``).
    item_type: str | None = None
    identity_key: str = "$identity_login_id"
    #: Zone of times written without an offset (stored as UTC).
    timezone: str = "UTC"
    batch_rows: int = DEFAULT_BATCH_ROWS


@dataclass
class ImportResult:
    """What an import did. ``reasons`` counts rejections by reason (row numbers left out)."""

    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    users: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[int], None]


# -- column planning --------------------------------------------------------------------------
def detect_format(path: Path, given: str | None = None) -> FileFormat:
    """The file format: ``given`` when set, else from the extension; :class:`InvalidInput`."""
    if given is not None:
        if given not in ("csv", "jsonl", "parquet"):
            raise InvalidInput(f"unknown format {given!r}: use csv, jsonl or parquet")
        return given  # type: ignore[return-value]  # checked just above
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"cannot tell the format of {path.name!r} from its extension: "
            "pass --format csv|jsonl|parquet"
        )
    return fmt


def property_type_of(sql_type: str) -> PropertyType | None:
    """The Sensors property type a DuckDB column type maps to (None: not importable)."""
    upper = sql_type.upper()
    if upper == "BOOLEAN":
        return PropertyType.BOOL
    if _NUMERIC.match(upper):
        return PropertyType.NUMBER
    if upper in ("VARCHAR", "UUID", "JSON", "TIME", "ENUM") or upper.startswith("ENUM("):
        return PropertyType.STRING
    if upper.startswith("TIMESTAMP"):
        return PropertyType.DATETIME
    if upper == "DATE":
        return PropertyType.DATE
    if upper.endswith("[]") and "STRUCT" not in upper and "MAP" not in upper:
        return PropertyType.LIST
    return None


def _q(name: str) -> str:
    """Quote a column name of the file (checked to be one of its columns) for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class _Plan:
    """Resolved columns of one file: role columns and property columns, as SQL."""

    #: ``(expression, alias)`` of the inner SELECT, and its bound parameters in order
    select: list[tuple[str, str]] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    #: property name → its (registered) type
    properties: dict[str, PropertyType] = field(default_factory=dict)
    #: alias of each property in the SELECT → property name
    aliases: dict[str, str] = field(default_factory=dict)
    #: ``(condition, reason)``: a row is rejected with the first reason whose condition holds
    checks: list[tuple[str, str]] = field(default_factory=list)

    def sql(self) -> tuple[str, list[Any]]:
        """The whole statement over the view ``src`` and its parameters."""
        inner = ", ".join(f"{expr} AS {alias}" for expr, alias in self.select)
        params = list(self.params)
        if self.checks:
            whens = []
            for condition, reason in self.checks:
                whens.append(f"WHEN {condition} THEN ?")
                params.append(reason)
            reason_sql = "CASE " + " ".join(whens) + " END"
        else:
            reason_sql = "CAST(NULL AS VARCHAR)"
        # DuckDB lets later select items use earlier aliases; the raw row is only serialised
        # for rejected rows.
        statement = (
            f"SELECT {inner}, {reason_sql} AS _reason, "
            "CASE WHEN _reason IS NOT NULL THEN to_json(src)::VARCHAR END AS _raw FROM src"
        )
        return statement, params


class _Columns:
    """The file's columns after ``mapping``: target name → (source name, DuckDB type)."""

    def __init__(self, names: Sequence[str], types: Sequence[str], mapping: Mapping[str, str]):
        source = dict(zip(names, types, strict=True))
        unknown = [col for col in mapping if col not in source]
        if unknown:
            raise InvalidInput(
                f"--map names columns the file does not have: {', '.join(map(repr, unknown))} "
                f"(columns: {', '.join(names)})"
            )
        self.by_target: dict[str, tuple[str, str]] = {}
        for name in names:
            target = mapping.get(name, name)
            if target == "":
                continue
            if target in self.by_target:
                raise InvalidInput(f"two columns would both be called {target!r}; fix --map")
            self.by_target[target] = (name, source[name])
        self.source_names = list(names)

    def take(self, column: str, role: str, *, required: bool = True) -> tuple[str, str] | None:
        """Remove and return the column playing ``role`` (by target, else source name)."""
        if column in self.by_target:
            return self.by_target.pop(column)
        for target, (src, sql_type) in list(self.by_target.items()):
            if src == column:
                del self.by_target[target]
                return src, sql_type
        if required:
            raise InvalidInput(
                f"the file has no {role} column {column!r} "
                f"(columns: {', '.join(self.source_names)}); name it with the {role} option "
                "or --map"
            )
        return None


def _id_expr(src: str, sql_type: str) -> str:
    """An id column as text; whole floats (pandas writes 13085.0) lose their ``.0``."""
    col = _q(src)
    upper = sql_type.upper()
    if upper in ("DOUBLE", "FLOAT") or upper.startswith("DECIMAL"):
        return (
            f"CASE WHEN {col} = trunc({col}) AND abs({col}) < 1e18 "
            f"THEN CAST(CAST({col} AS BIGINT) AS VARCHAR) ELSE CAST({col} AS VARCHAR) END"
        )
    return f"NULLIF(trim({_text(src, sql_type)}), '')"


def _text(src: str, sql_type: str) -> str:
    """A column as VARCHAR; JSON values (mixed-type JSON lines) without their quotes."""
    col = _q(src)
    if sql_type.upper() == "JSON":
        return f"json_extract_string({col}, '$')"
    return f"CAST({col} AS VARCHAR)"


def _time_expr(src: str, sql_type: str) -> str:
    """Any time column → naive UTC TIMESTAMP (NULL when it cannot be read).

    Naive values are in the connection's TimeZone (the import's ``timezone``); numbers are
    epoch milliseconds (13 digits) or seconds (10 digits), as the Sensors SDKs send them.
    """
    col = _q(src)
    upper = sql_type.upper()
    if _NUMERIC.match(upper):
        return (
            f"CASE WHEN {col} BETWEEN 1e12 AND 1e13 - 1 THEN epoch_ms(CAST({col} AS BIGINT)) "
            f"WHEN {col} BETWEEN 1e9 AND 1e10 - 1 THEN epoch_ms(CAST({col} * 1000 AS BIGINT)) "
            "END"
        )
    if upper == "JSON":
        return _time_expr_text(_text(src, sql_type))
    if upper == "VARCHAR":
        return _time_expr_text(col)
    if upper == "DATE" or upper.startswith("TIMESTAMP"):
        return f"timezone('UTC', TRY_CAST({col} AS TIMESTAMPTZ))"
    raise InvalidInput(f"the time column {src!r} has type {sql_type}, not a time")


def _time_expr_text(col: str) -> str:
    """Text → naive UTC: a date-time (offset or the connection's zone) or epoch digits."""
    return (
        f"coalesce(timezone('UTC', TRY_CAST({col} AS TIMESTAMPTZ)), "
        f"CASE WHEN regexp_full_match({col}, '[0-9]{{13}}') "
        f"THEN epoch_ms(CAST({col} AS BIGINT)) "
        f"WHEN regexp_full_match({col}, '[0-9]{{10}}') "
        f"THEN epoch_ms(CAST({col} AS BIGINT) * 1000) END)"
    )


def _value_expr(src: str, sql_type: str, target: PropertyType) -> tuple[str, bool]:
    """The SQL converting a source column to ``target``; True when the cast may fail."""
    col = _q(src)
    native = property_type_of(sql_type)
    if sql_type.upper() == "JSON":
        text = _text(src, sql_type)
        if target is PropertyType.STRING:
            return text, False
        if target is PropertyType.DATETIME:
            return _time_expr_text(text), True
        return f"TRY_CAST({text} AS {SQL_TYPES[target]})", True
    if target is PropertyType.DATETIME:
        if native is PropertyType.NUMBER:
            return _time_expr(src, sql_type), True
        return f"timezone('UTC', TRY_CAST({col} AS TIMESTAMPTZ))", native is not target
    if (
        target is PropertyType.STRING
        and native is PropertyType.NUMBER
        and _INTEGER.match(sql_type.upper())
    ):
        return f"CAST({col} AS VARCHAR)", False
    sql = SQL_TYPES[target]
    if native is target:
        return f"CAST({col} AS {sql})", False
    return f"TRY_CAST({col} AS {sql})", True


# -- identities ---------------------------------------------------------------------------------
class UserIds:
    """Distinct id → user id for one identity key, resolved in bulk and remembered.

    ``resolve`` maps a whole Arrow column at once: only the batch's distinct values that were
    not seen before reach ``identity.service.resolve_many`` (one call), the mapping itself is
    Arrow ``index_in`` + ``take``.
    """

    def __init__(self, project_id: int, key: str) -> None:
        self.project_id = project_id
        self.key = key
        self.known: dict[str, int] = {}

    def resolve(
        self, *, session: Session, values: pa.Array | pa.ChunkedArray, now: datetime
    ) -> pa.Array:
        """The int64 user id of each value (creating users for unknown values)."""
        unique = pc.unique(values)
        names: list[str] = unique.to_pylist()
        new = [v for v in names if v not in self.known]
        if new:
            found = identity.resolve_many(
                session=session, project_id=self.project_id, key=self.key, values=new, now=now
            )
            self.known.update(found)
        ids = pa.array([self.known[v] for v in names], type=pa.int64())
        return ids.take(pc.index_in(values, value_set=unique))


# -- Arrow-level writes (also used by the demo loader) --------------------------------------------
def event_table(
    *,
    ids: pa.Array,
    user_ids: pa.Array,
    distinct_ids: pa.Array,
    events: pa.Array,
    times: pa.Array,
    receive_time: datetime,
    properties: Mapping[str, pa.Array],
) -> pa.Table:
    """An Arrow table in the shape of ``p{project}_events``."""
    n = len(ids)
    receive = np.full(n, np.datetime64(utc_naive(receive_time), "us"))
    columns: dict[str, pa.Array] = {
        "id": _as(ids, pa.string()),
        "user_id": _as(user_ids, pa.int64()),
        "distinct_id": _as(distinct_ids, pa.string()),
        "event": _as(events, pa.string()),
        "time": _as(times, pa.timestamp("us")),
        "$receive_time": pa.array(receive, type=pa.timestamp("us")),
    }
    columns.update(properties)
    return pa.table(columns)


def _as(values: Any, dtype: pa.DataType) -> Any:
    return values if values.type == dtype else pc.cast(values, dtype)


def register_event_schema(
    *,
    session: Session,
    project_id: int,
    event_properties: Mapping[str, Sequence[str]],
    properties: Mapping[str, PropertyType],
) -> dict[str, PropertyType]:
    """Register event properties' types and which event names carry which properties.

    Returns the registered type of each property: one already known keeps its type (the caller
    converts values to it); a new one is registered as given.
    """
    registered = registered_types(
        session=session, project_id=project_id, kind=TableKind.EVENTS, wanted=properties
    )
    pairs = [(event, "") for event in event_properties]
    pairs += [(event, name) for event, names in event_properties.items() for name in names]
    profiles.register_event_properties(session=session, project_id=project_id, pairs=pairs)
    return registered


def registered_types(
    *, session: Session, project_id: int, kind: TableKind, wanted: Mapping[str, PropertyType]
) -> dict[str, PropertyType]:
    """The type each wanted property has in the schema registry, registering new ones.

    A property already registered keeps its registered type (values are converted to it and
    rows whose value does not convert are rejected); a new one is registered as ``wanted``.
    """
    known = profiles.load_schema(session=session, project_id=project_id)[kind]
    new = {name: ptype for name, ptype in wanted.items() if name not in known}
    if new:
        profiles.register_properties(
            session=session, project_id=project_id, kind=kind, properties=new
        )
    return {name: known.get(name, ptype) for name, ptype in wanted.items()}


def _json_values(ptype: PropertyType, values: pa.Array) -> list[Any]:
    """A column in the operational JSON form of ``profiles.service`` (DATE ISO, DATETIME …Z)."""
    items: list[Any] = values.to_pylist()
    if ptype is PropertyType.DATE:
        return [v.isoformat() if v is not None else None for v in items]
    if ptype is PropertyType.DATETIME:
        return [v.strftime(_ISO_UTC) if v is not None else None for v in items]
    return items


_ISO_UTC = "%Y-%m-%dT%H:%M:%S.%fZ"


def write_profiles(
    runtime: Runtime,
    *,
    session: Session,
    project_id: int,
    user_ids: pa.Array,
    properties: Mapping[str, pa.Array],
    types: Mapping[str, PropertyType],
    now: datetime,
) -> list[Callable[[], int]]:
    """``profile_set`` for many users: merge into the operational profiles, in bulk.

    Null values leave the property as it was; a user appearing twice gets both rows applied in
    order. Properties must already be registered (``types``). Returns the warehouse write
    (the users' whole merged profiles, replacing their rows) for the caller to run after
    committing.
    """
    ids: list[int] = user_ids.to_pylist()
    columns = {name: _json_values(types[name], values) for name, values in properties.items()}
    merged = profiles.load_profiles(session=session, project_id=project_id, user_ids=ids)
    for row, user_id in enumerate(ids):
        profile = merged.setdefault(user_id, {})
        for name, values in columns.items():
            value = values[row]
            if value is not None:
                profile[name] = value
    profiles.save_profiles(session=session, project_id=project_id, profiles=merged, now=now)
    schema = profiles.load_schema(session=session, project_id=project_id)[TableKind.USERS]
    table = _snapshot_table(
        merged, schema, key_columns={"user_id": pa.array(list(merged), pa.int64())}, now=now
    )
    return [_appender(runtime, project_id, TableKind.USERS, table, schema)]


def write_items(
    runtime: Runtime,
    *,
    session: Session,
    project_id: int,
    item_types: pa.Array,
    item_ids: pa.Array,
    properties: Mapping[str, pa.Array],
    types: Mapping[str, PropertyType],
    now: datetime,
) -> list[Callable[[], int]]:
    """``item_set`` for many items (each item's properties replaced; nulls left out).

    Properties must already be registered (``types``). Returns the warehouse write for the
    caller to run after committing.
    """
    keys = list(zip(item_types.to_pylist(), item_ids.to_pylist(), strict=True))
    columns = {name: _json_values(types[name], values) for name, values in properties.items()}
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for row, key in enumerate(keys):
        items[key] = {n: v[row] for n, v in columns.items() if v[row] is not None}
    profiles.save_items(session=session, project_id=project_id, items=items, now=now)
    schema = profiles.load_schema(session=session, project_id=project_id)[TableKind.ITEMS]
    table = _snapshot_table(
        items,
        schema,
        key_columns={
            "item_type": pa.array([t for t, _ in items], pa.string()),
            "item_id": pa.array([i for _, i in items], pa.string()),
            "$is_deleted": pa.array([False] * len(items), pa.bool_()),
        },
        now=now,
    )
    return [_appender(runtime, project_id, TableKind.ITEMS, table, schema)]


def _appender(
    runtime: Runtime,
    project_id: int,
    kind: TableKind,
    table: pa.Table,
    schema: Mapping[str, PropertyType],
) -> Callable[[], int]:
    """A deferred warehouse write of ``table`` (its property columns created first)."""
    used = {name: schema[name] for name in table.column_names if name in schema}

    def append() -> int:
        if used:
            runtime.warehouse.ensure_columns(project_id, kind, used)
        return runtime.warehouse.append(project_id, kind, table)

    return append


def _snapshot_table(
    rows: Mapping[Any, Mapping[str, Any]],
    types: Mapping[str, PropertyType],
    *,
    key_columns: Mapping[str, pa.Array],
    now: datetime,
) -> pa.Table:
    """Whole-row warehouse snapshots (users or items) from operational JSON values."""
    names = sorted({name for props in rows.values() for name in props if name in types})
    n = len(rows)
    columns: dict[str, pa.Array] = dict(key_columns)
    columns["$update_time"] = pa.array(
        np.full(n, np.datetime64(utc_naive(now), "us")), pa.timestamp("us")
    )
    for name in names:
        ptype = types[name]
        columns[name] = pa.array(
            [profiles.to_warehouse(ptype, props.get(name)) for props in rows.values()],
            type=ARROW_TYPES[ptype],
        )
    return pa.table(columns)


# -- the import job ------------------------------------------------------------------------------
def import_file(
    runtime: Runtime,
    *,
    project_id: int,
    path: Path,
    options: ImportOptions,
    progress: Progress | None = None,
    total: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import one file of events, profiles or items into ``project_id``.

    A job, not a service call: it commits one unit of work per batch (identities, profiles,
    rejections) and then appends the batch to the warehouse, so a large file never holds one
    huge transaction. ``total`` is called once with the number of rows, ``progress`` after each
    batch with the rows it held.

    Raises :class:`InvalidInput` before anything is written when the file cannot be read in
    its format, a named column is missing, a column name is not a valid property name or a
    column's type cannot be a property; and while reading when the file turns out malformed
    further on (batches before it stay imported).
    """
    started = _time.perf_counter()
    fmt = detect_format(path, options.file_format)
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    if options.batch_rows < 1:
        raise InvalidInput("batch_rows must be at least 1")
    con = _reader_connection(options.timezone)
    result = ImportResult()
    try:
        relation = _open_relation(con, path, fmt)
        columns = _Columns(relation.columns, [str(t) for t in relation.types], options.mapping)
        relation.create_view("src")
        plan = _plan(runtime, project_id=project_id, columns=columns, options=options)
        rows_total = _count(con, path, fmt)
        if total is not None:
            total(rows_total)
        sql, params = plan.sql()
        if options.kind == "events" and plan.properties:
            runtime.warehouse.ensure_columns(project_id, TableKind.EVENTS, plan.properties)
        writer = _BatchWriter(runtime, project_id=project_id, options=options, plan=plan)
        try:
            reader = con.sql(sql, params=params).to_arrow_reader(options.batch_rows)
        except duckdb.Error as exc:
            raise InvalidInput(f"cannot read {path.name} as {fmt}: {_first_line(exc)}") from exc
        for batch in _iter_batches(reader, path, fmt):
            writer.write(batch, result)
            if progress is not None:
                progress(batch.num_rows)
        result.users = len(writer.users.known) if writer.users else 0
    finally:
        con.close()
    result.seconds = _time.perf_counter() - started
    log.info(
        "bulk_import_finished",
        project_id=project_id,
        kind=options.kind,
        rows=result.rows,
        accepted=result.accepted,
        rejected=result.rejected,
        seconds=round(result.seconds, 3),
    )
    return result


def _reader_connection(timezone: str) -> duckdb.DuckDBPyConnection:
    if not _TZ_NAME.match(timezone):
        raise InvalidInput(f"unknown time zone {timezone!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {timezone!r}") from exc
    con = duckdb.connect(":memory:")
    # The zone name is checked against the tz database above; SET takes no parameters.
    con.execute(f"SET TimeZone = '{timezone}'")
    return con


def _open_relation(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: FileFormat
) -> duckdb.DuckDBPyRelation:
    try:
        if fmt == "csv":
            return con.read_csv(str(path), header=True)
        if fmt == "jsonl":
            return con.read_json(str(path), format="newline_delimited")
        return con.read_parquet(str(path))
    except duckdb.Error as exc:
        raise InvalidInput(f"cannot read {path.name} as {fmt}: {_first_line(exc)}") from exc


def _count(con: duckdb.DuckDBPyConnection, path: Path, fmt: FileFormat) -> int:
    try:
        rows = con.sql("SELECT count(*) FROM src").fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(f"cannot read {path.name} as {fmt}: {_first_line(exc)}") from exc
    return int(rows[0][0]) if rows else 0


def _iter_batches(reader: Any, path: Path, fmt: FileFormat) -> Iterator[pa.Table]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, duckdb.Error) as exc:
            raise InvalidInput(f"cannot read {path.name} as {fmt}: {_first_line(exc)}") from exc
        if batch.num_rows:
            yield pa.Table.from_batches([batch])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _table_kind(kind: ImportKind) -> TableKind:
    return {"events": TableKind.EVENTS, "profiles": TableKind.USERS, "items": TableKind.ITEMS}[kind]


def _plan(runtime: Runtime, *, project_id: int, columns: _Columns, options: ImportOptions) -> _Plan:
    """Role columns, property columns and row checks of one file, as one SELECT over ``src``."""
    plan = _Plan()
    if options.kind in ("events", "profiles"):
        src, sql_type = _required(columns.take(options.distinct_id_col, "--distinct-id-col"))
        plan.select.append((_id_expr(src, sql_type), "_did"))
        plan.checks.append(("_did IS NULL", "distinct_id is empty"))
        plan.checks.append(
            (f"length(_did) > {MAX_ID_CHARS}", f"distinct_id longer than {MAX_ID_CHARS}")
        )
    if options.kind == "events":
        if options.event_name is not None:
            if not is_valid_name(options.event_name):
                raise InvalidInput(f"{options.event_name!r} is not a valid event name")
            plan.select.append(("CAST(? AS VARCHAR)", "_event"))
            plan.params.append(options.event_name)
        else:
            src, sql_type = _required(columns.take(options.event_col, "--event-col"))
            plan.select.append((f"NULLIF(trim({_text(src, sql_type)}), '')", "_event"))
            plan.checks.append(("_event IS NULL", "event name is empty"))
            plan.checks.append(
                (
                    f"NOT regexp_full_match(_event, '{_NAME_SHAPE}')",
                    "event name is not a valid name (a letter, _ or $ then up to 99 letters, "
                    "digits, _ or $)",
                )
            )
        src, sql_type = _required(columns.take(options.time_col, "--time-col"))
        plan.select.append((_time_expr(src, sql_type), "_time"))
        plan.checks.append((f"{_q(src)} IS NULL", "time is empty"))
        plan.checks.append(
            ("_time IS NULL", "time is neither a date-time nor epoch seconds/milliseconds")
        )
    if options.kind == "items":
        if options.item_type is not None:
            if not is_valid_name(options.item_type):
                raise InvalidInput(f"{options.item_type!r} is not a valid item type")
            plan.select.append(("CAST(? AS VARCHAR)", "_item_type"))
            plan.params.append(options.item_type)
        else:
            src, sql_type = _required(columns.take(options.item_type_col, "--item-type-col"))
            plan.select.append((f"NULLIF(trim({_text(src, sql_type)}), '')", "_item_type"))
            plan.checks.append(("_item_type IS NULL", "item_type is empty"))
            plan.checks.append(
                (
                    f"NOT regexp_full_match(_item_type, '{_NAME_SHAPE}')",
                    "item_type is not a valid name (a letter, _ or $ then up to 99 letters, "
                    "digits, _ or $)",
                )
            )
        src, sql_type = _required(columns.take(options.item_id_col, "--item-id-col"))
        plan.select.append((_id_expr(src, sql_type), "_item_id"))
        plan.checks.append(("_item_id IS NULL", "item_id is empty"))
        plan.checks.append(
            (f"length(_item_id) > {MAX_ID_CHARS}", f"item_id longer than {MAX_ID_CHARS}")
        )

    # A column with no value at all (JSON ``null`` everywhere) sets nothing.
    for name, (_, sql_type) in list(columns.by_target.items()):
        if sql_type.upper() in ("NULL", '"NULL"'):
            del columns.by_target[name]
    bad_names = [name for name in columns.by_target if not is_valid_name(name)]
    if bad_names:
        raise InvalidInput(
            "these columns are not valid property names: "
            + ", ".join(map(repr, bad_names))
            + " (a letter, _ or $ then letters, digits, _ or $; reserved names such as id, "
            "time or event are refused): rename with --map 'SOURCE=name' or drop with "
            "--map 'SOURCE='"
        )
    native: dict[str, PropertyType] = {}
    for name, (src, sql_type) in columns.by_target.items():
        ptype = property_type_of(sql_type)
        if ptype is None:
            raise InvalidInput(
                f"column {src!r} has type {sql_type}, which cannot be a property "
                "(numbers, text, booleans, dates, times and lists of text can)"
            )
        native[name] = ptype
    kind = _table_kind(options.kind)
    types: dict[str, PropertyType] = {}
    if native:
        with runtime.db.unit_of_work() as session:
            types = registered_types(
                session=session, project_id=project_id, kind=kind, wanted=native
            )
    for index, (name, (src, sql_type)) in enumerate(columns.by_target.items()):
        alias = f"_p{index}"
        target = types[name]
        plan.aliases[alias] = name
        plan.properties[name] = target
        expr, may_fail = _value_expr(src, sql_type, target)
        plan.select.append((expr, alias))
        if may_fail:
            plan.checks.append(
                (
                    f"({_q(src)} IS NOT NULL AND {alias} IS NULL)",
                    f"property {name!r}: value is not a {target.value}",
                )
            )
        if target is PropertyType.STRING:
            plan.checks.append(
                (
                    f"length({alias}) > {MAX_STRING_CHARS}",
                    f"property {name!r}: longer than {MAX_STRING_CHARS} characters",
                )
            )
    return plan


def _required(column: tuple[str, str] | None) -> tuple[str, str]:
    assert column is not None  # take(..., required=True) raises instead
    return column


class _BatchWriter:
    """Writes the batches of one import: rejections, identities, profiles, warehouse rows."""

    def __init__(
        self, runtime: Runtime, *, project_id: int, options: ImportOptions, plan: _Plan
    ) -> None:
        self.runtime = runtime
        self.project_id = project_id
        self.options = options
        self.plan = plan
        self.kind = _table_kind(options.kind)
        self.users = UserIds(project_id, options.identity_key) if options.kind != "items" else None
        self.import_id = uuid.uuid4().hex[:12]
        self.offset = 0
        self.events_seen: set[str] = set()

    def write(self, batch: pa.Table, result: ImportResult) -> None:
        n = batch.num_rows
        rows = pa.array(np.arange(self.offset + 1, self.offset + n + 1, dtype=np.int64))
        self.offset += n
        reason = self._name_checks(batch)
        bad = pc.is_valid(reason)
        rejected = batch.filter(bad)
        kept_rows = rows.filter(bad)
        good = batch.filter(pc.invert(bad))
        good_rows = rows.filter(pc.invert(bad))
        rejections = self._rejections(rejected, reason.filter(bad), kept_rows, result)
        now = self.runtime.clock()
        with self.runtime.db.unit_of_work() as session:
            if rejections:
                ingest_service.record_rejections(
                    session=session,
                    project_id=self.project_id,
                    source=SOURCE,
                    rejections=rejections,
                    rejected_at=now,
                )
            pending = self._prepare(session, good, good_rows, now)
        # The unit of work (identities, profiles, rejections) commits first: a warehouse
        # failure then leaves users without events, never events without users.
        written = sum(append() for append in pending)
        result.rows += n
        result.accepted += written
        result.rejected += rejected.num_rows

    def _name_checks(self, batch: pa.Table) -> pa.Array:
        """Row reasons, plus invalid event names / item types (checked once per distinct name)."""
        reason = batch.column("_reason").combine_chunks()
        for column, what in (("_event", "event name"), ("_item_type", "item_type")):
            if column not in batch.column_names:
                continue
            values = batch.column(column)
            names = [n for n in pc.unique(values).to_pylist() if n is not None]
            invalid = [n for n in names if not is_valid_name(n)]
            if invalid:
                hit = pc.and_(pc.is_null(reason), pc.is_in(values, value_set=pa.array(invalid)))
                reason = pc.if_else(hit, f"{what} is a reserved name", reason)
        return reason

    def _rejections(
        self, rejected: pa.Table, reasons: pa.Array, rows: pa.Array, result: ImportResult
    ) -> list[tuple[str, str]]:
        if rejected.num_rows == 0:
            return []
        texts: list[str] = reasons.to_pylist()
        result.reasons.update(texts)
        raws: list[str | None] = rejected.column("_raw").to_pylist()
        if any(raw is None for raw in raws):  # rejected after reading: a reserved name
            names = [c for c in ("_did", "_event", "_item_type", "_item_id") if c in rejected]
            shown = rejected.select(names).to_pylist()
            raws = [
                raw if raw is not None else orjson.dumps(row, default=str).decode()
                for raw, row in zip(raws, shown, strict=True)
            ]
        numbers: list[int] = rows.to_pylist()
        return [
            (f"row {row}: {text}", raw or "")
            for row, text, raw in zip(numbers, texts, raws, strict=True)
        ]

    def _properties(self, good: pa.Table) -> dict[str, pa.Array]:
        return {
            name: _as(good.column(alias).combine_chunks(), ARROW_TYPES[self.plan.properties[name]])
            for alias, name in self.plan.aliases.items()
        }

    def _prepare(
        self, session: Session, good: pa.Table, rows: pa.Array, now: datetime
    ) -> list[Callable[[], int]]:
        """Operational writes of the good rows; returns the warehouse writes to run after."""
        if good.num_rows == 0:
            return []
        if self.kind is TableKind.ITEMS:
            return write_items(
                self.runtime,
                session=session,
                project_id=self.project_id,
                item_types=good.column("_item_type").combine_chunks(),
                item_ids=good.column("_item_id").combine_chunks(),
                properties=self._properties(good),
                types=self.plan.properties,
                now=now,
            )
        assert self.users is not None
        distinct_ids = good.column("_did").combine_chunks()
        user_ids = self.users.resolve(session=session, values=distinct_ids, now=now)
        if self.kind is TableKind.USERS:
            return write_profiles(
                self.runtime,
                session=session,
                project_id=self.project_id,
                user_ids=user_ids,
                properties=self._properties(good),
                types=self.plan.properties,
                now=now,
            )
        events = good.column("_event").combine_chunks()
        new_events = [e for e in pc.unique(events).to_pylist() if e not in self.events_seen]
        if new_events:
            register_event_schema(
                session=session,
                project_id=self.project_id,
                event_properties={event: list(self.plan.properties) for event in new_events},
                properties=self.plan.properties,
            )
            self.events_seen.update(new_events)
        ids = pc.binary_join_element_wise(f"imp-{self.import_id}", pc.cast(rows, pa.string()), "-")
        table = event_table(
            ids=ids,
            user_ids=user_ids,
            distinct_ids=distinct_ids,
            events=events,
            times=good.column("_time").combine_chunks(),
            receive_time=now,
            properties=self._properties(good),
        )
        warehouse, project_id = self.runtime.warehouse, self.project_id
        return [lambda: warehouse.append(project_id, TableKind.EVENTS, table)]
