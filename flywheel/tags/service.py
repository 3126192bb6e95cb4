"""Tags (全域标签): definitions, runs that write dated versions, values, lineage, real time.

Every run of a tag writes one version into the warehouse table ``p{project}_tag_values``
(``tag, user_id, value, day, computed_at``) for ``day`` = the run's date in Asia/Shanghai; a rerun
on the same day replaces that day's version. "The value on day D" is the latest version at or
before D; versions older than :data:`RETENTION_DAYS` are dropped. Values are text; metric tags
hold bucket labels, first/last dates are ISO dates in Asia/Shanghai.

Value queries are DuckDB SQL built from SQLGlot expressions (rule, metric, first/last,
preference, RFM: the same compiler as segments); user values are bound parameters.
"""

from __future__ import annotations

import csv
import io
import time as monotonic
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlglot import exp, parse
from sqlglot.errors import ParseError

from flywheel.core.clock import SHANGHAI, to_utc, utc_naive
from flywheel.core.errors import Conflict, FlywheelError, InvalidInput, NotFound
from flywheel.rules.compiler import (
    Compiled,
    RuleBuilder,
    RuleContext,
    Tables,
    window_bounds,
)
from flywheel.rules.compiler import aggregate as aggregate_expression
from flywheel.rules.schema import InvalidRule, RuleGroup, error_path, referenced_tags
from flywheel.tags.models import Lineage, TagDefinition, TagRun
from flywheel.tags.schemas import (
    SPECS,
    FirstLastTagSpec,
    ImportOut,
    LineageOut,
    MetricTagSpec,
    PreferenceTagSpec,
    RealtimeTagSpec,
    RfmTagSpec,
    RuleTagSpec,
    SqlTagSpec,
    TagDistribution,
    TagHistoryPoint,
    TagIn,
    TagOut,
    TagPreviewOut,
    TagRunOut,
    TagUpdate,
    ValueCount,
)
from flywheel.warehouse import TableKind, Warehouse
from flywheel.warehouse.engine import quote_ident

log = structlog.get_logger(__name__)

RETENTION_DAYS = 90
MAX_IMPORT_ROWS = 5_000_000
SQL_VIEWS = ("users", "events", "items", "tag_values")
_DENIED_FUNCTIONS = (
    "read_",
    "glob",
    "getenv",
    "current_setting",
    "query",
    "sniff",
    "parquet_",
    "duckdb_",
    "pragma_",
    "iceberg",
    "delta_scan",
    "postgres_",
    "sqlite_",
    "mysql_",
    "httpfs",
)


# -- definitions ----------------------------------------------------------------------------


