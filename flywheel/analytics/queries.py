"""Analytical SQL built as SQLGlot trees and rendered for DuckDB or ClickHouse.

Nothing here touches a database. A :class:`QueryBuilder` knows the project's columns (from
``Warehouse.columns``), validates every property a request names (unknown → ``InvalidInput``
naming it) and builds one SELECT per analysis. User values never enter the SQL text as strings:
each becomes a named placeholder bound at execution (DuckDB ``$pN``); for ClickHouse the
placeholders are replaced by typed literals generated from the tree by SQLGlot.

Business time: the store keeps naive UTC; buckets (day/week/month) are Asia/Shanghai, which has
had a fixed +08:00 offset without daylight saving since 1991, so local time is ``time + 8 h``
on both engines. Weeks start on Monday.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlglot import exp

from flywheel.analytics.schemas import Bucket, Filter, PropertyFilter, SegmentFilter
from flywheel.auth.scope import ADVISOR_PROPERTY, BRANCH_PROPERTY
from flywheel.core.clock import utc_naive
from flywheel.core.errors import InvalidInput

Dialect = Literal["duckdb", "clickhouse"]
SHANGHAI_OFFSET_HOURS = 8

_NUMERIC = {"DOUBLE", "BIGINT", "INTEGER", "FLOAT", "DECIMAL", "HUGEINT", "SMALLINT", "TINYINT"}


@dataclass(frozen=True)
class Compiled:
    """SQL text for one dialect and the values of its named placeholders (DuckDB only)."""

    sql: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ScopeRule:
    """Which customers the caller may see: profile ``branch`` in ``branches`` / ``advisor_id``."""

    branches: tuple[str, ...] | None = None
    advisor_id: str | None = None

    @property
    def restricted(self) -> bool:
        return self.branches is not None or self.advisor_id is not None


@dataclass(frozen=True)
class PropertyRef:
    table: Literal["event", "user", "tag"]
    name: str
    sql_type: str
    #: table alias of a tag's latest-value join (``tag.<name>`` references)
    tag_alias: str | None = None

    @property
    def alias(self) -> str:
        if self.tag_alias is not None:
            return self.tag_alias
        return "e" if self.table == "event" else "u"

    @property
    def is_numeric(self) -> bool:
        return self.sql_type.split("(")[0].upper() in _NUMERIC

    def column(self) -> exp.Column:
        return col(self.name, self.alias)


@dataclass
class Binder:
    """Collects user values as named placeholders ``p0``, ``p1``…"""

    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> exp.Expr:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(
        this=exp.to_identifier(name, quoted=True),
        table=exp.to_identifier(table) if table else None,
    )


def _interval(amount: int, unit: str) -> exp.Interval:
    return exp.Interval(this=exp.Literal.string(str(int(amount))), unit=exp.var(unit))


def local_time(time_column: exp.Expr) -> exp.Expr:
    """Asia/Shanghai wall-clock time of a naive-UTC timestamp."""
    return exp.Add(this=time_column, expression=_interval(SHANGHAI_OFFSET_HOURS, "HOUR"))


def bucket_expr(time_column: exp.Expr, bucket: Bucket) -> exp.Expr | None:
    """The Shanghai business bucket (a DATE, or a TIMESTAMP for ``hour``) of a UTC timestamp."""
    local = local_time(time_column)
    if bucket == "total":
        return None
    if bucket == "hour":
        return exp.TimestampTrunc(this=local, unit=exp.var("HOUR"))
    return date_bucket(time_column, bucket)


def date_bucket(time_column: exp.Expr, unit: Literal["day", "week", "month"]) -> exp.Expr:
    """The Shanghai business day, week (Monday) or month (first day) as a DATE."""
    local = local_time(time_column)
    if unit == "day":
        return exp.cast(local, "DATE")
    trunc = exp.DateTrunc(this=local, unit=exp.var(unit.upper()))  # type: ignore[no-untyped-call]
    return exp.cast(trunc, "DATE")


def render(expression: exp.Expr, binder: Binder, dialect: Dialect) -> Compiled:
    """SQL text for ``dialect``: placeholders kept for DuckDB, typed literals for ClickHouse."""
    if dialect == "duckdb":
        return Compiled(expression.sql(dialect="duckdb"), dict(binder.values))
    literal = exp.replace_placeholders(expression.copy(), **binder.values)
    return Compiled(literal.transform(_clickhouse_bitwise).sql(dialect="clickhouse"), {})


_CLICKHOUSE_BITWISE: dict[type[exp.Expr], str] = {
    exp.BitwiseLeftShift: "bitShiftLeft",
    exp.BitwiseRightShift: "bitShiftRight",
    exp.BitwiseAnd: "bitAnd",
}


def _clickhouse_bitwise(node: exp.Expr) -> exp.Expr:
    """SQLGlot renders ``<<``, ``>>`` and ``&`` for ClickHouse, which only has the functions."""
    name = _CLICKHOUSE_BITWISE.get(type(node))
    if name is None:
        return node
    args = [
        node.this.transform(_clickhouse_bitwise),
        node.expression.transform(_clickhouse_bitwise),
    ]
    return exp.Anonymous(this=name, expressions=args)


class QueryBuilder:
    """Builds the analyses' SELECTs over one project's ``events`` and ``users`` tables."""

    def __init__(
        self,
        *,
        events_table: str,
        users_table: str,
        event_columns: dict[str, str],
        user_columns: dict[str, str],
        scope: ScopeRule | None = None,
        segment_members_table: str | None = None,
        tag_values_table: str | None = None,
    ) -> None:
        self.segment_members_table = segment_members_table
        self.tag_values_table = tag_values_table
        self._tag_aliases: dict[str, str] = {}
        self.events_table = events_table
        self.users_table = users_table
        self.event_columns = event_columns
        self.user_columns = user_columns
        self.scope = scope or ScopeRule()

    # -- properties and filters ----------------------------------------------------------------
    def resolve(self, reference: str) -> PropertyRef:
        """``amount`` / ``event.amount`` → event column, ``user.branch`` → profile column,
        ``tag.<name>`` → the user's latest value of that tag (text)."""
        if reference.startswith("tag."):
            tag = reference.removeprefix("tag.")
            if self.tag_values_table is None or not tag:
                raise InvalidInput(
                    f"unknown tag property {reference!r}: this project has no tag values yet",
                    detail={"property": reference},
                )
            alias = self._tag_aliases.setdefault(tag, f"tag{len(self._tag_aliases)}")
            return PropertyRef(table="tag", name="value", sql_type="VARCHAR", tag_alias=alias)
        table: Literal["event", "user"] = "event"
        name = reference
        if reference.startswith("user."):
            table, name = "user", reference.removeprefix("user.")
        elif reference.startswith("event."):
            name = reference.removeprefix("event.")
        columns = self.event_columns if table == "event" else self.user_columns
        if name not in columns:
            raise InvalidInput(
                f"unknown {table} property {name!r}",
                detail={"property": reference},
            )
        return PropertyRef(table=table, name=name, sql_type=columns[name])

    def numeric(self, reference: str) -> PropertyRef:
        ref = self.resolve(reference)
        if not ref.is_numeric:
            raise InvalidInput(
                f"property {reference!r} is {ref.sql_type}, not a number",
                detail={"property": reference},
            )
        return ref

    def _coerce(self, ref: PropertyRef, value: Any, reference: str) -> Any:
        base = ref.sql_type.upper()
        ok: bool
        if base.endswith("[]"):
            ok = isinstance(value, str)
        elif ref.is_numeric:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and base == "DOUBLE":
                value = float(value)
            elif ok and not -(2**63) <= value < 2**63:
                ok = False
        elif base == "BOOLEAN":
            ok = isinstance(value, bool)
        elif base in {"TIMESTAMP", "DATE"}:
            if isinstance(value, str):
                try:
                    value = (
                        utc_naive(datetime.fromisoformat(value))
                        if base == "TIMESTAMP"
                        else date.fromisoformat(value)
                    )
                except ValueError:
                    ok = False
                else:
                    ok = True
            else:
                ok = False
        else:
            ok = isinstance(value, str)
        if not ok:
            raise InvalidInput(
                f"filter value {value!r} does not fit property {reference!r} ({ref.sql_type})",
                detail={"property": reference},
            )
        return value

    def condition(self, flt: Filter, binder: Binder) -> exp.Expr:
        """One filter as a predicate; values bound, the property checked and typed."""
        if isinstance(flt, SegmentFilter):
            return self._segment_condition(flt, binder)
        ref = self.resolve(flt.property)
        column = ref.column()
        if flt.op == "is_set":
            return exp.Not(this=exp.Is(this=column, expression=exp.Null()))
        if flt.op == "is_not_set":
            return exp.Is(this=column, expression=exp.Null())
        if flt.op in {"in", "not_in"}:
            values = flt.value if isinstance(flt.value, list) else [flt.value]
            if not values:
                return exp.false() if flt.op == "in" else exp.true()
            bound = [binder.bind(self._coerce(ref, v, flt.property)) for v in values]
            inside = exp.In(this=column, expressions=bound)
            return inside if flt.op == "in" else exp.Not(this=inside)
        value = binder.bind(self._coerce(ref, flt.value, flt.property))
        if flt.op == "contains":
            if ref.sql_type.upper().endswith("[]"):
                return exp.ArrayContains(this=column, expression=value)
            if ref.sql_type.upper() != "VARCHAR":
                raise InvalidInput(
                    f"op 'contains' needs a text or list property, {flt.property!r} is "
                    f"{ref.sql_type}",
                    detail={"property": flt.property},
                )
            return exp.GT(
                this=exp.StrPosition(this=column, substr=value), expression=exp.Literal.number(0)
            )
        comparisons: dict[str, type[exp.Binary]] = {
            "eq": exp.EQ,
            "ne": exp.NEQ,
            "gt": exp.GT,
            "gte": exp.GTE,
            "lt": exp.LT,
            "lte": exp.LTE,
        }
        return comparisons[flt.op](this=column, expression=value)

    def conditions(self, filters: Sequence[Filter], binder: Binder) -> list[exp.Expr]:
        return [self.condition(f, binder) for f in filters]

    def _scope_conditions(self, binder: Binder) -> list[exp.Expr]:
        out: list[exp.Expr] = []
        if self.scope.branches is not None:
            if not self.scope.branches:
                return [exp.false()]
            out.append(
                exp.In(
                    this=col(BRANCH_PROPERTY, "u"),
                    expressions=[binder.bind(b) for b in self.scope.branches],
                )
            )
        if self.scope.advisor_id is not None:
            out.append(
                exp.EQ(
                    this=col(ADVISOR_PROPERTY, "u"), expression=binder.bind(self.scope.advisor_id)
                )
            )
        return out

    def _needs_users(self, references: Sequence[str]) -> bool:
        return self.scope.restricted or any(r.startswith("user.") for r in references)

    def _from_events(self, references: Sequence[str], binder: Binder) -> exp.Select:
        """``FROM events e [LEFT JOIN users u] [LEFT JOIN <latest tag value> tagN]…``."""
        select = exp.select().from_(exp.to_table(self.events_table, quoted=True).as_("e"))
        if self._needs_users(references):
            select = select.join(
                exp.to_table(self.users_table, quoted=True).as_("u"),
                on=exp.EQ(this=col("user_id", "e"), expression=col("user_id", "u")),
                join_type="LEFT",
            )
        tags = dict.fromkeys(r.removeprefix("tag.") for r in references if r.startswith("tag."))
        for tag in tags:
            alias = self.resolve(f"tag.{tag}").alias
            latest = (
                exp.select(
                    col("user_id"),
                    exp.ArgMax(this=col("value"), expression=col("day")).as_("value"),
                )
                .from_(exp.to_table(self.tag_values_table or "", quoted=True))
                .where(exp.EQ(this=col("tag"), expression=binder.bind(tag)))
                .group_by(col("user_id"))
            )
            select = select.join(
                exp.Subquery(this=latest, alias=exp.to_identifier(alias)),
                on=exp.EQ(this=col("user_id", "e"), expression=col("user_id", alias)),
                join_type="LEFT",
            )
        return select

    def _time_window(self, start: datetime, end: datetime, binder: Binder) -> list[exp.Expr]:
        time = col("time", "e")
        return [
            exp.GTE(this=time, expression=binder.bind(start)),
            exp.LT(this=time, expression=binder.bind(end)),
        ]

    @staticmethod
    def _event_is(name: str | None, binder: Binder) -> list[exp.Expr]:
        if name is None:
            return []
        return [exp.EQ(this=col("event", "e"), expression=binder.bind(name))]

    @staticmethod
    def _refs(filters: Sequence[Filter]) -> list[str]:
        return [f.property for f in filters if isinstance(f, PropertyFilter)]

    def _segment_condition(self, flt: SegmentFilter, binder: Binder) -> exp.Expr:
        if self.segment_members_table is None:
            raise InvalidInput(
                "segment filters need segment membership, which this project does not have yet",
                detail={"field": "segment_id"},
            )
        members = (
            exp.select(col("user_id"))
            .from_(exp.to_table(self.segment_members_table, quoted=True))
            .where(exp.EQ(this=col("segment_id"), expression=binder.bind(flt.segment_id)))
        )
        inside = col("user_id", "e").isin(query=members)
        return exp.Not(this=inside) if flt.exclude else inside

    # -- event analysis ----------------------------------------------------------------------
    def event_series(
        self,
        *,
        event: str | None,
        measure: str,
        property_ref: str | None,
        filters: Sequence[Filter],
        global_filters: Sequence[Filter],
        group_by: Sequence[str],
        bucket: Bucket,
        start: datetime,
        end: datetime,
        limit: int,
        binder: Binder,
    ) -> exp.Select:
        """``bucket, dims…, value`` rows of one series, ordered by bucket and dims."""
        refs = [*self._refs(filters), *self._refs(global_filters), *group_by]
        if property_ref:
            refs.append(property_ref)
        select = self._from_events(refs, binder)
        keys: list[exp.Expr] = []
        bucket_column = bucket_expr(col("time", "e"), bucket)
        if bucket_column is not None:
            keys.append(bucket_column.as_("bucket"))
        for i, reference in enumerate(group_by):
            keys.append(self.resolve(reference).column().as_(f"g{i}"))
        value: exp.Expr
        user = col("user_id", "e")
        if measure == "count":
            value = exp.Count(this=exp.Star())
        elif measure == "uniques":
            value = exp.Count(this=exp.Distinct(expressions=[user]))
        elif measure == "per_user":
            value = exp.Div(
                this=exp.cast(exp.Count(this=exp.Star()), "DOUBLE"),
                expression=exp.Count(this=exp.Distinct(expressions=[user.copy()])),
            )
        else:
            column = self.numeric(property_ref or "").column()
            funcs: dict[str, type[exp.Func]] = {
                "sum": exp.Sum,
                "avg": exp.Avg,
                "min": exp.Min,
                "max": exp.Max,
                "median": exp.Median,
            }
            value = funcs[measure](this=column)
        where = [
            *self._time_window(start, end, binder),
            *self._event_is(event, binder),
            *self.conditions(filters, binder),
            *self.conditions(global_filters, binder),
            *self._scope_conditions(binder),
        ]
        select = select.select(*keys, value.as_("value")).where(*where)
        positions = [exp.Literal.number(i + 1) for i in range(len(keys))]
        if positions:
            select = select.group_by(*positions).order_by(*[p.copy() for p in positions])
        return select.limit(limit)

    # -- funnel ------------------------------------------------------------------------------
    def funnel(
        self,
        *,
        steps: Sequence[tuple[str, Sequence[Filter]]],
        window_seconds: int,
        start: datetime,
        end: datetime,
        group_by: str | None,
        global_filters: Sequence[Filter],
        binder: Binder,
        dropped_step: int | None = None,
        dropped_limit: int = 100,
    ) -> exp.Select:
        """Per step (and group): users reaching it and median seconds to convert.

        A user enters at their first step-1 event in [start, end); step k counts when it happens
        at or after step k−1 (strictly after when it is the same event) and within
        ``window_seconds`` of the entry. With ``dropped_step`` the query instead lists users who
        reached step ``dropped_step − 1`` but not ``dropped_step``.

        Shape: ``e{k}`` reads only step k's events (its filters, the global filters and the
        scope pushed into the scan); ``s1`` is each user's entry; ``s{k}`` joins ``s{k-1}`` to
        ``e{k}`` on ``user_id`` and keeps the earliest qualifying time, grouped by user alone.
        """
        window = _interval(window_seconds, "SECOND")
        horizon = end + timedelta(seconds=window_seconds)
        group_ref = self.resolve(group_by) if group_by else None
        ctes: list[tuple[str, exp.Select]] = []
        for k, (name, flt) in enumerate(steps, start=1):
            refs = [*self._refs(flt), *self._refs(global_filters)]
            if k == 1 and group_by:
                refs.append(group_by)
            columns: list[exp.Expr] = [
                col("user_id", "e").as_("user_id"),
                col("time", "e").as_("time"),
            ]
            if k == 1 and group_ref is not None:
                columns.append(group_ref.column().as_("g"))
            scan = (
                self._from_events(refs, binder)
                .select(*columns)
                .where(
                    exp.EQ(this=col("event", "e"), expression=binder.bind(name)),
                    *self._time_window(start, end if k == 1 else horizon, binder),
                    *self.conditions(flt, binder),
                    *self.conditions(global_filters, binder),
                    *self._scope_conditions(binder),
                )
            )
            ctes.append((f"e{k}", scan))
        grouped = group_ref is not None
        first = (
            exp.select(
                col("user_id"),
                *([exp.ArgMin(this=col("g"), expression=col("time")).as_("g")] if grouped else []),
                exp.Min(this=col("time")).as_("t1"),
                exp.Min(this=col("time")).as_("tprev"),
                exp.Min(this=col("time")).as_("t"),
            )
            .from_("e1")
            .group_by(col("user_id"))
        )
        ctes.append(("s1", first))
        for k in range(2, len(steps) + 1):
            same = steps[k - 1][0] == steps[k - 2][0]
            after = (exp.GT if same else exp.GTE)(this=col("time", "x"), expression=col("t", "s"))
            within = exp.LTE(
                this=col("time", "x"), expression=exp.Add(this=col("t1", "s"), expression=window)
            )
            step = (
                exp.select(
                    col("user_id", "s").as_("user_id"),
                    *([exp.AnyValue(this=col("g", "s")).as_("g")] if grouped else []),
                    exp.AnyValue(this=col("t1", "s")).as_("t1"),
                    exp.AnyValue(this=col("t", "s")).as_("tprev"),
                    exp.Min(this=col("time", "x")).as_("t"),
                )
                .from_(exp.to_table(f"s{k - 1}").as_("s"))
                .join(
                    exp.to_table(f"e{k}").as_("x"),
                    on=exp.EQ(this=col("user_id", "x"), expression=col("user_id", "s")),
                )
                .where(after, within)
                .group_by(col("user_id", "s"))
            )
            ctes.append((f"s{k}", step))
        group_cols = [col("g")] if grouped else []
        if dropped_step is not None:
            final = (
                exp.select(col("user_id"))
                .from_(f"s{dropped_step - 1}")
                .where(
                    exp.Not(
                        this=col("user_id").isin(
                            query=exp.select(col("user_id")).from_(f"s{dropped_step}")
                        )
                    )
                )
                .order_by(col("user_id"))
                .limit(dropped_limit)
            )
        else:
            parts: list[exp.Select] = []
            for k in range(1, len(steps) + 1):
                part = exp.select(
                    exp.Literal.number(k).as_("step"),
                    *[c.copy().as_("g") for c in group_cols],
                    exp.Count(this=exp.Star()).as_("users"),
                    exp.Median(
                        this=exp.DateDiff(
                            this=col("t"), expression=col("tprev"), unit=exp.var("SECOND")
                        )
                    ).as_("median_prev"),
                    exp.Median(
                        this=exp.DateDiff(
                            this=col("t"), expression=col("t1"), unit=exp.var("SECOND")
                        )
                    ).as_("median_start"),
                ).from_(f"s{k}")
                if group_by:
                    part = part.group_by(col("g"))
                parts.append(part)
            union: exp.Query = parts[0]
            for part in parts[1:]:
                union = exp.union(union, part, distinct=False)
            final = exp.select("*").from_(exp.Subquery(this=union, alias="steps"))
            final = final.order_by(col("step"), *[c.copy() for c in group_cols])
        for name, query in ctes:
            final = final.with_(name, as_=query)
        return final

    # -- retention ---------------------------------------------------------------------------
    def retention(
        self,
        *,
        start_event: str | None,
        return_event: str | None,
        start_filters: Sequence[Filter],
        return_filters: Sequence[Filter],
        global_filters: Sequence[Filter],
        unit: Literal["day", "week", "month"],
        periods: int,
        origin: date,
        span: int,
        start: datetime,
        end: datetime,
        returns_end: datetime,
        binder: Binder,
    ) -> exp.Select:
        """Rows ``cohort, size, r0 … r{periods}``; ``cohort`` is the bucket index from ``origin``.

        Cohort: the bucket of a user's first ``start_event`` in [start, end). Retained in
        period N: did ``return_event`` (any event when None) in the bucket N units later.

        One pass over the events, grouped by user only: each user's cohort index and a bitmap
        of the buckets with a return event (``span`` buckets from ``origin``, in 62-bit words).
        This avoids materialising every distinct (user, day) pair, the cost of the usual
        DISTINCT-then-join formulation.
        """
        if span > 62 * 8:
            raise InvalidInput(
                "the retention table spans too many buckets: shorten the range or the periods",
                detail={"field": "periods"},
            )
        origin_value = binder.bind(origin)
        bucket = date_bucket(col("time", "e"), unit)
        index: exp.Expr
        if unit == "month":
            index = exp.DateDiff(this=bucket, expression=origin_value, unit=exp.var("MONTH"))
        else:
            index = exp.DateDiff(this=bucket, expression=origin_value, unit=exp.var("DAY"))
            if unit == "week":
                index = exp.IntDiv(this=index, expression=exp.Literal.number(7))
        is_start = exp.and_(
            exp.LT(this=col("time", "e"), expression=binder.bind(end)),
            *self._event_is(start_event, binder),
            *self.conditions(start_filters, binder),
        )
        return_parts = [
            *self._event_is(return_event, binder),
            *self.conditions(return_filters, binder),
        ]
        is_return = exp.and_(*return_parts) if return_parts else exp.true()
        refs = [
            *self._refs(start_filters),
            *self._refs(return_filters),
            *self._refs(global_filters),
        ]
        tagged = (
            self._from_events(refs, binder)
            .select(
                col("user_id", "e").as_("user_id"),
                index.as_("i"),
                exp.paren(is_start.copy()).as_("is_start"),
                exp.paren(is_return.copy()).as_("is_return"),
            )
            .where(
                *self._time_window(start, returns_end, binder),
                exp.or_(exp.paren(is_start), exp.paren(is_return)),
                *self.conditions(global_filters, binder),
                *self._scope_conditions(binder),
            )
        )
        words = (span + 61) // 62
        one = exp.cast(exp.Literal.number(1), "BIGINT")
        masks = []
        for w in range(words):
            in_word = exp.and_(
                col("is_return"),
                exp.GTE(this=col("i"), expression=exp.Literal.number(62 * w)),
                exp.LT(this=col("i"), expression=exp.Literal.number(62 * (w + 1))),
            )
            shift = exp.BitwiseLeftShift(
                this=one.copy(),
                expression=exp.Sub(this=col("i"), expression=exp.Literal.number(62 * w)),
            )
            masks.append(
                exp.BitwiseOrAgg(
                    this=exp.Case()
                    .when(in_word, shift)
                    .else_(exp.cast(exp.Literal.number(0), "BIGINT"))
                ).as_(f"w{w}")
            )
        per_user = (
            exp.select(
                col("user_id"),
                exp.Min(this=exp.Case().when(col("is_start"), col("i"))).as_("c"),
                *masks,
            )
            .from_(exp.Subquery(this=tagged, alias="tagged"))
            .group_by(col("user_id"))
        )

        def bit(k: int) -> exp.Expr:
            position = exp.Add(this=col("c"), expression=exp.Literal.number(k))
            case = exp.Case()
            for w in range(words):
                shifted = exp.BitwiseRightShift(
                    this=col(f"w{w}"),
                    expression=exp.Sub(this=position.copy(), expression=exp.Literal.number(62 * w)),
                )
                case = case.when(
                    exp.LT(this=position.copy(), expression=exp.Literal.number(62 * (w + 1))),
                    exp.BitwiseAnd(this=exp.paren(shifted), expression=exp.Literal.number(1)),
                )
            return case.else_(exp.Literal.number(0))

        return (
            exp.select(
                col("c").as_("cohort"),
                exp.Count(this=exp.Star()).as_("size"),
                *[exp.Sum(this=bit(k)).as_(f"r{k}") for k in range(periods + 1)],
            )
            .from_("per_user")
            .where(exp.Not(this=exp.Is(this=col("c"), expression=exp.Null())))
            .group_by(col("c"))
            .order_by(col("c"))
            .with_("per_user", as_=per_user)
        )

    # -- distribution ------------------------------------------------------------------------
    def distribution(
        self,
        *,
        event: str | None,
        measure: str,
        property_ref: str | None,
        edges: Sequence[float],
        filters: Sequence[Filter],
        start: datetime,
        end: datetime,
        binder: Binder,
    ) -> exp.Select:
        """Rows ``bucket, users``: bucket i holds values in [edges[i-1], edges[i]) (0: below)."""
        refs = [*self._refs(filters), *([property_ref] if property_ref else [])]
        value: exp.Expr
        if measure == "count":
            value = exp.Count(this=exp.Star())
        else:
            column = self.numeric(property_ref or "").column()
            value = {"sum": exp.Sum, "avg": exp.Avg, "max": exp.Max}[measure](this=column)
        per_user = (
            self._from_events(refs, binder)
            .select(col("user_id", "e").as_("user_id"), value.as_("v"))
            .where(
                *self._time_window(start, end, binder),
                *self._event_is(event, binder),
                *self.conditions(filters, binder),
                *self._scope_conditions(binder),
            )
            .group_by(col("user_id", "e"))
        )
        case = exp.Case()
        for i, edge in enumerate(edges):
            case = case.when(
                exp.LT(this=col("v"), expression=binder.bind(float(edge))), exp.Literal.number(i)
            )
        case = case.else_(exp.Literal.number(len(edges)))
        return (
            exp.select(case.as_("bucket"), exp.Count(this=exp.Star()).as_("users"))
            .from_("per_user")
            .where(exp.Not(this=exp.Is(this=col("v"), expression=exp.Null())))
            .group_by(exp.Literal.number(1))
            .order_by(exp.Literal.number(1))
            .with_("per_user", as_=per_user)
        )

    # -- attribution -------------------------------------------------------------------------
    def attribution(
        self,
        *,
        conversion_event: str,
        touch_events: Sequence[str],
        by: str,
        model: Literal["first_touch", "last_touch"],
        window_seconds: int,
        value_property: str | None,
        filters: Sequence[Filter],
        start: datetime,
        end: datetime,
        touch_start: datetime,
        binder: Binder,
    ) -> exp.Select:
        """Rows ``touch, conversions, value`` per credited touch value (as text), plus one row
        with a NULL touch holding the total of all conversions (attributed or not)."""
        by_ref = self.resolve(by)
        if by_ref.table != "event":
            raise InvalidInput(
                f"attribution is by a touch event property, {by!r} is a profile property",
                detail={"property": by},
            )
        value_column: exp.Expr = (
            self.numeric(value_property).column() if value_property else exp.Literal.number(0)
        )
        conversions = (
            self._from_events(
                [*self._refs(filters), *([value_property] if value_property else [])], binder
            )
            .select(
                col("id", "e").as_("cid"),
                col("user_id", "e").as_("user_id"),
                col("time", "e").as_("time"),
                exp.cast(value_column, "DOUBLE").as_("value"),
            )
            .where(
                *self._time_window(start, end, binder),
                *self._event_is(conversion_event, binder),
                *self.conditions(filters, binder),
                *self._scope_conditions(binder),
            )
        )
        touches = (
            exp.select(
                col("user_id", "e").as_("user_id"),
                col("time", "e").as_("time"),
                exp.cast(by_ref.column(), "VARCHAR").as_("touch"),
            )
            .from_(exp.to_table(self.events_table, quoted=True).as_("e"))
            .where(
                *self._time_window(touch_start, end, binder),
                exp.In(this=col("event", "e"), expressions=[binder.bind(t) for t in touch_events]),
                exp.Not(this=exp.Is(this=by_ref.column(), expression=exp.Null())),
            )
        )
        pick = exp.ArgMax if model == "last_touch" else exp.ArgMin
        credited = (
            exp.select(
                col("cid", "c").as_("cid"),
                pick(this=col("touch", "t"), expression=col("time", "t")).as_("touch"),
            )
            .from_(exp.to_table("conv").as_("c"))
            .join(
                exp.to_table("touches").as_("t"),
                on=exp.EQ(this=col("user_id", "t"), expression=col("user_id", "c")),
            )
            .where(
                exp.LTE(this=col("time", "t"), expression=col("time", "c")),
                exp.GTE(
                    this=col("time", "t"),
                    expression=exp.Sub(
                        this=col("time", "c"), expression=_interval(window_seconds, "SECOND")
                    ),
                ),
            )
            .group_by(col("cid", "c"))
        )
        attributed = (
            exp.select(
                col("touch", "k").as_("touch"),
                exp.Count(this=exp.Star()).as_("conversions"),
                exp.Sum(this=col("value", "c")).as_("value"),
            )
            .from_(exp.to_table("credited").as_("k"))
            .join(
                exp.to_table("conv").as_("c"),
                on=exp.EQ(this=col("cid", "c"), expression=col("cid", "k")),
            )
            .group_by(col("touch", "k"))
        )
        total = exp.select(
            exp.cast(exp.Null(), "VARCHAR").as_("touch"),
            exp.Count(this=exp.Star()).as_("conversions"),
            exp.Sum(this=col("value")).as_("value"),
        ).from_("conv")
        union = exp.union(attributed, total, distinct=False)
        return (
            exp.select("*")
            .from_(exp.Subquery(this=union, alias="a"))
            .order_by(exp.Ordered(this=col("conversions"), desc=True), col("touch"))
            .with_("conv", as_=conversions)
            .with_("touches", as_=touches)
            .with_("credited", as_=credited)
        )
