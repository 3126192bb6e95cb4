"""Compile a rule tree to one SQLGlot expression, rendered for DuckDB or ClickHouse.

Every rule becomes a boolean predicate over the users table (alias ``u``); event, sequence, tag
and segment rules become ``u.user_id [NOT] IN (subquery)`` semi-/anti-joins, which both engines
run well and which keep the NULL and no-event cases exact:

* a measure comparison that 0 satisfies (``count equal 0``, ``count lt 3``, ``notDid``) compiles
  to ``NOT IN (users whose measure fails it)``, so users with no events at all match;
* any other comparison compiles to ``IN (users whose measure passes it)``.

User values never enter the SQL text: each becomes a named placeholder (DuckDB ``$p0``,
ClickHouse ``{p0: Type}``) bound at execution. Validated integers (days, seconds) are emitted as
numeric literals by SQLGlot's literal builder. Property names come from the warehouse schema
and are quoted identifiers.

A property absent from the warehouse (no data with it yet) is treated as unset for every user:
``notSet`` matches everyone, any other function matches nobody, and a warning says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlglot import exp, parse_one

from flywheel.core.calendar import last_n_trading_days
from flywheel.core.clock import SHANGHAI, to_utc
from flywheel.rules.schema import (
    Condition,
    EventRule,
    Filter,
    InvalidRule,
    Measure,
    ProfileRule,
    RuleGroup,
    SegmentRule,
    SequenceRule,
    TagRule,
    Window,
)

Dialect = Literal["duckdb", "clickhouse"]
Category = Literal["string", "number", "bool", "date", "timestamp", "list", "missing"]

_NUMBER_TYPES = ("DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT")


def category_of(sql_type: str | None) -> Category:
    """The comparison family of a DuckDB column type (``None`` = the column does not exist)."""
    if sql_type is None:
        return "missing"
    upper = sql_type.upper()
    if upper.endswith("[]"):
        return "list"
    if upper.startswith(_NUMBER_TYPES) or upper.startswith("DECIMAL"):
        return "number"
    if upper == "BOOLEAN":
        return "bool"
    if upper == "DATE":
        return "date"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return "string"


_CH_TYPES: dict[str, str] = {
    "string": "String",
    "number": "Float64",
    "int": "Int64",
    "bool": "Bool",
    "date": "Date",
    "timestamp": "DateTime64(6)",
}


@dataclass(frozen=True)
class Tables:
    """Warehouse tables a rule reads, per project."""

    users: str
    events: str
    tag_values: str
    segment_members: str

    @classmethod
    def for_project(cls, project_id: int) -> Tables:
        p = int(project_id)
        return cls(
            users=f"p{p}_users",
            events=f"p{p}_events",
            tag_values=f"p{p}_tag_values",
            segment_members=f"p{p}_segment_members",
        )


@dataclass
class RuleContext:
    """What compiling needs besides the rule: schema, tables, now, segment resolution.

    ``resolve_segment(id)`` returns the rule of a dynamic segment (compiled inline) or None for a
    static segment (read from the members table); it raises for an unknown segment.
    """

    tables: Tables
    users_columns: Mapping[str, str]
    events_columns: Mapping[str, str]
    now: datetime
    resolve_segment: Callable[[int], RuleGroup | None] | None = None


@dataclass
class Compiled:
    """A compiled query: the SQLGlot tree plus its bound values and any warnings."""

    tree: exp.Expr
    params: dict[str, Any]
    kinds: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def sql(self, dialect: Dialect, *, pretty: bool = False) -> str:
        """The SQL text for ``dialect`` (placeholders, no values)."""
        return self.tree.sql(dialect=dialect, pretty=pretty)

    def bound(self, dialect: Dialect) -> tuple[str, dict[str, Any]]:
        """SQL text and the parameter mapping the engine's client expects.

        DuckDB takes Python values; chDB/ClickHouse takes each value as text, parsed by the
        server with the placeholder's declared type.
        """
        used = {str(node.name) for node in self.tree.find_all(exp.Placeholder)}
        params = {k: v for k, v in self.params.items() if k in used}  # dropped predicates
        if dialect == "duckdb":
            return self.sql(dialect), params
        return self.sql(dialect), {k: _ch_text(v) for k, v in params.items()}


def _ch_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def sh_midnight(day: date) -> datetime:
    """00:00 Asia/Shanghai of ``day`` as naive UTC (how the stores keep time)."""
    return datetime.combine(day, time(0), SHANGHAI).astimezone(UTC).replace(tzinfo=None)


def window_bounds(window: Window, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of a window as naive UTC, relative to ``now`` in Asia/Shanghai."""
    now_utc = to_utc(now)
    today = now_utc.astimezone(SHANGHAI).date()
    until_now = now_utc.replace(tzinfo=None) + timedelta(microseconds=1)
    if window.relative_days is not None:
        return sh_midnight(today - timedelta(days=window.relative_days - 1)), until_now
    if window.relative_trading_days is not None:
        days = last_n_trading_days(today, window.relative_trading_days)
        return sh_midnight(days[0]), until_now
    if window.from_ is not None and window.to is not None:
        return sh_midnight(window.from_), sh_midnight(window.to + timedelta(days=1))
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    previous_first = (first - timedelta(days=1)).replace(day=1)
    relative = window.relative
    if relative == "today":
        return sh_midnight(today), until_now
    if relative == "yesterday":
        return sh_midnight(today - timedelta(days=1)), sh_midnight(today)
    if relative == "this_week":
        return sh_midnight(monday), until_now
    if relative == "last_week":
        return sh_midnight(monday - timedelta(days=7)), sh_midnight(monday)
    if relative == "this_month":
        return sh_midnight(first), until_now
    if relative == "last_month":
        return sh_midnight(previous_first), sh_midnight(first)
    return sh_midnight(today.replace(month=1, day=1)), until_now


