"""Tag definitions in and out, and the spec of each tag kind."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flywheel.rules.schema import Filter, Measure, PropertyName, RuleGroup, Window

TagKind = Literal[
    "rule", "metric", "first_last", "preference", "rfm", "sql", "imported", "realtime"
]
Schedule = Literal["daily", "hourly", "manual"]
TagName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleValue(_Spec):
    """One value of a rule tag and the rule that earns it (the first matching value wins)."""

    value: str = Field(min_length=1, max_length=100)
    rule: RuleGroup


class RuleTagSpec(_Spec):
    """Up to 24 values, each a rule; a customer gets the first value whose rule holds."""

    values: list[RuleValue] = Field(min_length=1, max_length=24)


class Bucket(_Spec):
    """``[min, max)``; an absent bound is open."""

    value: str = Field(min_length=1, max_length=100)
    min: float | None = None
    max: float | None = None


class MetricTagSpec(_Spec):
    """A per-customer measure (count / sum / avg …) bucketed by ranges or quantiles.

    Customers without events measure 0 for count, distinct_count and sum (they get a bucket)
    and nothing for avg/max/min (no value).
    """

    measure: Measure
    window: Window
    filters: Filter | None = None
    buckets: list[Bucket] | None = Field(default=None, min_length=1, max_length=24)
    quantiles: int | None = Field(default=None, ge=2, le=20)

    @model_validator(mode="after")
    def _one(self) -> MetricTagSpec:
        if (self.buckets is None) == (self.quantiles is None):
            raise ValueError("give exactly one of buckets, quantiles")
        return self


class FirstLastTagSpec(_Spec):
    """The first or last occurrence of an event: its time, date, days since, or a property."""

    event: str = Field(min_length=1, max_length=100)
    which: Literal["first", "last"] = "last"
    output: Literal["time", "date", "days_since", "property"] = "date"
    property: PropertyName | None = None
    window: Window | None = None
    filters: Filter | None = None

    @model_validator(mode="after")
    def _property(self) -> FirstLastTagSpec:
        if (self.output == "property") != (self.property is not None):
            raise ValueError("output 'property' needs 'property' (and only it does)")
        return self


class PreferenceTagSpec(_Spec):
    """The top-N values of an event property (favourite fund category), by count or a sum."""

    event: str = Field(min_length=1, max_length=100)
    property: PropertyName
    window: Window
    top_n: int = Field(default=1, ge=1, le=5)
    weight_property: PropertyName | None = None
    filters: Filter | None = None


class RfmTagSpec(_Spec):
    """Recency, frequency, monetary scores 1–5 (quintiles) as ``R5F3M4``."""

    event: str = Field(default="BuyFund", min_length=1, max_length=100)
    monetary_property: PropertyName = "amount"
    window: Window = Window(relative_days=365)


class SqlTagSpec(_Spec):
    """A read-only SELECT returning ``user_id`` and ``value`` over the analytical views
    ``users``, ``events``, ``items`` and ``tag_values`` of the project."""

    query: str = Field(min_length=1, max_length=20_000)


class ImportedTagSpec(_Spec):
    """Values come from a file upload (user id → value)."""


class RealtimeTagSpec(_Spec):
    """Updated from the event stream within seconds: a count of events in a sliding window, or
    the last value seen of an event property."""

    mode: Literal["window_count", "last_value"]
    event: str = Field(min_length=1, max_length=100)
    window_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 31)
    property: PropertyName | None = None
    filters: Filter | None = None

    @model_validator(mode="after")
    def _mode(self) -> RealtimeTagSpec:
        if self.mode == "window_count" and self.window_minutes is None:
            raise ValueError("mode 'window_count' needs window_minutes")
        if self.mode == "last_value" and self.property is None:
            raise ValueError("mode 'last_value' needs property")
        return self


SPECS: dict[str, type[_Spec]] = {
    "rule": RuleTagSpec,
    "metric": MetricTagSpec,
    "first_last": FirstLastTagSpec,
    "preference": PreferenceTagSpec,
    "rfm": RfmTagSpec,
    "sql": SqlTagSpec,
    "imported": ImportedTagSpec,
    "realtime": RealtimeTagSpec,
}


class TagIn(BaseModel):
    """A tag to create. ``spec`` is validated against ``kind`` (errors name the bad part)."""

    name: TagName
    display_name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    kind: TagKind
    spec: dict[str, Any] = Field(default_factory=dict)
    schedule: Schedule = "daily"


class TagUpdate(BaseModel):
    display_name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    spec: dict[str, Any] | None = None
    schedule: Schedule | None = None
    enabled: bool | None = None


class TagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    name: str
    display_name: str
    description: str
    kind: str
    spec: dict[str, Any]
    schedule: str
    enabled: bool
    created_by: str
    created_at: datetime
    last_run_at: datetime | None
    last_run_day: date | None


class TagRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tag_id: int
    day: date
    started_at: datetime
    seconds: float
    status: str
    users: int
    error: str
    trigger: str


class ValueCount(BaseModel):
    value: str | None
    users: int


class TagDistribution(BaseModel):
    """How many customers hold each value on ``day`` (the latest version at or before it)."""

    tag: str
    day: date | None
    total: int
    values: list[ValueCount]


class TagHistoryPoint(BaseModel):
    day: date
    value: str | None


class TagPreviewOut(BaseModel):
    total: int
    values: list[ValueCount]
    warnings: list[str] = Field(default_factory=list)


class LineageOut(BaseModel):
    """What a tag or segment reads and what reads it."""

    depends_on: list[dict[str, str]]
    used_by: list[dict[str, str]]


class ImportOut(BaseModel):
    imported: int
    day: date