def validate_spec(kind: str, spec: dict[str, Any]) -> BaseModel:
    """The typed spec of a tag kind; :class:`InvalidRule` naming the bad part (``spec.…``)."""
    model = SPECS.get(kind)
    if model is None:
        raise InvalidRule(f"kind: unknown tag kind {kind!r}", detail={"path": "kind"})
    try:
        return model.model_validate(spec)
    except ValidationError as exc:
        errors = [
            {"path": "spec." + error_path(tuple(e["loc"])), "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0]
        raise InvalidRule(
            f"{first['path']}: {first['message']}",
            detail={"path": first["path"], "errors": errors},
        ) from None


def _rules_of(spec: BaseModel) -> list[RuleGroup]:
    if isinstance(spec, RuleTagSpec):
        return [v.rule for v in spec.values]
    return []


def _get(session: Session, project_id: int, tag_id: int) -> TagDefinition:
    tag = session.get(TagDefinition, tag_id)
    if tag is None or tag.project_id != project_id:
        raise NotFound(f"unknown tag {tag_id}")
    return tag


def get_by_name(*, session: Session, project_id: int, name: str) -> TagOut:
    """The tag called ``name``; :class:`NotFound` otherwise."""
    tag = session.scalar(
        select(TagDefinition).where(
            TagDefinition.project_id == project_id, TagDefinition.name == name
        )
    )
    if tag is None:
        raise NotFound(f"unknown tag {name!r}")
    return TagOut.model_validate(tag)


def create_tag(
    *, session: Session, project_id: int, tag_in: TagIn, actor: str, now: datetime
) -> TagOut:
    """Create a tag definition (validated spec, lineage recorded). :class:`Conflict` when the
    name is taken; :class:`InvalidRule` when the spec is wrong."""
    spec = validate_spec(tag_in.kind, tag_in.spec)
    exists = session.scalar(
        select(TagDefinition.id).where(
            TagDefinition.project_id == project_id, TagDefinition.name == tag_in.name
        )
    )
    if exists is not None:
        raise Conflict(f"tag {tag_in.name!r} already exists")
    tag = TagDefinition(
        project_id=project_id,
        name=tag_in.name,
        display_name=tag_in.display_name or tag_in.name,
        description=tag_in.description,
        kind=tag_in.kind,
        spec=spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        schedule="manual" if tag_in.kind in {"imported", "realtime"} else tag_in.schedule,
        created_by=actor,
        created_at=utc_naive(now),
        updated_at=utc_naive(now),
    )
    session.add(tag)
    session.flush()
    set_lineage(
        session=session,
        project_id=project_id,
        source_kind="tag",
        source_id=tag.id,
        rules=_rules_of(spec),
    )
    log.info("tag_created", tag_id=tag.id, kind=tag.kind, project_id=project_id)
    return TagOut.model_validate(tag)


def list_tags(*, session: Session, project_id: int) -> list[TagOut]:
    """Every tag of the project, by name."""
    rows = session.scalars(
        select(TagDefinition)
        .where(TagDefinition.project_id == project_id)
        .order_by(TagDefinition.name)
    )
    return [TagOut.model_validate(t) for t in rows]


def get_tag(*, session: Session, project_id: int, tag_id: int) -> TagOut:
    """One tag; :class:`NotFound` when it is not in the project."""
    return TagOut.model_validate(_get(session, project_id, tag_id))


def update_tag(
    *, session: Session, project_id: int, tag_id: int, update: TagUpdate, now: datetime
) -> TagOut:
    """Change a tag's texts, spec, schedule or enabled flag (the kind and name are fixed)."""
    tag = _get(session, project_id, tag_id)
    if update.spec is not None:
        spec = validate_spec(tag.kind, update.spec)
        tag.spec = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        set_lineage(
            session=session,
            project_id=project_id,
            source_kind="tag",
            source_id=tag.id,
            rules=_rules_of(spec),
        )
    if update.display_name is not None:
        tag.display_name = update.display_name
    if update.description is not None:
        tag.description = update.description
    if update.schedule is not None and tag.kind not in {"imported", "realtime"}:
        tag.schedule = update.schedule
    if update.enabled is not None:
        tag.enabled = update.enabled
    tag.updated_at = utc_naive(now)
    session.flush()
    return TagOut.model_validate(tag)


def delete_tag(*, session: Session, warehouse: Warehouse, project_id: int, tag_id: int) -> None:
    """Delete a tag and its values. :class:`Conflict` while a tag or segment reads it."""
    tag = _get(session, project_id, tag_id)
    users = session.scalars(
        select(Lineage).where(
            Lineage.project_id == project_id,
            Lineage.depends_kind == "tag",
            Lineage.depends_on == tag.name,
        )
    ).all()
    if users:
        names = ", ".join(f"{u.source_kind} {u.source_id}" for u in users)
        raise Conflict(f"tag {tag.name!r} is used by {names}")
    session.execute(
        delete(Lineage).where(
            Lineage.project_id == project_id,
            Lineage.source_kind == "tag",
            Lineage.source_id == tag.id,
        )
    )
    session.delete(tag)
    session.flush()
    warehouse.ensure_project(project_id)
    warehouse.cursor().execute(
        f"DELETE FROM {quote_ident(Tables.for_project(project_id).tag_values)} WHERE tag = $tag",
        {"tag": tag.name},
    )


# -- lineage --------------------------------------------------------------------------------


def set_lineage(
    *,
    session: Session,
    project_id: int,
    source_kind: str,
    source_id: int,
    rules: Sequence[RuleGroup],
) -> None:
    """Replace what ``(source_kind, source_id)`` depends on with the references in ``rules``."""
    from flywheel.rules.schema import referenced_segments

    session.execute(
        delete(Lineage).where(
            Lineage.project_id == project_id,
            Lineage.source_kind == source_kind,
            Lineage.source_id == source_id,
        )
    )
    edges: set[tuple[str, str]] = set()
    for rule in rules:
        edges |= {("tag", name) for name in referenced_tags(rule)}
        edges |= {("segment", str(sid)) for sid in referenced_segments(rule)}
    for kind, target in sorted(edges):
        session.add(
            Lineage(
                project_id=project_id,
                source_kind=source_kind,
                source_id=source_id,
                depends_kind=kind,
                depends_on=target,
            )
        )
    session.flush()


def lineage(
    *, session: Session, project_id: int, kind: str, key: str, source_id: int
) -> LineageOut:
    """What ``(kind, source_id)`` reads, and what reads it (``key``: tag name or segment id)."""
    reads = session.scalars(
        select(Lineage).where(
            Lineage.project_id == project_id,
            Lineage.source_kind == kind,
            Lineage.source_id == source_id,
        )
    ).all()
    readers = session.scalars(
        select(Lineage).where(
            Lineage.project_id == project_id,
            Lineage.depends_kind == kind,
            Lineage.depends_on == key,
        )
    ).all()
    return LineageOut(
        depends_on=[{"kind": r.depends_kind, "ref": r.depends_on} for r in reads],
        used_by=[{"kind": r.source_kind, "ref": str(r.source_id)} for r in readers],
    )


# -- computing values -----------------------------------------------------------------------


def rule_context(
    warehouse: Warehouse,
    project_id: int,
    now: datetime,
    resolve_segment: Callable[[int], RuleGroup | None] | None = None,
) -> RuleContext:
    """The compile context of a project: current warehouse schema and ``now``."""
    warehouse.ensure_project(project_id)
    return RuleContext(
        tables=Tables.for_project(project_id),
        users_columns=warehouse.columns(project_id, TableKind.USERS),
        events_columns=warehouse.columns(project_id, TableKind.EVENTS),
        now=now,
        resolve_segment=resolve_segment,
    )


def _table(name: str, alias: str) -> exp.Expr:
    return exp.to_table(quote_ident(name)).as_(alias, quoted=True)


def _col(name: str, table: str) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _as_text(expression: exp.Expr) -> exp.Expr:
    return exp.cast(expression, exp.DataType.build("VARCHAR"))


def _measure_select(
    builder: RuleBuilder,
    ctx: RuleContext,
    *,
    event: str | None,
    window: Any,
    filters: Any,
    path: str,
    columns: list[exp.Expr],
) -> exp.Select:
    alias = "e"
    where: list[exp.Expr] = []
    if window is not None:
        start, end = window_bounds(window, ctx.now)
        where = builder.event_scan(
            alias,
            event,
            builder.bind(start, "timestamp"),
            builder.bind(end, "timestamp"),
            filters,
            path,
        )
    else:
        end = utc_naive(ctx.now) + timedelta(microseconds=1)
        where = builder.event_scan(
            alias, event, None, builder.bind(end, "timestamp"), filters, path
        )
    return (
        exp.select(exp.alias_(_col("user_id", alias), "user_id", quoted=True), *columns)
        .from_(_table(ctx.tables.events, alias))
        .where(*where)
        .group_by(_col("user_id", alias))
    )


def _event_column(ctx: RuleContext, builder: RuleBuilder, name: str, path: str) -> exp.Expr:
    if name not in ctx.events_columns:
        builder.warnings.append(f"{path}: event property {name!r} does not exist yet")
        return exp.null()
    return _col(name, "e")


def value_query(kind: str, spec: BaseModel, ctx: RuleContext) -> Compiled:
    """The query ``SELECT user_id, value`` that computes a tag (not for imported tags)."""
    builder = RuleBuilder(ctx)
    tree: exp.Expr
    if isinstance(spec, RuleTagSpec):
        case = exp.Case()
        for index, item in enumerate(spec.values):
            predicate = builder.group(item.rule, f"spec.values[{index}].rule.")
            case = case.when(predicate, builder.bind(item.value, "string"))
        inner = exp.select(
            exp.alias_(_col("user_id", "u"), "user_id", quoted=True),
            exp.alias_(case, "value", quoted=True),
        ).from_(_table(ctx.tables.users, "u"))
        tree = (
            exp.select(_col("user_id", "t"), _col("value", "t"))
            .from_(inner.subquery("t"))
            .where(exp.Not(this=exp.Is(this=_col("value", "t"), expression=exp.null())))
        )
    elif isinstance(spec, MetricTagSpec):
        tree = _metric_query(builder, ctx, spec)
    elif isinstance(spec, FirstLastTagSpec):
        tree = _first_last_query(builder, ctx, spec)
    elif isinstance(spec, PreferenceTagSpec):
        tree = _preference_query(builder, ctx, spec)
    elif isinstance(spec, RfmTagSpec):
        tree = _rfm_query(builder, ctx, spec)
    elif isinstance(spec, RealtimeTagSpec):
        tree = realtime_query(builder, ctx, spec, users=None)
    elif isinstance(spec, SqlTagSpec):
        tree = sandboxed_sql(spec.query, ctx.tables, ctx.tables.users.rsplit("_", 1)[0])
    else:
        raise InvalidInput(f"tags of kind {kind!r} are not computed by a query")
    return Compiled(
        tree=tree, params=builder.params, kinds=builder.kinds, warnings=builder.warnings
    )


def _metric_query(builder: RuleBuilder, ctx: RuleContext, spec: MetricTagSpec) -> exp.Expr:
    measure = spec.measure
    if measure.property is not None and measure.property not in ctx.events_columns:
        builder.warnings.append(
            f"spec.measure.property: event property {measure.property!r} does not exist yet"
        )
        aggregate: exp.Expr = exp.null()
    else:
        aggregate = aggregate_expression(measure, "e")
    per_user = _measure_select(
        builder,
        ctx,
        event=measure.event,
        window=spec.window,
        filters=spec.filters,
        path="spec",
        columns=[exp.alias_(aggregate, "metric", quoted=True)],
    )
    if measure.aggregator in {"count", "distinct_count", "sum"}:
        base = (
            exp.select(
                exp.alias_(_col("user_id", "u"), "user_id", quoted=True),
                exp.alias_(
                    exp.Coalesce(this=_col("metric", "m"), expressions=[exp.Literal.number(0)]),
                    "metric",
                    quoted=True,
                ),
            )
            .from_(_table(ctx.tables.users, "u"))
            .join(
                per_user.subquery("m"),
                on=exp.EQ(this=_col("user_id", "u"), expression=_col("user_id", "m")),
                join_type="left",
            )
        )
    else:
        base = per_user
    metric = _col("metric", "b")
    if spec.buckets is not None:
        case = exp.Case()
        for bucket in spec.buckets:
            conds: list[exp.Expr] = []
            if bucket.min is not None:
                conds.append(exp.GTE(this=metric, expression=builder.bind(bucket.min, "number")))
            if bucket.max is not None:
                conds.append(exp.LT(this=metric, expression=builder.bind(bucket.max, "number")))
            case = case.when(
                exp.and_(*conds) if conds else exp.true(), builder.bind(bucket.value, "string")
            )
        value: exp.Expr = case
        where: exp.Expr = exp.Not(this=exp.Is(this=metric, expression=exp.null()))
    else:
        ntile = exp.Window(
            this=exp.Anonymous(this="NTILE", expressions=[exp.Literal.number(spec.quantiles or 4)]),
            order=exp.Order(
                expressions=[exp.Ordered(this=metric), exp.Ordered(this=_col("user_id", "b"))]
            ),
        )
        value = exp.DPipe(this=exp.Literal.string("Q"), expression=_as_text(ntile))
        where = exp.Not(this=exp.Is(this=metric, expression=exp.null()))
    inner = (
        exp.select(
            exp.alias_(_col("user_id", "b"), "user_id", quoted=True),
            exp.alias_(value, "value", quoted=True),
        )
        .from_(base.subquery("b"))
        .where(where)
    )
    return (
        exp.select(_col("user_id", "t"), _col("value", "t"))
        .from_(inner.subquery("t"))
        .where(exp.Not(this=exp.Is(this=_col("value", "t"), expression=exp.null())))
    )


def _sh_date(column: exp.Expr) -> exp.Expr:
    # Asia/Shanghai has no daylight saving: local date = date of UTC + 8 hours.
    shifted = exp.Add(
        this=column, expression=exp.Interval(this=exp.Literal.number(8), unit=exp.Var(this="HOUR"))
    )
    return exp.cast(shifted, exp.DataType.build("DATE"))


def _first_last_query(builder: RuleBuilder, ctx: RuleContext, spec: FirstLastTagSpec) -> exp.Expr:
    moment = (exp.Min if spec.which == "first" else exp.Max)(this=_col("time", "e"))
    if spec.output == "property":
        column = _event_column(ctx, builder, spec.property or "", "spec.property")
        picker = exp.ArgMin if spec.which == "first" else exp.ArgMax
        value: exp.Expr = _as_text(picker(this=column, expression=_col("time", "e")))
    elif spec.output == "time":
        value = _as_text(moment)
    elif spec.output == "date":
        value = _as_text(_sh_date(moment))
    else:
        today = builder.bind(to_utc(ctx.now).astimezone(SHANGHAI).date(), "date")
        value = _as_text(
            exp.DateDiff(this=today, expression=_sh_date(moment), unit=exp.Var(this="DAY"))
        )
    per_user = _measure_select(
        builder,
        ctx,
        event=spec.event,
        window=spec.window,
        filters=spec.filters,
        path="spec",
        columns=[exp.alias_(value, "value", quoted=True)],
    )
    return (
        exp.select(_col("user_id", "t"), _col("value", "t"))
        .from_(per_user.subquery("t"))
        .where(exp.Not(this=exp.Is(this=_col("value", "t"), expression=exp.null())))
    )


def _preference_query(builder: RuleBuilder, ctx: RuleContext, spec: PreferenceTagSpec) -> exp.Expr:
    column = _event_column(ctx, builder, spec.property, "spec.property")
    weight: exp.Expr = exp.Count(this=exp.Star())
    if spec.weight_property is not None:
        weight = exp.Sum(
            this=_event_column(ctx, builder, spec.weight_property, "spec.weight_property")
        )
    start, end = window_bounds(spec.window, ctx.now)
    where = builder.event_scan(
        "e",
        spec.event,
        builder.bind(start, "timestamp"),
        builder.bind(end, "timestamp"),
        spec.filters,
        "spec",
    )
    where.append(exp.Not(this=exp.Is(this=column, expression=exp.null())))
    counts = (
        exp.select(
            exp.alias_(_col("user_id", "e"), "user_id", quoted=True),
            exp.alias_(_as_text(column), "choice", quoted=True),
            exp.alias_(weight, "weight", quoted=True),
        )
        .from_(_table(ctx.tables.events, "e"))
        .where(*where)
        .group_by(_col("user_id", "e"), column)
    )
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[_col("user_id", "c")],
        order=exp.Order(
            expressions=[
                exp.Ordered(this=_col("weight", "c"), desc=True),
                exp.Ordered(this=_col("choice", "c")),
            ]
        ),
    )
    ranked = exp.select(
        _col("user_id", "c"),
        _col("choice", "c"),
        exp.alias_(rank, "rank", quoted=True),
    ).from_(counts.subquery("c"))

    # Top values in rank order, joined by commas; portable (no ordered string aggregate).
    def ranked_choice(k: int) -> exp.Expr:
        return exp.Max(
            this=exp.Case().when(
                exp.EQ(this=_col("rank", "r"), expression=exp.Literal.number(k)),
                _col("choice", "r"),
            )
        )

    joined: exp.Expr = ranked_choice(1)
    for k in range(2, spec.top_n + 1):
        joined = exp.DPipe(
            this=joined,
            expression=exp.Case()
            .when(exp.Is(this=ranked_choice(k), expression=exp.null()), exp.Literal.string(""))
            .else_(exp.DPipe(this=exp.Literal.string(","), expression=ranked_choice(k))),
        )
    return (
        exp.select(
            exp.alias_(_col("user_id", "r"), "user_id", quoted=True),
            exp.alias_(joined, "value", quoted=True),
        )
        .from_(ranked.subquery("r"))
        .where(exp.LTE(this=_col("rank", "r"), expression=exp.Literal.number(spec.top_n)))
        .group_by(_col("user_id", "r"))
    )


def _rfm_query(builder: RuleBuilder, ctx: RuleContext, spec: RfmTagSpec) -> exp.Expr:
    money = _event_column(ctx, builder, spec.monetary_property, "spec.monetary_property")
    per_user = _measure_select(
        builder,
        ctx,
        event=spec.event,
        window=spec.window,
        filters=None,
        path="spec",
        columns=[
            exp.alias_(exp.Max(this=_col("time", "e")), "recency", quoted=True),
            exp.alias_(exp.Count(this=exp.Star()), "frequency", quoted=True),
            exp.alias_(
                exp.Coalesce(this=exp.Sum(this=money), expressions=[exp.Literal.number(0)]),
                "monetary",
                quoted=True,
            ),
        ],
    )

    def score(name: str) -> exp.Expr:
        return _as_text(
            exp.Window(
                this=exp.Anonymous(this="NTILE", expressions=[exp.Literal.number(5)]),
                order=exp.Order(
                    expressions=[
                        exp.Ordered(this=_col(name, "m")),
                        exp.Ordered(this=_col("user_id", "m")),
                    ]
                ),
            )
        )

    value = exp.DPipe(
        this=exp.DPipe(
            this=exp.DPipe(
                this=exp.DPipe(
                    this=exp.DPipe(this=exp.Literal.string("R"), expression=score("recency")),
                    expression=exp.Literal.string("F"),
                ),
                expression=score("frequency"),
            ),
            expression=exp.Literal.string("M"),
        ),
        expression=score("monetary"),
    )
    return exp.select(
        exp.alias_(_col("user_id", "m"), "user_id", quoted=True),
        exp.alias_(value, "value", quoted=True),
    ).from_(per_user.subquery("m"))


def realtime_query(
    builder: RuleBuilder, ctx: RuleContext, spec: RealtimeTagSpec, users: str | None
) -> exp.Expr:
    """Values of a real-time tag, for every user with events or only those in table ``users``."""
    end = utc_naive(ctx.now) + timedelta(microseconds=1)
    where = builder.event_scan(
        "e", spec.event, None, builder.bind(end, "timestamp"), spec.filters, "spec"
    )
    if spec.mode == "window_count":
        start = end - timedelta(minutes=spec.window_minutes or 1)
        where.append(exp.GTE(this=_col("time", "e"), expression=builder.bind(start, "timestamp")))
        value: exp.Expr = _as_text(exp.Count(this=exp.Star()))
    else:
        column = _event_column(ctx, builder, spec.property or "", "spec.property")
        where.append(exp.Not(this=exp.Is(this=column, expression=exp.null())))
        value = _as_text(exp.ArgMax(this=column, expression=_col("time", "e")))
    if users is not None:
        where.append(
            exp.In(
                this=_col("user_id", "e"),
                query=exp.select(exp.column("user_id")).from_(exp.to_table(users)).subquery(),
            )
        )
    return (
        exp.select(
            exp.alias_(_col("user_id", "e"), "user_id", quoted=True),
            exp.alias_(value, "value", quoted=True),
        )
        .from_(_table(ctx.tables.events, "e"))
        .where(*where)
        .group_by(_col("user_id", "e"))
    )


def sandboxed_sql(query: str, tables: Tables, prefix: str) -> exp.Expr:
    """A user's SQL tag query, checked and rewritten to read only the project's views.

    Only one ``SELECT`` (``UNION``s and CTEs allowed); tables may be only ``users``, ``events``,
    ``items`` and ``tag_values`` (mapped to the project's tables); no table functions, no file,
    network or settings functions. The result is ``user_id, value`` (value cast to text).
    """
    try:
        statements = [s for s in parse(query, read="duckdb") if s is not None]
    except ParseError as exc:
        raise InvalidRule(
            f"spec.query: not valid SQL ({exc.errors[0]['description'] if exc.errors else exc})",
            detail={"path": "spec.query"},
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise InvalidRule(
            "spec.query: give exactly one SELECT statement", detail={"path": "spec.query"}
        )
    tree = statements[0]
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    mapping = {
        "users": tables.users,
        "events": tables.events,
        "items": f"{prefix}_items",
        "tag_values": tables.tag_values,
    }
    for node in tree.walk():
        if isinstance(node, exp.Table):
            if (
                not isinstance(node.this, exp.Identifier)
                or node.args.get("db")
                or node.args.get("catalog")
            ):
                raise InvalidRule(
                    "spec.query: only the views users, events, items, tag_values may be read",
                    detail={"path": "spec.query"},
                )
            name = node.name
            if name in ctes:
                continue
            if name not in mapping:
                raise InvalidRule(
                    f"spec.query: unknown view {name!r}; use {', '.join(SQL_VIEWS)}",
                    detail={"path": "spec.query"},
                )
            alias = node.alias or name
            node.replace(exp.to_table(quote_ident(mapping[name])).as_(alias, quoted=True))
        elif isinstance(node, exp.Func):
            fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if fname.startswith(_DENIED_FUNCTIONS) or isinstance(
                node, exp.ReadCSV | exp.ReadParquet
            ):
                raise InvalidRule(
                    f"spec.query: function {fname} is not allowed in a SQL tag",
                    detail={"path": "spec.query"},
                )
        elif isinstance(node, exp.Command | exp.Pragma | exp.Set | exp.Copy | exp.Attach):
            raise InvalidRule("spec.query: only SELECT is allowed", detail={"path": "spec.query"})
    names = tree.named_selects
    if "user_id" not in names or "value" not in names:
        raise InvalidRule(
            "spec.query: select columns named user_id and value", detail={"path": "spec.query"}
        )
    return (
        exp.select(
            exp.alias_(
                exp.cast(_col("user_id", "q"), exp.DataType.build("BIGINT")), "user_id", quoted=True
            ),
            exp.alias_(_as_text(_col("value", "q")), "value", quoted=True),
        )
        .from_(tree.subquery("q"))
        .where(exp.Not(this=exp.Is(this=_col("user_id", "q"), expression=exp.null())))
    )


def _write_version(
    warehouse: Warehouse,
    project_id: int,
    tag: str,
    day: date,
    now: datetime,
    compiled: Compiled | None,
    batch: pa.Table | None = None,
) -> int:
    table = quote_ident(Tables.for_project(project_id).tag_values)
    cur = warehouse.cursor()
    keys = {"wtag": tag, "wday": day}
    cur.execute("BEGIN")
    try:
        cur.execute(f"DELETE FROM {table} WHERE tag = $wtag AND day = $wday", keys)
        cur.execute(
            f"DELETE FROM {table} WHERE tag = $wtag AND day < $cutoff",
            {"wtag": tag, "cutoff": day - timedelta(days=RETENTION_DAYS)},
        )
        params = {**keys, "wnow": utc_naive(now)}
        if compiled is not None:
            sql, bound = compiled.bound("duckdb")
            count = cur.execute(
                f"INSERT INTO {table} SELECT $wtag, q.user_id, q.value, $wday, $wnow "
                f"FROM ({sql}) q",
                {**bound, **params},
            ).fetchone()
        else:
            cur.register("_fw_tag_batch", batch)
            count = cur.execute(
                f"INSERT INTO {table} SELECT $wtag, b.user_id, b.value, $wday, $wnow "
                "FROM _fw_tag_batch b",
                params,
            ).fetchone()
            cur.unregister("_fw_tag_batch")
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return int(count[0]) if count else 0


def sh_today(now: datetime) -> date:
    """The calendar date of ``now`` in Asia/Shanghai (the version day of a run)."""
    return to_utc(now).astimezone(SHANGHAI).date()


def run_tag(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    tag_id: int,
    now: datetime,
    trigger: str = "manual",
) -> TagRunOut:
    """Compute a tag now and store it as the version of today (Asia/Shanghai).

    A failure (bad spec for the current schema, SQL error) is recorded as a failed run and
    returned, not raised, so a scheduler goes on with the next tag. Imported tags are not
    recomputed: their run reports the size of the latest upload.
    """
    tag = _get(session, project_id, tag_id)
    started = monotonic.perf_counter()
    day = sh_today(now)
    status, error, users = "ok", "", 0
    try:
        if tag.kind == "imported":
            users = _latest_size(warehouse, project_id, tag.name)
        else:
            spec = validate_spec(tag.kind, tag.spec)
            compiled = value_query(tag.kind, spec, rule_context(warehouse, project_id, now))
            users = _write_version(warehouse, project_id, tag.name, day, now, compiled)
    except (FlywheelError, duckdb.Error) as exc:
        status, error = "failed", getattr(exc, "message", str(exc))[:2000]
    seconds = monotonic.perf_counter() - started
    run = TagRun(
        project_id=project_id,
        tag_id=tag.id,
        day=day,
        started_at=utc_naive(now),
        seconds=seconds,
        status=status,
        users=users,
        error=error,
        trigger=trigger,
    )
    session.add(run)
    if status == "ok":
        tag.last_run_at = utc_naive(now)
        tag.last_run_day = day
    session.flush()
    if status == "ok":
        log.info("tag_computed", tag_id=tag.id, users=users, seconds=round(seconds, 3))
    else:
        log.warning("tag_failed", tag_id=tag.id, error=error)
    return TagRunOut.model_validate(run)


def _latest_size(warehouse: Warehouse, project_id: int, tag: str) -> int:
    table = quote_ident(Tables.for_project(project_id).tag_values)
    row = (
        warehouse.cursor()
        .execute(
            f"SELECT COUNT(*) FROM {table} WHERE tag = $tag AND day = "
            f"(SELECT MAX(day) FROM {table} WHERE tag = $tag)",
            {"tag": tag},
        )
        .fetchone()
    )
    return int(row[0]) if row else 0


def is_due(tag: TagOut | TagDefinition, now: datetime) -> bool:
    """Whether a scheduled tag should run: daily once per Shanghai day, hourly once an hour."""
    if not tag.enabled or tag.schedule == "manual" or tag.kind in {"imported", "realtime"}:
        return False
    if tag.last_run_at is None:
        return True
    if tag.schedule == "daily":
        return tag.last_run_day != sh_today(now)
    hour = utc_naive(now).replace(minute=0, second=0, microsecond=0)
    return tag.last_run_at < hour


def run_due_tags(*, session: Session, warehouse: Warehouse, now: datetime) -> list[TagRunOut]:
    """Run every scheduled tag that is due, tags that other tags read first."""
    due = [t for t in session.scalars(select(TagDefinition)) if is_due(t, now)]
    runs: list[TagRunOut] = []
    for tag in _dependency_order(session, due):
        runs.append(
            run_tag(
                session=session,
                warehouse=warehouse,
                project_id=tag.project_id,
                tag_id=tag.id,
                now=now,
                trigger="schedule",
            )
        )
    return runs


def _dependency_order(session: Session, tags: list[TagDefinition]) -> list[TagDefinition]:
    by_name = {(t.project_id, t.name): t for t in tags}
    reads: dict[int, set[tuple[int, str]]] = {}
    for edge in session.scalars(
        select(Lineage).where(Lineage.source_kind == "tag", Lineage.depends_kind == "tag")
    ):
        reads.setdefault(edge.source_id, set()).add((edge.project_id, edge.depends_on))
    ordered: list[TagDefinition] = []
    seen: set[int] = set()

    def visit(tag: TagDefinition, depth: int = 0) -> None:
        if tag.id in seen or depth > 50:
            return
        for key in sorted(reads.get(tag.id, set())):
            if key in by_name:
                visit(by_name[key], depth + 1)
        seen.add(tag.id)
        ordered.append(tag)

    for tag in sorted(tags, key=lambda t: t.id):
        visit(tag)
    return ordered


def preview_tag(
    *, warehouse: Warehouse, project_id: int, kind: str, spec: dict[str, Any], now: datetime
) -> TagPreviewOut:
    """The value distribution a tag definition would produce now, without storing it."""
    typed = validate_spec(kind, spec)
    compiled = value_query(kind, typed, rule_context(warehouse, project_id, now))
    sql, params = compiled.bound("duckdb")
    rows = (
        warehouse.cursor()
        .execute(
            f"SELECT value, COUNT(*) FROM ({sql}) q GROUP BY value ORDER BY 2 DESC, 1 LIMIT 100",
            params,
        )
        .fetchall()
    )
    return TagPreviewOut(
        total=sum(int(r[1]) for r in rows),
        values=[ValueCount(value=r[0], users=int(r[1])) for r in rows],
        warnings=compiled.warnings,
    )


# -- reading values -------------------------------------------------------------------------


def distribution(
    *, warehouse: Warehouse, project_id: int, tag: str, day: date | None = None
) -> TagDistribution:
    """How many customers hold each value in the version of ``day`` (latest by default)."""
    warehouse.ensure_project(project_id)
    table = quote_ident(Tables.for_project(project_id).tag_values)
    params: dict[str, Any] = {"tag": tag}
    until = ""
    if day is not None:
        until = " AND day <= $day"
        params["day"] = day
    found = (
        warehouse.cursor()
        .execute(f"SELECT MAX(day) FROM {table} WHERE tag = $tag{until}", params)
        .fetchone()
    )
    version = found[0] if found else None
    if version is None:
        return TagDistribution(tag=tag, day=None, total=0, values=[])
    rows = (
        warehouse.cursor()
        .execute(
            f"SELECT value, COUNT(*) FROM {table} WHERE tag = $tag AND day = $version "
            "GROUP BY value ORDER BY 2 DESC, 1 LIMIT 1000",
            {"tag": tag, "version": version},
        )
        .fetchall()
    )
    return TagDistribution(
        tag=tag,
        day=version,
        total=sum(int(r[1]) for r in rows),
        values=[ValueCount(value=r[0], users=int(r[1])) for r in rows],
    )


def history(
    *, warehouse: Warehouse, project_id: int, tag: str, user_id: int
) -> list[TagHistoryPoint]:
    """A customer's value of ``tag`` in every stored version, oldest first."""
    warehouse.ensure_project(project_id)
    table = quote_ident(Tables.for_project(project_id).tag_values)
    rows = (
        warehouse.cursor()
        .execute(
            f"SELECT day, value FROM {table} WHERE tag = $tag AND user_id = $uid ORDER BY day",
            {"tag": tag, "uid": user_id},
        )
        .fetchall()
    )
    return [TagHistoryPoint(day=r[0], value=r[1]) for r in rows]


def user_tags(
    *, warehouse: Warehouse, project_id: int, user_id: int, day: date | None = None
) -> dict[str, str | None]:
    """Tag name → a customer's value in each tag's latest version (at or before ``day``).

    A tag whose latest version does not hold the customer is absent.
    """
    return warehouse.latest_tag_values(project_id, user_id, day=day)


# -- imported tags --------------------------------------------------------------------------


def import_values(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    tag_id: int,
    content: bytes,
    now: datetime,
) -> ImportOut:
    """Store a CSV upload (header ``user_id,value``) as today's version of an imported tag.

    :class:`InvalidInput` names the first bad line; nothing is stored then.
    """
    tag = _get(session, project_id, tag_id)
    if tag.kind != "imported":
        raise InvalidInput(f"tag {tag.name!r} is a {tag.kind} tag; only imported tags take files")
    rows = list(_read_pairs(content))
    batch = pa.table(
        {
            "user_id": pa.array([r[0] for r in rows], pa.int64()),
            "value": pa.array([r[1] for r in rows], pa.string()),
        }
    )
    day = sh_today(now)
    count = _write_version(warehouse, project_id, tag.name, day, now, None, batch)
    tag.last_run_at = utc_naive(now)
    tag.last_run_day = day
    session.add(
        TagRun(
            project_id=project_id,
            tag_id=tag.id,
            day=day,
            started_at=utc_naive(now),
            seconds=0.0,
            status="ok",
            users=count,
            error="",
            trigger="upload",
        )
    )
    session.flush()
    log.info("tag_imported", tag_id=tag.id, users=count)
    return ImportOut(imported=count, day=day)


def _read_pairs(content: bytes) -> Iterable[tuple[int, str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the file is not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["user_id", "value"]:
        raise InvalidInput("line 1: the header must be user_id,value")
    seen: set[int] = set()
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) < 2:
            raise InvalidInput(f"line {line}: expected user_id,value")
        try:
            user_id = int(row[0].strip())
        except ValueError:
            raise InvalidInput(f"line {line}: user_id {row[0]!r} is not a number") from None
        if user_id in seen:
            raise InvalidInput(f"line {line}: user_id {user_id} appears twice")
        if len(seen) >= MAX_IMPORT_ROWS:
            raise InvalidInput(f"more than {MAX_IMPORT_ROWS} rows")
        seen.add(user_id)
        yield user_id, row[1].strip()[:1000]


# -- real-time tags -------------------------------------------------------------------------


def realtime_tags(*, session: Session) -> list[TagOut]:
    """Every enabled real-time tag, all projects."""
    rows = session.scalars(
        select(TagDefinition).where(TagDefinition.kind == "realtime", TagDefinition.enabled)
    )
    return [TagOut.model_validate(t) for t in rows]


def update_realtime(
    *,
    warehouse: Warehouse,
    project_id: int,
    tags: Sequence[TagOut],
    since: datetime,
    now: datetime,
) -> tuple[int, datetime]:
    """Recompute real-time tags for customers with events received after ``since``.

    Returns (customers updated, the newest ``$receive_time`` seen — the next watermark). The
    values of those customers in today's version are replaced, so replays are harmless.
    """
    warehouse.ensure_project(project_id)
    tables = Tables.for_project(project_id)
    cur = warehouse.cursor()
    specs = [(t, RealtimeTagSpec.model_validate(t.spec)) for t in tags]
    events = sorted({s.event for _, s in specs})
    if not events:
        return 0, since
    marks = ", ".join(f"$e{i}" for i in range(len(events)))
    params: dict[str, Any] = {f"e{i}": e for i, e in enumerate(events)}
    params["since"] = utc_naive(since)
    with warnings.catch_warnings():  # Arrow from execute() copies once: fine for ids
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        affected: pa.Table = cur.execute(
            f'SELECT user_id, MAX("$receive_time") FROM {quote_ident(tables.events)} '
            f'WHERE "$receive_time" > $since AND event IN ({marks}) GROUP BY user_id',
            params,
        ).to_arrow_table()
    if affected.num_rows == 0:
        return 0, since
    watermark_value = pc.max(affected.column(1)).as_py()
    watermark = watermark_value.replace(tzinfo=UTC) if watermark_value else since
    users = affected.select([0]).rename_columns(["user_id"])
    ctx = rule_context(warehouse, project_id, now)
    day = sh_today(now)
    table = quote_ident(tables.tag_values)
    cur.register("_fw_rt_users", users)
    try:
        for tag, spec in specs:
            builder = RuleBuilder(ctx)
            tree = realtime_query(builder, ctx, spec, users="_fw_rt_users")
            sql, bound = Compiled(tree=tree, params=builder.params, kinds=builder.kinds).bound(
                "duckdb"
            )
            keys = {"wtag": tag.name, "wday": day}
            cur.execute("BEGIN")
            try:
                cur.execute(
                    f"DELETE FROM {table} WHERE tag = $wtag AND day = $wday "
                    "AND user_id IN (SELECT user_id FROM _fw_rt_users)",
                    keys,
                )
                cur.execute(
                    f"INSERT INTO {table} SELECT $wtag, q.user_id, q.value, $wday, $wnow "
                    f"FROM ({sql}) q",
                    {**bound, **keys, "wnow": utc_naive(now)},
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
    finally:
        cur.unregister("_fw_rt_users")
    log.info("realtime_tags_updated", project_id=project_id, users=affected.num_rows)
    return affected.num_rows, watermark


def list_runs(
    *, session: Session, project_id: int, tag_id: int, limit: int = 50
) -> list[TagRunOut]:
    """The latest runs of a tag, newest first."""
    _get(session, project_id, tag_id)
    rows = session.scalars(
        select(TagRun).where(TagRun.tag_id == tag_id).order_by(TagRun.id.desc()).limit(limit)
    )
    return [TagRunOut.model_validate(r) for r in rows]


def recompute_realtime(
    *, warehouse: Warehouse, project_id: int, tags: Sequence[TagOut], now: datetime
) -> int:
    """Recompute real-time tags for every customer (today's version), so sliding windows
    also shrink for customers without new events. Returns the rows written."""
    ctx = rule_context(warehouse, project_id, now)
    written = 0
    for tag in tags:
        spec = RealtimeTagSpec.model_validate(tag.spec)
        compiled = value_query("realtime", spec, ctx)
        written += _write_version(warehouse, project_id, tag.name, sh_today(now), now, compiled)
    return written


def latest_receive_time(*, warehouse: Warehouse, project_id: int) -> datetime | None:
    """The newest ``$receive_time`` in the project's events (aware UTC), None when empty."""
    warehouse.ensure_project(project_id)
    table = quote_ident(Tables.for_project(project_id).events)
    row = warehouse.cursor().execute(f'SELECT MAX("$receive_time") FROM {table}').fetchone()
    if row is None or row[0] is None:
        return None
    moment: datetime = row[0]
    return moment.replace(tzinfo=UTC)


def set_values(
    *, warehouse: Warehouse, project_id: int, tag: str, values: Mapping[int, str], now: datetime
) -> int:
    """Set ``tag`` for some customers today, keeping everyone else's current value.

    Today's version starts as a copy of the latest one (so a journey's set-tag node changes
    only its customers); meant for imported (manual) tags — a rule tag's next run recomputes
    its version.
    """
    if not values:
        return 0
    table = quote_ident(Tables.for_project(project_id).tag_values)
    warehouse.ensure_project(project_id)
    day = sh_today(now)
    batch = pa.table(
        {
            "user_id": pa.array(list(values), pa.int64()),
            "value": pa.array([str(v) for v in values.values()], pa.string()),
        }
    )
    cur = warehouse.cursor()
    keys = {"wtag": tag, "wday": day, "wnow": utc_naive(now)}
    cur.execute("BEGIN")
    try:
        cur.execute(
            f"INSERT INTO {table} SELECT tag, user_id, value, $wday, $wnow FROM {table} "
            f"WHERE tag = $wtag AND day = (SELECT max(day) FROM {table} WHERE tag = $wtag) "
            f"AND day < $wday",
            keys,
        )
        cur.register("_fw_set_batch", batch)
        cur.execute(
            f"DELETE FROM {table} WHERE tag = $wtag AND day = $wday "
            "AND user_id IN (SELECT user_id FROM _fw_set_batch)",
            {"wtag": tag, "wday": day},
        )
        cur.execute(
            f"INSERT INTO {table} SELECT $wtag, b.user_id, b.value, $wday, $wnow "
            "FROM _fw_set_batch b",
            keys,
        )
        cur.unregister("_fw_set_batch")
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return len(values)


def values_of(
    *, warehouse: Warehouse, project_id: int, tag: str, user_ids: Sequence[int]
) -> dict[int, str | None]:
    """The current value of ``tag`` (its latest version) for each of ``user_ids`` that has one."""
    if not user_ids:
        return {}
    table = quote_ident(Tables.for_project(project_id).tag_values)
    warehouse.ensure_project(project_id)
    rows = (
        warehouse.cursor()
        .execute(
            f"SELECT user_id, value FROM {table} WHERE tag = $t "
            f"AND day = (SELECT max(day) FROM {table} WHERE tag = $t) "
            "AND user_id IN (SELECT unnest($ids))",
            {"t": tag, "ids": list(user_ids)},
        )
        .fetchall()
    )
    return {int(u): v for u, v in rows}