def _col(name: str, table: str) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _table(name: str, alias: str) -> exp.Table:
    table: exp.Table = exp.to_table(f'"{name}"')
    return table.as_(alias, quoted=True)  # type: ignore[return-value]


class RuleBuilder:
    """Builds predicates for one compilation, collecting placeholders."""

    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.params: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.warnings: list[str] = []
        self.now = to_utc(ctx.now)
        self.now_naive = self.now.replace(tzinfo=None)
        self.today = self.now.astimezone(SHANGHAI).date()
        self._segment_stack: list[int] = []
        self._aliases = 0

    # -- values ----------------------------------------------------------------------------
    def bind(self, value: Any, kind: str) -> exp.Placeholder:
        name = f"p{len(self.params)}"
        self.params[name] = value
        self.kinds[name] = kind
        return exp.Placeholder(
            this=name, kind=exp.DataType.build(_CH_TYPES[kind], dialect="clickhouse")
        )

    def alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    def coerce(self, value: Any, category: Category, path: str) -> Any:
        """A param as the Python value of the column's family; :class:`InvalidRule` if not."""
        try:
            converted = _convert(value, category)
        except (TypeError, ValueError, OverflowError):
            converted = None
        if converted is None:
            raise InvalidRule(
                f"{path}: {value!r} is not a valid {category} value",
                detail={"path": path},
            )
        return converted

    # -- one value condition ---------------------------------------------------------------
    def value_condition(
        self,
        column: exp.Expr,
        category: Category,
        function: str,
        params: list[Any],
        path: str,
        subject: str,
    ) -> exp.Expr:
        """``column <function> params`` for a column of ``category``."""
        if category == "missing":
            self.warnings.append(f"{path}: {subject} does not exist yet; treated as unset")
            return exp.true() if function == "notSet" else exp.false()
        if function == "isSet":
            return exp.Not(this=exp.Is(this=column, expression=exp.null()))
        if function == "notSet":
            return exp.Is(this=column, expression=exp.null())
        if function in {"isTrue", "isFalse"}:
            if category != "bool":
                raise InvalidRule(
                    f"{path}.function: {function} needs a BOOL property, {subject} is {category}",
                    detail={"path": f"{path}.function"},
                )
            return exp.EQ(this=column, expression=exp.Boolean(this=function == "isTrue"))
        values = [
            self.coerce(v, category, f"{path}.params[{i}]")
            if function not in {"relativeWithin", "relativeBefore", "relativeNext"}
            else v
            for i, v in enumerate(params)
        ]
        kind = "string" if category == "list" else category
        if function in {"equal", "in", "notEqual", "notIn"}:
            if category == "list":
                positive: exp.Expr = _any(
                    [exp.ArrayContains(this=column, expression=self.bind(v, kind)) for v in values]
                )
            elif len(values) == 1:
                positive = exp.EQ(this=column, expression=self.bind(values[0], kind))
            else:
                positive = exp.In(this=column, expressions=[self.bind(v, kind) for v in values])
            if function in {"equal", "in"}:
                return positive
            return exp.and_(
                exp.Not(this=exp.Is(this=column, expression=exp.null())),
                exp.Not(this=exp.paren(positive)),
            )
        if function in {"contain", "notContain"}:
            if category == "list":
                found: exp.Expr = exp.ArrayContains(
                    this=column, expression=self.bind(values[0], "string")
                )
            elif category == "string":
                found = exp.GT(
                    this=exp.StrPosition(this=column, substr=self.bind(values[0], "string")),
                    expression=exp.Literal.number(0),
                )
            else:
                raise InvalidRule(
                    f"{path}.function: {function} needs a STRING or LIST property, "
                    f"{subject} is {category}",
                    detail={"path": f"{path}.function"},
                )
            if function == "contain":
                return found
            return exp.and_(
                exp.Not(this=exp.Is(this=column, expression=exp.null())),
                exp.Not(this=exp.paren(found)),
            )
        if category in {"list", "bool"}:
            raise InvalidRule(
                f"{path}.function: {function} does not apply to {subject} ({category})",
                detail={"path": f"{path}.function"},
            )
        if function in {"gt", "gte", "lt", "lte"}:
            op = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[function]
            return op(this=column, expression=self.bind(values[0], kind))
        if function == "between":
            return exp.Between(
                this=column, low=self.bind(values[0], kind), high=self.bind(values[1], kind)
            )
        if category not in {"date", "timestamp"}:
            raise InvalidRule(
                f"{path}.function: {function} needs a DATE or DATETIME property, "
                f"{subject} is {category}",
                detail={"path": f"{path}.function"},
            )
        if function in {"before", "after"}:
            value = values[0]
            if category == "timestamp" and len(str(params[0])) == 10 and function == "after":
                value = value + timedelta(days=1)
                return exp.GTE(this=column, expression=self.bind(value, kind))
            op2 = exp.LT if function == "before" else exp.GT
            return op2(this=column, expression=self.bind(value, kind))
        days = int(params[0])
        if function == "relativeWithin":
            first = self.today - timedelta(days=days - 1)
            if category == "date":
                return exp.Between(
                    this=column, low=self.bind(first, "date"), high=self.bind(self.today, "date")
                )
            return exp.and_(
                exp.GTE(this=column, expression=self.bind(sh_midnight(first), "timestamp")),
                exp.LTE(this=column, expression=self.bind(self.now_naive, "timestamp")),
            )
        if function == "relativeBefore":
            first = self.today - timedelta(days=days - 1)
            bound = first if category == "date" else sh_midnight(first)
            return exp.LT(this=column, expression=self.bind(bound, category))
        last = self.today + timedelta(days=days - 1)
        if category == "date":
            return exp.Between(
                this=column, low=self.bind(self.today, "date"), high=self.bind(last, "date")
            )
        return exp.and_(
            exp.GTE(this=column, expression=self.bind(self.now_naive, "timestamp")),
            exp.LT(
                this=column,
                expression=self.bind(sh_midnight(last + timedelta(days=1)), "timestamp"),
            ),
        )

    # -- rules -----------------------------------------------------------------------------
    def group(self, group: RuleGroup, path: str) -> exp.Expr:
        parts = [self.rule(child, f"{path}rules[{i}]") for i, child in enumerate(group.rules)]
        combined = exp.and_(*parts) if group.relation == "and" else exp.or_(*parts)
        return exp.paren(combined) if len(parts) > 1 else combined

    def rule(self, rule: Any, path: str) -> exp.Expr:
        if isinstance(rule, RuleGroup):
            return self.group(rule, f"{path}.")
        if isinstance(rule, ProfileRule):
            sql_type = self.ctx.users_columns.get(rule.field)
            return self.value_condition(
                _col(rule.field, "u"),
                category_of(sql_type),
                rule.function,
                list(rule.params),
                path,
                f"profile property {rule.field!r}",
            )
        if isinstance(rule, EventRule):
            return self.event_rule(rule, path)
        if isinstance(rule, SequenceRule):
            return self.sequence_rule(rule, path)
        if isinstance(rule, TagRule):
            return self.tag_rule(rule, path)
        if isinstance(rule, SegmentRule):
            return self.segment_rule(rule, path)
        raise InvalidRule(f"{path}: unsupported rule", detail={"path": path})

    def event_filters(self, alias: str, filters: Filter | None, path: str) -> list[exp.Expr]:
        if filters is None:
            return []
        parts = [
            self.condition(alias, c, f"{path}.conditions[{i}]")
            for i, c in enumerate(filters.conditions)
        ]
        combined = exp.and_(*parts) if filters.relation == "and" else exp.or_(*parts)
        return [exp.paren(combined)]

    def condition(self, alias: str, cond: Condition, path: str) -> exp.Expr:
        return self.value_condition(
            _col(cond.field, alias),
            category_of(self.ctx.events_columns.get(cond.field)),
            cond.function,
            list(cond.params),
            path,
            f"event property {cond.field!r}",
        )

    def event_scan(
        self,
        alias: str,
        event: str | None,
        start: exp.Expr | None,
        end: exp.Expr | None,
        filters: Filter | None,
        path: str,
    ) -> list[exp.Expr]:
        where: list[exp.Expr] = []
        if event is not None:
            where.append(exp.EQ(this=_col("event", alias), expression=self.bind(event, "string")))
        if start is not None:
            where.append(exp.GTE(this=_col("time", alias), expression=start))
        if end is not None:
            where.append(exp.LT(this=_col("time", alias), expression=end))
        where.extend(self.event_filters(alias, filters, f"{path}.filters"))
        return where

    def event_rule(self, rule: EventRule, path: str) -> exp.Expr:
        start, end = window_bounds(rule.window, self.now)
        alias = self.alias("e")
        where = self.event_scan(
            alias,
            rule.measure.event,
            self.bind(start, "timestamp"),
            self.bind(end, "timestamp"),
            rule.filters,
            path,
        )
        function = rule.function
        params = [float(p) for p in rule.params]
        if function == "did":
            function, params = "gte", [1.0]
        elif function == "notDid":
            function, params = "equal", [0.0]
        measure = rule.measure
        zero_counts = measure.aggregator in {"count", "distinct_count", "sum"}
        zero_ok = zero_counts and _compare(0.0, function, params)
        if measure.property is not None and measure.property not in self.ctx.events_columns:
            self.warnings.append(
                f"{path}.measure.property: event property {measure.property!r} does not "
                "exist yet; measured as no value"
            )
            return exp.true() if zero_ok else exp.false()
        user = _col("user_id", alias)
        scan = exp.select(user).from_(_table(self.ctx.tables.events, alias)).where(*where)
        if measure.aggregator == "count" and function == "equal" and params == [0.0]:
            # did-not-do: no GROUP BY needed, just the users who did it.
            return exp.Not(this=exp.In(this=_col("user_id", "u"), query=scan.subquery()))
        if measure.aggregator == "count" and function == "gte" and params == [1.0]:
            return exp.In(this=_col("user_id", "u"), query=scan.subquery())
        measured = aggregate(measure, alias)
        passes = _comparison(measured, function, [self.bind(p, "number") for p in params])
        grouped = scan.group_by(user)
        if zero_ok:
            return exp.Not(
                this=exp.In(
                    this=_col("user_id", "u"),
                    query=grouped.having(exp.Not(this=exp.paren(passes))).subquery(),
                )
            )
        return exp.In(this=_col("user_id", "u"), query=grouped.having(passes).subquery())

    def sequence_rule(self, rule: SequenceRule, path: str) -> exp.Expr:
        start, end = window_bounds(rule.window, self.now)
        first = rule.steps[0]
        alias = self.alias("e")
        current: exp.Select = (
            exp.select(
                exp.alias_(_col("user_id", alias), "user_id", quoted=True),
                exp.alias_(_col("time", alias), "t", quoted=True),
            )
            .distinct()
            .from_(_table(self.ctx.tables.events, alias))
            .where(
                *self.event_scan(
                    alias,
                    first.event,
                    self.bind(start, "timestamp"),
                    self.bind(end, "timestamp"),
                    first.filters,
                    f"{path}.steps[0]",
                )
            )
        )
        now_end = self.now_naive + timedelta(microseconds=1)
        for index, step in enumerate(rule.steps[1:], start=1):
            step_path = f"{path}.steps[{index}]"
            if not step.negate:
                p, e = self.alias("s"), self.alias("e")
                where = self.event_scan(
                    e, step.event, None, self.bind(now_end, "timestamp"), step.filters, step_path
                )
                where.append(exp.GT(this=_col("time", e), expression=_col("t", p)))
                if step.within is not None:
                    where.append(
                        exp.LTE(
                            this=_col("time", e),
                            expression=_plus_seconds(_col("t", p), step.within.seconds),
                        )
                    )
                current = (
                    exp.select(
                        exp.alias_(_col("user_id", e), "user_id", quoted=True),
                        exp.alias_(_col("time", e), "t", quoted=True),
                    )
                    .distinct()
                    .from_(current.subquery(p, copy=True))
                    .join(
                        _table(self.ctx.tables.events, e),
                        on=exp.EQ(this=_col("user_id", p), expression=_col("user_id", e)),
                        join_type="inner",
                    )
                    .where(*where)
                )
                continue
            assert step.within is not None
            seconds = step.within.seconds
            q, e, m, p = self.alias("s"), self.alias("e"), self.alias("m"), self.alias("s")
            where = self.event_scan(e, step.event, None, None, step.filters, step_path)
            where.append(exp.GT(this=_col("time", e), expression=_col("t", q)))
            where.append(
                exp.LTE(this=_col("time", e), expression=_plus_seconds(_col("t", q), seconds))
            )
            hits = (
                exp.select(
                    exp.alias_(_col("user_id", q), "user_id", quoted=True),
                    exp.alias_(_col("t", q), "t", quoted=True),
                    exp.alias_(exp.Literal.number(1), "hit", quoted=True),
                )
                .distinct()
                .from_(current.subquery(q, copy=True))
                .join(
                    _table(self.ctx.tables.events, e),
                    on=exp.EQ(this=_col("user_id", q), expression=_col("user_id", e)),
                    join_type="inner",
                )
                .where(*where)
            )
            current = (
                exp.select(
                    exp.alias_(_col("user_id", p), "user_id", quoted=True),
                    exp.alias_(_col("t", p), "t", quoted=True),
                )
                .from_(current.subquery(p, copy=True))
                .join(
                    hits.subquery(m),
                    on=exp.and_(
                        exp.EQ(this=_col("user_id", p), expression=_col("user_id", m)),
                        exp.EQ(this=_col("t", p), expression=_col("t", m)),
                    ),
                    join_type="left",
                )
                .where(
                    exp.EQ(
                        this=exp.Coalesce(this=_col("hit", m), expressions=[exp.Literal.number(0)]),
                        expression=exp.Literal.number(0),
                    ),
                    exp.LTE(
                        this=_plus_seconds(_col("t", p), seconds),
                        expression=self.bind(self.now_naive, "timestamp"),
                    ),
                )
            )
        final = self.alias("s")
        users = exp.select(_col("user_id", final)).from_(current.subquery(final))
        return exp.In(this=_col("user_id", "u"), query=users.subquery())

    def tag_rule(self, rule: TagRule, path: str) -> exp.Expr:
        tv, latest = self.alias("tv"), self.alias("tv")
        table = self.ctx.tables.tag_values
        day_filter: list[exp.Expr] = [
            exp.EQ(this=_col("tag", latest), expression=self.bind(rule.tag, "string"))
        ]
        if rule.day is not None:
            day_filter.append(
                exp.LTE(this=_col("day", latest), expression=self.bind(rule.day, "date"))
            )
        latest_day = (
            exp.select(exp.Max(this=_col("day", latest)))
            .from_(_table(table, latest))
            .where(*day_filter)
        )
        where: list[exp.Expr] = [
            exp.EQ(this=_col("tag", tv), expression=self.bind(rule.tag, "string")),
            exp.EQ(this=_col("day", tv), expression=exp.paren(latest_day.subquery())),
        ]
        rows = exp.select(_col("user_id", tv)).from_(_table(table, tv))
        if rule.function in {"isSet", "notSet"}:
            query = rows.where(*where)
            inside = exp.In(this=_col("user_id", "u"), query=query.subquery())
            return inside if rule.function == "isSet" else exp.Not(this=inside)
        numeric = rule.function in {"gt", "gte", "lt", "lte", "between"} and all(
            isinstance(p, int | float) and not isinstance(p, bool) for p in rule.params
        )
        value: exp.Expr = _col("value", tv)
        category: Category = "string"
        if numeric:
            value = exp.TryCast(this=value, to=exp.DataType.build("DOUBLE"))
            category = "number"
        elif rule.function in {
            "before",
            "after",
            "relativeWithin",
            "relativeBefore",
            "relativeNext",
        }:
            value = exp.TryCast(this=value, to=exp.DataType.build("DATE"))
            category = "date"
        where.append(
            self.value_condition(
                value, category, rule.function, list(rule.params), path, f"tag {rule.tag!r}"
            )
        )
        return exp.In(this=_col("user_id", "u"), query=rows.where(*where).subquery())

    def segment_rule(self, rule: SegmentRule, path: str) -> exp.Expr:
        if rule.segment_id in self._segment_stack:
            raise InvalidRule(
                f"{path}.segment_id: segment {rule.segment_id} refers to itself",
                detail={"path": f"{path}.segment_id"},
            )
        inner: exp.Expr
        resolved = None
        if self.ctx.resolve_segment is not None:
            try:
                resolved = self.ctx.resolve_segment(rule.segment_id)
            except LookupError as exc:
                raise InvalidRule(
                    f"{path}.segment_id: unknown segment {rule.segment_id}",
                    detail={"path": f"{path}.segment_id"},
                ) from exc
        if resolved is not None:
            self._segment_stack.append(rule.segment_id)
            inner = self.group(resolved, f"{path}.segment.")
            self._segment_stack.pop()
        else:
            sm = self.alias("sm")
            inner = exp.In(
                this=_col("user_id", "u"),
                query=exp.select(_col("user_id", sm))
                .from_(_table(self.ctx.tables.segment_members, sm))
                .where(
                    exp.EQ(
                        this=_col("segment_id", sm),
                        expression=self.bind(rule.segment_id, "int"),
                    )
                )
                .subquery(),
            )
        if rule.function == "in":
            return inner
        return exp.Not(this=exp.paren(inner))

    def scope(self, predicate: str, values: list[Any]) -> exp.Expr:
        """A data-scope predicate from ``auth.scope`` (DuckDB text with ``?``) made portable."""
        tree = parse_one(predicate, read="duckdb")
        marks = [node for node in tree.walk() if isinstance(node, exp.Placeholder)]
        if len(marks) != len(values):
            raise InvalidRule("scope predicate and its values do not match")
        for node, value in zip(marks, values, strict=True):
            node.replace(self.bind(str(value), "string"))
        return tree


