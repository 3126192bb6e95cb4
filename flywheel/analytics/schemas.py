"""Inputs and outputs of the analytics API.

Property references name a column of the project's warehouse: ``amount`` or ``event.amount`` is an
event property, ``user.branch`` a profile property, ``tag.rfm`` the user's latest value of a tag.
Filters are AND-ed: property conditions and segment membership (``{"segment_id": 12}``,
``"exclude": true`` for non-members).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: A float input that must be finite (NaN/inf would poison statistics and JSON answers).
Finite = Annotated[float, Field(allow_inf_nan=False)]
Scalar = bool | int | Finite | str
#: Business dates are limited to a sane range so that date arithmetic never overflows.
BusinessDate = Annotated[date, Field(ge=date(1970, 1, 1), le=date(2199, 12, 31))]
FilterOp = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "is_set", "is_not_set"
]
Bucket = Literal["hour", "day", "week", "month", "total"]
Measure = Literal["count", "uniques", "per_user", "sum", "avg", "min", "max", "median"]
AnalysisKind = Literal["events", "funnel", "retention", "distribution", "attribution"]


class PropertyFilter(BaseModel):
    """One condition on an event property (``amount``) or a profile property (``user.branch``)."""

    model_config = ConfigDict(extra="forbid")

    property: str = Field(min_length=1, max_length=110)
    op: FilterOp = "eq"
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_matches_op(self) -> PropertyFilter:
        if self.op in {"is_set", "is_not_set"}:
            return self
        if self.value is None:
            raise ValueError(f"filter on {self.property!r}: op {self.op!r} needs a value")
        if self.op in {"in", "not_in"} and not isinstance(self.value, list):
            raise ValueError(f"filter on {self.property!r}: op {self.op!r} needs a list value")
        if self.op not in {"in", "not_in"} and isinstance(self.value, list):
            raise ValueError(f"filter on {self.property!r}: op {self.op!r} needs a single value")
        return self


class SegmentFilter(BaseModel):
    """Only users who are members of segment ``segment_id`` (its current snapshot)."""

    model_config = ConfigDict(extra="forbid")

    segment_id: int = Field(gt=0)
    exclude: bool = False


Filter = PropertyFilter | SegmentFilter


class DateRange(BaseModel):
    """Business days in Asia/Shanghai, both ends included: ``{"from", "to"}`` or ``{"last_days"}``.

    ``last_days`` counts back from today (Shanghai) included; the default is the last 30 days.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_date: BusinessDate | None = Field(default=None, alias="from")
    to_date: BusinessDate | None = Field(default=None, alias="to")
    last_days: int | None = Field(default=None, ge=1, le=3660)

    @model_validator(mode="after")
    def _one_form(self) -> DateRange:
        if self.last_days is not None and (self.from_date or self.to_date):
            raise ValueError("give either from/to or last_days, not both")
        if (self.from_date is None) != (self.to_date is None):
            raise ValueError("from and to go together")
        if self.from_date and self.to_date and self.from_date > self.to_date:
            raise ValueError("from is after to")
        if self.last_days is None and self.from_date is None:
            self.last_days = 30
        return self


class EventSeries(BaseModel):
    """One measured series: an event (``null`` = any event), a measure and its own filters."""

    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(default=None, min_length=1, max_length=100)
    measure: Measure = "count"
    property: str | None = Field(default=None, max_length=110)
    filters: list[Filter] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _property_for_numeric_measure(self) -> EventSeries:
        if self.measure in {"sum", "avg", "min", "max", "median"} and not self.property:
            raise ValueError(f"measure {self.measure!r} needs a numeric property")
        return self


class EventAnalysisIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series: list[EventSeries] = Field(min_length=1, max_length=10)
    date_range: DateRange = Field(default_factory=DateRange)
    bucket: Bucket = "day"
    group_by: list[str] = Field(default_factory=list, max_length=3)
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    limit: int = Field(default=10_000, ge=1, le=100_000)


class FunnelStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=100)
    filters: list[Filter] = Field(default_factory=list, max_length=20)


