"""Analytics service: runs analyses over the warehouse, evaluates experiments, keeps saved
analyses and the 3A3R dashboard.

Analyses only read the analytical store (the warehouse); saved analyses and dashboards live in
the operational store and take a session keyword-only (they ``flush()``, the caller commits).
Every analysis honours the caller's data scope: a principal limited to branches or to one
advisor's customers only ever counts (and sees the ids of) those customers.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.analytics import stats
from flywheel.analytics.models import Dashboard, SavedAnalysis
from flywheel.analytics.queries import Binder, Compiled, Dialect, QueryBuilder, ScopeRule, render
from flywheel.analytics.schemas import (
    AnalysisKind,
    AnalysisOut,
    AttributionIn,
    AttributionOut,
    DashboardMetricOut,
    DashboardOut,
    DateRange,
    DistributionIn,
    DistributionOut,
    EventAnalysisIn,
    EventAnalysisOut,
    ExperimentIn,
    ExperimentOut,
    FunnelIn,
    FunnelOut,
    FunnelStepOut,
    RetentionCohortOut,
    RetentionIn,
    RetentionOut,
    SavedAnalysisIn,
    SavedAnalysisOut,
    SavedAnalysisPatch,
    TableOut,
    TreatmentOut,
)
from flywheel.auth.schemas import Principal
from flywheel.auth.scope import ADVISOR_PROPERTY, BRANCH_PROPERTY
from flywheel.core.clock import SHANGHAI, utc_naive
from flywheel.core.errors import InvalidInput, NotFound
from flywheel.warehouse import Warehouse
from flywheel.warehouse.engine import PropertyType, TableKind, table_name

log = structlog.get_logger(__name__)

DEFAULT_COUNT_EDGES = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 11.0, 21.0, 51.0, 101.0]
INPUT_MODELS: dict[str, type[BaseModel]] = {
    "events": EventAnalysisIn,
    "funnel": FunnelIn,
    "retention": RetentionIn,
    "distribution": DistributionIn,
    "attribution": AttributionIn,
}


# -- plumbing --------------------------------------------------------------------------------
def scope_of(principal: Principal | None) -> ScopeRule:
    """The data scope of ``principal`` (unrestricted for ``None``: internal callers)."""
    if principal is None:
        return ScopeRule()
    return ScopeRule(branches=principal.branch_scope, advisor_id=principal.advisor_id)


def builder_for(warehouse: Warehouse, project_id: int, scope: ScopeRule) -> QueryBuilder:
    """A :class:`QueryBuilder` over the project's current columns."""
    warehouse.ensure_project(project_id)
    if scope.restricted:
        warehouse.ensure_columns(
            project_id,
            TableKind.USERS,
            {BRANCH_PROPERTY: PropertyType.STRING, ADVISOR_PROPERTY: PropertyType.STRING},
        )
    members, tags = f"p{int(project_id)}_segment_members", f"p{int(project_id)}_tag_values"
    present = {
        str(row[0])
        for row in warehouse.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_name IN (?, ?)",
            [members, tags],
        )
    }
    return QueryBuilder(
        segment_members_table=members if members in present else None,
        tag_values_table=tags if tags in present else None,
        events_table=table_name(project_id, TableKind.EVENTS),
        users_table=table_name(project_id, TableKind.USERS),
        event_columns=warehouse.columns(project_id, TableKind.EVENTS),
        user_columns=warehouse.columns(project_id, TableKind.USERS),
        scope=scope,
    )


def business_days(date_range: DateRange, now: datetime) -> tuple[date, date]:
    """First and last Shanghai business day of ``date_range`` (``last_days`` ends today)."""
    if date_range.from_date is not None and date_range.to_date is not None:
        return date_range.from_date, date_range.to_date
    today = now.astimezone(SHANGHAI).date()
    return today - timedelta(days=(date_range.last_days or 30) - 1), today


def day_start_utc(day: date) -> datetime:
    """Naive UTC instant at which the Shanghai business day ``day`` starts."""
    return utc_naive(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI))