def _convert(value: Any, category: Category) -> Any:
    """``value`` as a Python value of ``category``; None when it is not one."""
    if category in ("string", "list"):
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if category == "number":
        return None if isinstance(value, bool) else float(value)
    if category == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        return text == "true" if text in {"true", "false"} else None
    if category == "date":
        return date.fromisoformat(str(value)[:10])
    if category == "timestamp":
        text = str(value)
        if len(text) == 10:
            return sh_midnight(date.fromisoformat(text))
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=SHANGHAI)
        return moment.astimezone(UTC).replace(tzinfo=None)
    return None


def _any(parts: list[exp.Expr]) -> exp.Expr:
    return exp.paren(exp.or_(*parts)) if len(parts) > 1 else parts[0]


def _plus_seconds(column: exp.Expr, seconds: int) -> exp.Expr:
    return exp.Add(
        this=column,
        expression=exp.Interval(this=exp.Literal.number(int(seconds)), unit=exp.Var(this="SECOND")),
    )


def aggregate(measure: Measure, alias: str) -> exp.Expr:
    if measure.aggregator == "count":
        return exp.Count(this=exp.Star())
    column = _col(measure.property or "", alias)
    if measure.aggregator == "distinct_count":
        return exp.Count(this=exp.Distinct(expressions=[column]))
    if measure.aggregator == "sum":
        return exp.Coalesce(this=exp.Sum(this=column), expressions=[exp.Literal.number(0)])
    return {"avg": exp.Avg, "max": exp.Max, "min": exp.Min}[measure.aggregator](this=column)