class FunnelIn(BaseModel):
    """Ordered steps, each after the previous one and within ``window_days`` of the first.

    A user enters at their first step-1 event in the date range. ``dropped_step`` (2…n) asks for
    up to ``dropped_limit`` users who reached the step before it but not that step.
    """

    model_config = ConfigDict(extra="forbid")

    steps: list[FunnelStep] = Field(min_length=2, max_length=10)
    date_range: DateRange = Field(default_factory=DateRange)
    window_days: float = Field(default=7, gt=0, le=365)
    group_by: str | None = Field(default=None, max_length=110)
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    dropped_step: int | None = Field(default=None, ge=2)
    dropped_limit: int = Field(default=100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _dropped_step_exists(self) -> FunnelIn:
        if self.dropped_step is not None and self.dropped_step > len(self.steps):
            raise ValueError(f"dropped_step {self.dropped_step} > number of steps")
        return self


class RetentionIn(BaseModel):
    """Cohorts by first ``start_event`` per unit; retained = did ``return_event`` N units later."""

    model_config = ConfigDict(extra="forbid")

    start_event: str | None = Field(default=None, min_length=1, max_length=100)
    return_event: str | None = Field(default=None, min_length=1, max_length=100)
    start_filters: list[Filter] = Field(default_factory=list, max_length=20)
    return_filters: list[Filter] = Field(default_factory=list, max_length=20)
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    date_range: DateRange = Field(default_factory=DateRange)
    unit: Literal["day", "week", "month"] = "day"
    periods: int = Field(default=7, ge=1, le=90)


class DistributionIn(BaseModel):
    """How many users fall in each bucket of a per-user measure (event count or property sum)."""

    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(default=None, min_length=1, max_length=100)
    measure: Literal["count", "sum", "avg", "max"] = "count"
    property: str | None = Field(default=None, max_length=110)
    edges: list[Finite] | None = Field(default=None, min_length=1, max_length=50)
    date_range: DateRange = Field(default_factory=DateRange)
    filters: list[Filter] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _check(self) -> DistributionIn:
        if self.measure != "count" and not self.property:
            raise ValueError(f"measure {self.measure!r} needs a numeric property")
        if self.edges is not None and sorted(set(self.edges)) != self.edges:
            raise ValueError("edges must be strictly increasing")
        return self


class AttributionIn(BaseModel):
    """Credit each conversion to the first or last touch within ``window_days`` before it."""

    model_config = ConfigDict(extra="forbid")

    conversion_event: str = Field(min_length=1, max_length=100)
    touch_events: list[str] = Field(min_length=1, max_length=20)
    by: str = Field(min_length=1, max_length=110, description="touch property, e.g. utm_source")
    model: Literal["first_touch", "last_touch"] = "last_touch"
    window_days: float = Field(default=7, gt=0, le=365)
    value_property: str | None = Field(default=None, max_length=110)
    date_range: DateRange = Field(default_factory=DateRange)
    filters: list[Filter] = Field(default_factory=list, max_length=20)


# -- outputs ---------------------------------------------------------------------------------
class TableOut(BaseModel):
    """Every analysis answers with a table (``columns`` + ``rows``) plus its own summary."""

    kind: AnalysisKind
    columns: list[str]
    rows: list[list[Any]]
    sql: str | None = None


class EventAnalysisOut(TableOut):
    kind: AnalysisKind = "events"


class FunnelStepOut(BaseModel):
    step: int
    event: str
    group: Any = None
    users: int
    conversion_from_previous: float | None
    conversion_overall: float | None
    median_seconds_from_previous: float | None
    median_seconds_from_start: float | None


class FunnelOut(TableOut):
    kind: AnalysisKind = "funnel"
    steps: list[FunnelStepOut]
    dropped_step: int | None = None
    dropped_user_ids: list[int] | None = None


class RetentionCohortOut(BaseModel):
    cohort: date
    size: int
    retained: list[int | None]
    rates: list[float | None]


class RetentionOut(TableOut):
    kind: AnalysisKind = "retention"
    unit: str
    cohorts: list[RetentionCohortOut]
    average_rates: list[float | None]


class DistributionOut(TableOut):
    kind: AnalysisKind = "distribution"
    total_users: int


class AttributionOut(TableOut):
    kind: AnalysisKind = "attribution"
    total_conversions: int
    unattributed: int


AnalysisOut = EventAnalysisOut | FunnelOut | RetentionOut | DistributionOut | AttributionOut


# -- experiments -----------------------------------------------------------------------------
class BinomialStatsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(gt=0)
    conversions: int = Field(ge=0)

    @model_validator(mode="after")
    def _conversions_within_n(self) -> BinomialStatsIn:
        if self.conversions > self.n:
            raise ValueError(f"conversions ({self.conversions}) exceeds n ({self.n})")
        return self


class MeanStatsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=2)
    sum: Finite
    sum_squares: Finite = Field(ge=0)
    pre_sum: Finite | None = None
    pre_sum_squares: Finite | None = Field(default=None, ge=0)
    sum_products: Finite | None = None

    @model_validator(mode="after")
    def _variance_not_negative(self) -> MeanStatsIn:
        if self.sum_squares - self.sum * self.sum / self.n < -1e-9 * max(self.sum_squares, 1.0):
            raise ValueError("sum_squares is smaller than sum²/n: the variance would be negative")
        return self