def _run(warehouse: Warehouse, compiled: Compiled) -> list[tuple[Any, ...]]:
    started = time.perf_counter()
    rows = warehouse.cursor().execute(compiled.sql, compiled.params).fetchall()
    log.debug(
        "analysis_query_ran", rows=len(rows), ms=round((time.perf_counter() - started) * 1000, 1)
    )
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


# -- event analysis --------------------------------------------------------------------------
def event_analysis(
    *,
    warehouse: Warehouse,
    project_id: int,
    request: EventAnalysisIn,
    now: datetime,
    principal: Principal | None = None,
    dialect: Dialect = "duckdb",
) -> EventAnalysisOut:
    """Counts, uniques, per-user counts or sum/avg/min/max/median of a numeric property per
    time bucket and dimension, one block of rows per series.

    Raises :class:`InvalidInput` naming an unknown or mistyped property.
    """
    builder = builder_for(warehouse, project_id, scope_of(principal))
    first, last = business_days(request.date_range, now)
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    columns = ["series", "event", "measure"]
    if request.bucket != "total":
        columns.append("bucket")
    columns.extend(request.group_by)
    columns.append("value")
    rows: list[list[Any]] = []
    sqls: list[str] = []
    for index, series in enumerate(request.series):
        binder = Binder()
        query = builder.event_series(
            event=series.event,
            measure=series.measure,
            property_ref=series.property,
            filters=series.filters,
            global_filters=request.filters,
            group_by=request.group_by,
            bucket=request.bucket,
            start=start,
            end=end,
            limit=request.limit,
            binder=binder,
        )
        compiled = render(query, binder, dialect)
        sqls.append(compiled.sql)
        for row in _run(warehouse, compiled):
            rows.append(
                [
                    index,
                    series.event,
                    series.measure,
                    *(_plain(v) for v in row[:-1]),
                    _plain(row[-1]),
                ]
            )
    log.info("events_analysed", project_id=project_id, series=len(request.series), rows=len(rows))
    return EventAnalysisOut(columns=columns, rows=rows, sql=";\n".join(sqls))


# -- funnel ------------------------------------------------------------------------------------
def funnel(
    *,
    warehouse: Warehouse,
    project_id: int,
    request: FunnelIn,
    now: datetime,
    principal: Principal | None = None,
    dialect: Dialect = "duckdb",
) -> FunnelOut:
    """Users per ordered step with conversion and median time to convert, optionally per group,
    and a sample of user ids who dropped before ``dropped_step``."""
    builder = builder_for(warehouse, project_id, scope_of(principal))
    first, last = business_days(request.date_range, now)
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    window_seconds = round(request.window_days * 86400)
    steps = [(s.event, s.filters) for s in request.steps]

    def build(dropped: int | None) -> Compiled:
        binder = Binder()
        query = builder.funnel(
            steps=steps,
            window_seconds=window_seconds,
            start=start,
            end=end,
            group_by=request.group_by,
            global_filters=request.filters,
            binder=binder,
            dropped_step=dropped,
            dropped_limit=request.dropped_limit,
        )
        return render(query, binder, dialect)

    compiled = build(None)
    raw = _run(warehouse, compiled)
    grouped = request.group_by is not None
    by_group: dict[Any, dict[int, tuple[int, Any, Any]]] = {}
    for row in raw:
        if grouped:
            step, group, users, median_prev, median_start = row
        else:
            (step, users, median_prev, median_start), group = row, None
        by_group.setdefault(_plain(group), {})[int(step)] = (int(users), median_prev, median_start)
    out_steps: list[FunnelStepOut] = []
    groups = sorted(by_group, key=lambda g: (g is None, str(g))) if by_group else [None]
    for group in groups:
        counts = by_group.get(group, {})
        first_users = counts.get(1, (0, None, None))[0]
        previous = first_users
        for k, step_in in enumerate(request.steps, start=1):
            users, median_prev, median_start = counts.get(k, (0, None, None))
            out_steps.append(
                FunnelStepOut(
                    step=k,
                    event=step_in.event,
                    group=group,
                    users=users,
                    conversion_from_previous=None if k == 1 else _ratio(users, previous),
                    conversion_overall=_ratio(users, first_users),
                    median_seconds_from_previous=(
                        None if k == 1 or median_prev is None else float(median_prev)
                    ),
                    median_seconds_from_start=(
                        None if k == 1 or median_start is None else float(median_start)
                    ),
                )
            )
            previous = users
    dropped_ids: list[int] | None = None
    if request.dropped_step is not None:
        dropped_ids = [int(r[0]) for r in _run(warehouse, build(request.dropped_step))]
    columns = [
        "step",
        "event",
        *(["group"] if grouped else []),
        "users",
        "conversion_from_previous",
        "conversion_overall",
        "median_seconds_from_previous",
        "median_seconds_from_start",
    ]
    rows = [
        [
            s.step,
            s.event,
            *([s.group] if grouped else []),
            s.users,
            s.conversion_from_previous,
            s.conversion_overall,
            s.median_seconds_from_previous,
            s.median_seconds_from_start,
        ]
        for s in out_steps
    ]
    log.info("funnel_analysed", project_id=project_id, steps=len(request.steps))
    return FunnelOut(
        columns=columns,
        rows=rows,
        sql=compiled.sql,
        steps=out_steps,
        dropped_step=request.dropped_step,
        dropped_user_ids=dropped_ids,
    )