def _comparison(value: exp.Expr, function: str, params: list[exp.Expr]) -> exp.Expr:
    if function == "between":
        return exp.Between(this=value, low=params[0], high=params[1])
    op = {
        "equal": exp.EQ,
        "notEqual": exp.NEQ,
        "gt": exp.GT,
        "gte": exp.GTE,
        "lt": exp.LT,
        "lte": exp.LTE,
    }[function]
    return op(this=value, expression=params[0])


def _compare(value: float, function: str, params: list[float]) -> bool:
    if function == "between":
        return params[0] <= value <= params[1]
    return {
        "equal": value == params[0],
        "notEqual": value != params[0],
        "gt": value > params[0],
        "gte": value >= params[0],
        "lt": value < params[0],
        "lte": value <= params[0],
    }[function]


Output = Literal["count", "user_ids"]


def compile_rule(
    rule: RuleGroup,
    ctx: RuleContext,
    *,
    output: Output = "user_ids",
    scope: tuple[str, list[Any]] | None = None,
    limit: int | None = None,
) -> Compiled:
    """Compile ``rule`` to ``SELECT COUNT(*)`` or ``SELECT u.user_id`` over the users table.

    ``scope`` is a data-scope predicate over alias ``u`` from ``auth.scope.scope_predicate``.
    ``limit`` (with ``user_ids``) returns the first users by id. Raises :class:`InvalidRule`
    when a rule cannot apply to the warehouse schema (e.g. ``contain`` on a number).
    """
    builder = RuleBuilder(ctx)
    predicate = builder.group(rule, "")
    conditions = [predicate]
    if scope is not None and scope[0].strip().upper() != "TRUE":
        conditions.append(builder.scope(scope[0], scope[1]))
    select = exp.select(
        exp.Count(this=exp.Star()) if output == "count" else _col("user_id", "u")
    ).from_(_table(ctx.tables.users, "u"))
    select = select.where(*conditions)
    if output == "user_ids" and limit is not None:
        select = select.order_by(_col("user_id", "u")).limit(int(limit))
    return Compiled(
        tree=select, params=builder.params, kinds=builder.kinds, warnings=builder.warnings
    )


def compile_predicate(
    rule: RuleGroup, ctx: RuleContext, builder_state: RuleBuilder | None = None
) -> tuple[exp.Expr, RuleBuilder]:
    """The boolean predicate of ``rule`` over alias ``u`` (for tags that combine many rules).

    Pass the returned builder back in to keep placeholders unique across several rules.
    """
    builder = builder_state or RuleBuilder(ctx)
    return builder.group(rule, ""), builder


def finish(tree: exp.Expr, builder: RuleBuilder) -> Compiled:
    """Wrap a tree built with :func:`compile_predicate` into a :class:`Compiled`."""
    return Compiled(
        tree=tree, params=builder.params, kinds=builder.kinds, warnings=builder.warnings
    )