class ExperimentIn(BaseModel):
    """Sufficient statistics of an experiment run anywhere.

    ``binomial``: ``{"n", "conversions"}`` per arm; ``mean``: ``{"n", "sum", "sum_squares"}``
    (plus ``pre_sum``, ``pre_sum_squares``, ``sum_products`` for CUPED). ``weights`` gives planned
    traffic shares per arm name (``control`` and each treatment) for the SRM check.
    """

    model_config = ConfigDict(extra="forbid")

    metric: Literal["binomial", "mean"]
    control: dict[str, Any]
    treatments: dict[str, dict[str, Any]] = Field(min_length=1, max_length=20)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["holm", "bh", "none"] = "holm"
    weights: dict[str, Finite] | None = None
    cuped: bool | None = None
    sequential_tau: Finite | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _arms_match_metric(self) -> ExperimentIn:
        model: type[BaseModel] = BinomialStatsIn if self.metric == "binomial" else MeanStatsIn
        arms = {
            "control": self.control,
            **{f"treatments.{k}": v for k, v in self.treatments.items()},
        }
        for where, arm in arms.items():
            try:
                model.model_validate(arm)
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in (where, *first.get("loc", ())))
                message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
                raise ValueError(f"{field}: {message}") from None
        return self


class TreatmentOut(BaseModel):
    difference: float
    lift: float | None
    ci_low: float
    ci_high: float
    p_value: float
    chance_to_win: float
    lift_ci_low: float | None
    lift_ci_high: float | None
    standard_error: float
    p_value_adjusted: float | None
    always_valid_p_value: float
    mean: float


class ExperimentOut(BaseModel):
    metric: str
    alpha: float
    correction: str
    control_mean: float
    srm_p_value: float
    cuped: bool
    cuped_theta: float | None
    treatments: dict[str, TreatmentOut]


# -- saved analyses and dashboards -----------------------------------------------------------
class SavedAnalysisIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: AnalysisKind
    definition: dict[str, Any]
    description: str = Field(default="", max_length=2000)
    dashboard: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,64}$")
    stage: str | None = Field(default=None, max_length=64)
    position: int = 0


class SavedAnalysisPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    definition: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=2000)
    stage: str | None = Field(default=None, max_length=64)
    position: int | None = None


class SavedAnalysisOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: AnalysisKind
    definition: dict[str, Any]
    description: str
    dashboard: str | None
    stage: str | None
    position: int
    created_at: datetime
    updated_at: datetime


class DashboardMetricOut(BaseModel):
    analysis_id: int
    stage: str | None
    name: str
    kind: AnalysisKind
    headline: float | None
    result: dict[str, Any] | None
    error: str | None = None


class DashboardOut(BaseModel):
    dashboard: str
    metrics: list[DashboardMetricOut]


# -- journey and campaign reports ------------------------------------------------------------
#: Drill-down dimensions of a journey report.
ReportBreakdown = Literal["channel", "branch", "variant", "segment"]
#: How a channel bills: per message sent, or per SMS segment.
PriceUnit = Literal["message", "sms_segment"]


class NodeMetrics(BaseModel):
    """Counts of one journey node (or one node within a drill-down group).

    ``entered``: node entries (a customer re-entering counts again); ``users``: distinct
    customers who entered. Message counts are messages that reached the stage (a delivered
    message also counts as sent). ``converted``: customers who entered the node and reached the
    primary goal afterwards (within its window from their journey entry). See
    ``docs/analytics.md`` for how entry, exit and sending nodes are counted.
    """

    entered: int = 0
    users: int = 0
    prepared: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    failed: int = 0
    blocked: int = 0
    blocked_by_reason: dict[str, int] = Field(default_factory=dict)
    converted: int | None = None