# -- retention -------------------------------------------------------------------------------
def _add_units(day: date, unit: str, count: int) -> date:
    if unit == "day":
        return day + timedelta(days=count)
    if unit == "week":
        return day + timedelta(weeks=count)
    month = day.month - 1 + count
    return date(day.year + month // 12, month % 12 + 1, 1)


def bucket_start(day: date, unit: str) -> date:
    """The first day of the day / week (Monday) / month bucket holding ``day``."""
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def units_between(first: date, last: date, unit: str) -> int:
    """Whole buckets from the bucket start ``first`` to the bucket start ``last``."""
    if unit == "month":
        return (last.year - first.year) * 12 + last.month - first.month
    return (last - first).days // (7 if unit == "week" else 1)


def retention(
    *,
    warehouse: Warehouse,
    project_id: int,
    request: RetentionIn,
    now: datetime,
    principal: Principal | None = None,
    dialect: Dialect = "duckdb",
) -> RetentionOut:
    """Cohort retention table: per cohort its size and users retained in periods 0…N.

    A period that has not fully started yet (after today, Shanghai) is ``None`` rather than 0,
    and is left out of the cohort-weighted average rate.
    """
    builder = builder_for(warehouse, project_id, scope_of(principal))
    first, last = business_days(request.date_range, now)
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    origin = bucket_start(first, request.unit)
    cohort_buckets = units_between(origin, bucket_start(last, request.unit), request.unit) + 1
    span = cohort_buckets + request.periods
    returns_end = day_start_utc(_add_units(origin, request.unit, span))
    binder = Binder()
    query = builder.retention(
        start_event=request.start_event,
        return_event=request.return_event,
        start_filters=request.start_filters,
        return_filters=request.return_filters,
        global_filters=request.filters,
        unit=request.unit,
        periods=request.periods,
        origin=origin,
        span=span,
        start=start,
        end=end,
        returns_end=returns_end,
        binder=binder,
    )
    compiled = render(query, binder, dialect)
    today = now.astimezone(SHANGHAI).date()
    cohorts: list[RetentionCohortOut] = []
    totals = [0] * (request.periods + 1)
    bases = [0] * (request.periods + 1)
    for row in _run(warehouse, compiled):
        cohort_day = _add_units(origin, request.unit, int(row[0]))
        size = int(row[1])
        retained: list[int | None] = []
        for k, value in enumerate(row[2:]):
            if _add_units(cohort_day, request.unit, k) > today:
                retained.append(None)
                continue
            retained.append(int(value))
            totals[k] += int(value)
            bases[k] += size
        cohorts.append(
            RetentionCohortOut(
                cohort=cohort_day,
                size=size,
                retained=retained,
                rates=[None if r is None else _ratio(r, size) for r in retained],
            )
        )
    columns = ["cohort", "size", *(f"{request.unit}_{k}" for k in range(request.periods + 1))]
    rows = [[c.cohort.isoformat(), c.size, *c.retained] for c in cohorts]
    log.info("retention_analysed", project_id=project_id, cohorts=len(cohorts))
    return RetentionOut(
        columns=columns,
        rows=rows,
        sql=compiled.sql,
        unit=request.unit,
        cohorts=cohorts,
        average_rates=[_ratio(t, b) for t, b in zip(totals, bases, strict=True)],
    )


# -- distribution ----------------------------------------------------------------------------
def distribution(
    *,
    warehouse: Warehouse,
    project_id: int,
    request: DistributionIn,
    now: datetime,
    principal: Principal | None = None,
    dialect: Dialect = "duckdb",
) -> DistributionOut:
    """Users per bucket of a per-user measure; buckets are [edge_i, edge_i+1)."""
    builder = builder_for(warehouse, project_id, scope_of(principal))
    first, last = business_days(request.date_range, now)
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    if request.edges is None and request.measure != "count":
        raise InvalidInput(
            f"measure {request.measure!r} needs bucket edges", detail={"field": "edges"}
        )
    edges = request.edges or DEFAULT_COUNT_EDGES
    binder = Binder()
    query = builder.distribution(
        event=request.event,
        measure=request.measure,
        property_ref=request.property,
        edges=edges,
        filters=request.filters,
        start=start,
        end=end,
        binder=binder,
    )
    compiled = render(query, binder, dialect)
    counts = {int(b): int(u) for b, u in _run(warehouse, compiled)}
    rows: list[list[Any]] = []
    bounds: list[float | None] = [None, *edges, None]
    for i in range(len(edges) + 1):
        low, high = bounds[i], bounds[i + 1]
        if i == 0 and not counts.get(0):
            continue
        rows.append([i, low, high, counts.get(i, 0)])
    return DistributionOut(
        columns=["bucket", "low", "high", "users"],
        rows=rows,
        sql=compiled.sql,
        total_users=sum(counts.values()),
    )


# -- attribution -----------------------------------------------------------------------------
def attribution(
    *,
    warehouse: Warehouse,
    project_id: int,
    request: AttributionIn,
    now: datetime,
    principal: Principal | None = None,
    dialect: Dialect = "duckdb",
) -> AttributionOut:
    """Conversions (and their summed value) credited to the first or last touch value within
    the window before each conversion; conversions without a touch are ``unattributed``."""
    builder = builder_for(warehouse, project_id, scope_of(principal))
    first, last = business_days(request.date_range, now)
    start, end = day_start_utc(first), day_start_utc(last + timedelta(days=1))
    window_seconds = round(request.window_days * 86400)
    binder = Binder()
    query = builder.attribution(
        conversion_event=request.conversion_event,
        touch_events=request.touch_events,
        by=request.by,
        model=request.model,
        window_seconds=window_seconds,
        value_property=request.value_property,
        filters=request.filters,
        start=start,
        end=end,
        touch_start=start - timedelta(seconds=window_seconds),
        binder=binder,
    )
    compiled = render(query, binder, dialect)
    total = 0
    total_value = 0.0
    rows: list[list[Any]] = []
    for touch, conversions, value in _run(warehouse, compiled):
        if touch is None:
            total, total_value = int(conversions), float(value or 0.0)
        else:
            rows.append([touch, int(conversions), float(value or 0.0)])
    attributed = sum(r[1] for r in rows)
    attributed_value = sum(r[2] for r in rows)
    if total - attributed:
        rows.append([None, total - attributed, total_value - attributed_value])
    for row in rows:
        row.append(_ratio(row[1], total))
    return AttributionOut(
        columns=[request.by, "conversions", "value", "share"],
        rows=rows,
        sql=compiled.sql,
        total_conversions=total,
        unattributed=total - attributed,
    )


# -- experiments -----------------------------------------------------------------------------
def evaluate_experiment(request: ExperimentIn) -> ExperimentOut:
    """Statistics of an experiment from per-arm sufficient statistics (see ``stats.evaluate``).

    Raises :class:`InvalidInput` naming the bad field (e.g. conversions > n).
    """

    def arm(values: dict[str, Any]) -> stats.Arm:
        if request.metric == "binomial":
            return stats.BinomialArm(n=int(values["n"]), conversions=int(values["conversions"]))
        return stats.MeanArm(
            n=int(values["n"]),
            sum=float(values["sum"]),
            sum_squares=float(values["sum_squares"]),
            pre_sum=values.get("pre_sum"),
            pre_sum_squares=values.get("pre_sum_squares"),
            sum_products=values.get("sum_products"),
        )

    result = stats.evaluate(
        control=arm(request.control),
        treatments={name: arm(v) for name, v in request.treatments.items()},
        alpha=request.alpha,
        correction=request.correction,
        weights=request.weights,
        cuped=request.cuped,
        tau=request.sequential_tau,
    )
    return ExperimentOut(
        metric=result.metric,
        alpha=result.alpha,
        correction=result.correction,
        control_mean=result.control_mean,
        srm_p_value=result.srm_p_value,
        cuped=result.cuped,
        cuped_theta=result.cuped_theta,
        treatments={
            name: TreatmentOut(
                difference=c.difference,
                lift=c.lift,
                ci_low=c.ci_low,
                ci_high=c.ci_high,
                p_value=c.p_value,
                chance_to_win=c.chance_to_win,
                lift_ci_low=c.lift_ci_low,
                lift_ci_high=c.lift_ci_high,
                standard_error=c.standard_error,
                p_value_adjusted=c.p_value_adjusted,
                always_valid_p_value=c.always_valid_p_value,
                mean=result.treatment_means[name],
            )
            for name, c in result.comparisons.items()
        },
    )


# -- dispatch and export ---------------------------------------------------------------------
Runner = Callable[..., AnalysisOut]
RUNNERS: dict[str, Runner] = {
    "events": event_analysis,
    "funnel": funnel,
    "retention": retention,
    "distribution": distribution,
    "attribution": attribution,
}


def parse_definition(kind: str, definition: dict[str, Any]) -> BaseModel:
    """The typed request of ``kind`` from a stored definition; :class:`InvalidInput` if invalid."""
    model = INPUT_MODELS.get(kind)
    if model is None:
        raise InvalidInput(f"unknown analysis kind {kind!r}", detail={"field": "kind"})
    try:
        return model.model_validate(definition)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "definition"
        raise InvalidInput(
            f"definition.{where}: {first.get('msg', 'invalid')}", detail={"field": "definition"}
        ) from exc


def run_analysis(
    *,
    warehouse: Warehouse,
    project_id: int,
    kind: str,
    definition: dict[str, Any],
    now: datetime,
    principal: Principal | None = None,
) -> AnalysisOut:
    """Run a stored or ad-hoc analysis definition of ``kind``."""
    request = parse_definition(kind, definition)
    return RUNNERS[kind](
        warehouse=warehouse,
        project_id=project_id,
        request=request,
        now=now,
        principal=principal,
    )


def to_csv(result: TableOut) -> str:
    """The result table as CSV (header row first, ISO dates, empty cells for nulls)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()


# -- saved analyses --------------------------------------------------------------------------
def _saved(session: Session, project_id: int, analysis_id: int) -> SavedAnalysis:
    row = session.get(SavedAnalysis, analysis_id)
    if row is None or row.project_id != project_id:
        raise NotFound(f"unknown saved analysis {analysis_id}")
    return row


def create_saved(
    *,
    session: Session,
    project_id: int,
    analysis_in: SavedAnalysisIn,
    now: datetime,
    created_by: int | None = None,
) -> SavedAnalysisOut:
    """Save an analysis definition (validated against its kind's request schema)."""
    definition = parse_definition(analysis_in.kind, analysis_in.definition)
    row = SavedAnalysis(
        project_id=project_id,
        name=analysis_in.name,
        kind=analysis_in.kind,
        definition=definition.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        description=analysis_in.description,
        dashboard=analysis_in.dashboard,
        stage=analysis_in.stage,
        position=analysis_in.position,
        created_by=created_by,
        created_at=utc_naive(now),
        updated_at=utc_naive(now),
    )
    session.add(row)
    session.flush()
    log.info("saved_analysis_created", project_id=project_id, analysis_id=row.id, kind=row.kind)
    return SavedAnalysisOut.model_validate(row)


def list_saved(
    *, session: Session, project_id: int, dashboard: str | None = None
) -> list[SavedAnalysisOut]:
    """Saved analyses of the project, optionally those of one dashboard, in display order."""
    query = select(SavedAnalysis).where(SavedAnalysis.project_id == project_id)
    if dashboard is not None:
        query = query.where(SavedAnalysis.dashboard == dashboard)
    query = query.order_by(SavedAnalysis.dashboard, SavedAnalysis.position, SavedAnalysis.id)
    return [SavedAnalysisOut.model_validate(r) for r in session.scalars(query)]


def get_saved(*, session: Session, project_id: int, analysis_id: int) -> SavedAnalysisOut:
    """One saved analysis; :class:`NotFound` if absent or of another project."""
    return SavedAnalysisOut.model_validate(_saved(session, project_id, analysis_id))


def update_saved(
    *,
    session: Session,
    project_id: int,
    analysis_id: int,
    patch: SavedAnalysisPatch,
    now: datetime,
) -> SavedAnalysisOut:
    """Edit a saved analysis (a new definition is validated against the analysis's kind)."""
    row = _saved(session, project_id, analysis_id)
    if patch.definition is not None:
        parsed = parse_definition(row.kind, patch.definition)
        row.definition = parsed.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for name in ("name", "description", "stage", "position"):
        value = getattr(patch, name)
        if value is not None:
            setattr(row, name, value)
    row.updated_at = utc_naive(now)
    session.flush()
    log.info("saved_analysis_updated", project_id=project_id, analysis_id=row.id)
    return SavedAnalysisOut.model_validate(row)


def delete_saved(*, session: Session, project_id: int, analysis_id: int) -> None:
    """Delete a saved analysis."""
    row = _saved(session, project_id, analysis_id)
    session.delete(row)
    session.flush()
    log.info("saved_analysis_deleted", project_id=project_id, analysis_id=analysis_id)


def run_saved(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    analysis_id: int,
    now: datetime,
    principal: Principal | None = None,
) -> AnalysisOut:
    """Run a saved analysis now."""
    row = _saved(session, project_id, analysis_id)
    return run_analysis(
        warehouse=warehouse,
        project_id=project_id,
        kind=row.kind,
        definition=row.definition,
        now=now,
        principal=principal,
    )


# -- the 3A3R dashboard ----------------------------------------------------------------------
DASHBOARD_3A3R = "3a3r"

#: The default 3A3R metrics of a wealth-management app (demo brokerage events), each a saved
#: analysis the user may edit: (stage, name, kind, definition, description).
DEFAULT_3A3R: list[tuple[str, str, AnalysisKind, dict[str, Any], str]] = [
    (
        "awareness",
        "App visitors",
        "events",
        {"series": [{"event": "$AppStart", "measure": "uniques"}], "bucket": "day"},
        "Distinct users opening the app per day (last 30 days).",
    ),
    (
        "acquisition",
        "New sign-ups",
        "events",
        {"series": [{"event": "$SignUp", "measure": "uniques"}], "bucket": "day"},
        "Users who registered (anonymous → login) per day.",
    ),
    (
        "activation",
        "Sign-up to first fund purchase",
        "funnel",
        {
            "steps": [{"event": "$SignUp"}, {"event": "ViewFundDetail"}, {"event": "BuyFund"}],
            "window_days": 7,
        },
        "Share of new users who view a fund and buy one within 7 days of signing up.",
    ),
    (
        "retention",
        "Weekly active retention",
        "retention",
        {
            "start_event": "$AppStart",
            "return_event": "$AppStart",
            "unit": "week",
            "periods": 4,
            "date_range": {"last_days": 56},
        },
        "Users who open the app again N weeks after their first visit of the period.",
    ),
    (
        "revenue",
        "Fund purchase amount",
        "events",
        {"series": [{"event": "BuyFund", "measure": "sum", "property": "amount"}], "bucket": "day"},
        "Total BuyFund amount (CNY) per day.",
    ),
    (
        "referral",
        "Official-account follows",
        "events",
        {"series": [{"event": "WeChatFollow", "measure": "uniques"}], "bucket": "day"},
        "Users following the WeChat official account, the shareable channel of the brand.",
    ),
]


def ensure_3a3r(*, session: Session, project_id: int, now: datetime) -> None:
    """Seed the 3A3R dashboard's default metrics once per project (edits and deletes stick)."""
    exists = session.scalar(
        select(Dashboard.id).where(
            Dashboard.project_id == project_id, Dashboard.key == DASHBOARD_3A3R
        )
    )
    if exists is not None:
        return
    session.add(Dashboard(project_id=project_id, key=DASHBOARD_3A3R, name="3A3R"))
    for position, (stage, name, kind, definition, description) in enumerate(DEFAULT_3A3R):
        create_saved(
            session=session,
            project_id=project_id,
            analysis_in=SavedAnalysisIn(
                name=name,
                kind=kind,
                definition=definition,
                description=description,
                dashboard=DASHBOARD_3A3R,
                stage=stage,
                position=position,
            ),
            now=now,
        )
    session.flush()
    log.info("dashboard_seeded", project_id=project_id, dashboard=DASHBOARD_3A3R)


def headline(result: AnalysisOut) -> float | None:
    """One number summarising a result, shown on a dashboard tile."""
    if isinstance(result, FunnelOut):
        return result.steps[-1].conversion_overall if result.steps else None
    if isinstance(result, RetentionOut):
        known = [r for r in result.average_rates[1:] if r is not None]
        return known[-1] if known else None
    if isinstance(result, DistributionOut):
        return float(result.total_users)
    if isinstance(result, AttributionOut):
        return float(result.total_conversions)
    values = [r[-1] for r in result.rows if isinstance(r[-1], int | float) and r[0] == 0]
    return float(sum(values)) if values else 0.0


def dashboard(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    key: str,
    now: datetime,
    principal: Principal | None = None,
) -> DashboardOut:
    """Compute every metric of a dashboard; a metric that fails (e.g. a property the project
    does not have yet) carries its error instead of failing the whole dashboard."""
    if key == DASHBOARD_3A3R:
        ensure_3a3r(session=session, project_id=project_id, now=now)
    elif session.scalar(
        select(Dashboard.id).where(Dashboard.project_id == project_id, Dashboard.key == key)
    ) is None and not list_saved(session=session, project_id=project_id, dashboard=key):
        raise NotFound(f"unknown dashboard {key!r}")
    metrics: list[DashboardMetricOut] = []
    for saved in list_saved(session=session, project_id=project_id, dashboard=key):
        try:
            result = run_analysis(
                warehouse=warehouse,
                project_id=project_id,
                kind=saved.kind,
                definition=saved.definition,
                now=now,
                principal=principal,
            )
        except InvalidInput as exc:
            metrics.append(
                DashboardMetricOut(
                    analysis_id=saved.id,
                    stage=saved.stage,
                    name=saved.name,
                    kind=saved.kind,
                    headline=None,
                    result=None,
                    error=exc.message,
                )
            )
            continue
        metrics.append(
            DashboardMetricOut(
                analysis_id=saved.id,
                stage=saved.stage,
                name=saved.name,
                kind=saved.kind,
                headline=headline(result),
                result=result.model_dump(mode="json", exclude={"sql"}),
            )
        )
    return DashboardOut(dashboard=key, metrics=metrics)


def dashboard_csv(board: DashboardOut) -> str:
    """A dashboard's tiles as CSV: stage, name, kind, headline, error."""
    return to_csv(
        TableOut(
            kind="events",
            columns=["stage", "name", "kind", "headline", "error"],
            rows=[[m.stage, m.name, m.kind, m.headline, m.error] for m in board.metrics],
        )
    )