class JourneyNodeReport(NodeMetrics):
    node_id: str
    type: str
    label: str | None = None
    #: Conversions credited to this node by last touch (its message was the last sent before
    #: the conversion).
    attributed_conversions: int = 0
    cost: float = 0.0


class GoalReport(BaseModel):
    """One goal: a journey goal metric (``kind`` metric, keyed by its event) or a goal node
    (``kind`` node, keyed by the node id, counted from ``$JourneyGoal``)."""

    key: str
    kind: Literal["metric", "node"]
    event: str
    window_seconds: int
    conversions: int
    rate: float | None


class VariantReport(BaseModel):
    """Conversion to the primary goal of one variant; statistics versus the baseline (None
    for the baseline itself)."""

    variant: str
    baseline: bool
    users: int
    conversions: int
    rate: float | None
    planned_share: float | None = None
    difference: float | None = None
    lift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    always_valid_p_value: float | None = None
    chance_to_win: float | None = None


class ExperimentReport(BaseModel):
    goal: str | None
    baseline: str | None
    alpha: float
    #: Sample-ratio-mismatch p-value against the planned split (None without a plan).
    srm_p_value: float | None
    variants: list[VariantReport]
    note: str | None = None


class ChannelCost(BaseModel):
    channel: str
    unit: PriceUnit | None
    unit_price: float | None
    messages_sent: int
    billed_units: int
    cost: float
    #: Conversions credited to the channel by last touch.
    conversions: int
    cost_per_conversion: float | None


class BreakdownRow(NodeMetrics):
    group: str | None
    node_id: str


class JourneyReportOut(BaseModel):
    journey_id: int
    name: str
    campaign: str | None
    version: int | None
    from_date: date | None
    to_date: date | None
    generated_at: datetime
    currency: Literal["CNY"] = "CNY"
    entrants: int
    conversions: int | None
    conversion_rate: float | None
    primary_goal: str | None
    nodes: list[JourneyNodeReport]
    goals: list[GoalReport]
    experiment: ExperimentReport
    channels: list[ChannelCost]
    cost_total: float
    cost_per_conversion: float | None
    breakdown_by: ReportBreakdown | None = None
    breakdown: list[BreakdownRow] = Field(default_factory=list)


class CampaignJourneyRow(NodeMetrics):
    """One journey of a campaign (or the campaign total, ``journey_id`` None)."""

    journey_id: int | None
    name: str
    entrants: int = 0
    conversions: int | None = None
    conversion_rate: float | None = None
    cost: float = 0.0


class CampaignReportOut(BaseModel):
    campaign: str
    from_date: date | None
    to_date: date | None
    generated_at: datetime
    currency: Literal["CNY"] = "CNY"
    total: CampaignJourneyRow
    journeys: list[CampaignJourneyRow]
    channels: list[ChannelCost]
    cost_per_conversion: float | None


class ChannelPriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: PriceUnit = "message"
    #: CNY per unit, e.g. 0.045 for an SMS segment.
    unit_price: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]


class ChannelPriceOut(BaseModel):
    channel: str
    unit: PriceUnit
    unit_price: float
    currency: Literal["CNY"] = "CNY"
    updated_by: str
    updated_at: datetime


class LiveNodeCounts(BaseModel):
    """Live numbers of one node: engine counters, customers there now, message statuses."""

    node_id: str
    type: str
    #: Customers who reached the node (its ``entered`` counter).
    entered: int
    #: Customers in flight at the node now (active or waiting).
    active: int
    counters: dict[str, int]
    messages: dict[str, int]
    blocked: dict[str, int]


class LiveCountsOut(BaseModel):
    """Per node and for the whole journey; the shape of ``GET /journeys/{id}/stats``, so the
    console's canvas reads the stream and the polled numbers alike."""

    journey_id: int
    version: int | None
    #: Journey occurrences started (every state, whatever its status).
    entered: int
    #: Occurrences active or waiting now.
    in_flight: int
    #: Occurrences that ended done (exit node or control group).
    completed: int
    #: Goal counters by event, summed over goal nodes and the journey's goal metrics.
    goals: dict[str, int]
    nodes: list[LiveNodeCounts]
