"""The rule DSL shared by tags and segments: pydantic models, ``parse`` and ``dump``.

A rule is a tree ``{relation: and|or, rules: [...]}`` whose leaves are profile, event, sequence,
tag and segment rules (see docs/rules.md). ``parse`` validates a JSON-like value and raises
:class:`InvalidRule` whose message names the path of the bad part, e.g.
``rules[1].measure.aggregator: Input should be 'count', 'distinct_count', …``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    ValidationError,
    model_validator,
)

from flywheel.core.errors import FlywheelError

PropertyName = Annotated[str, Field(pattern=r"^[A-Za-z_$][A-Za-z0-9_$]{0,99}$")]
EventName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_$][\w$]*$")]
Scalar = Annotated[
    StrictBool | StrictInt | StrictFloat | Annotated[str, Field(max_length=1000)],
    Field(union_mode="left_to_right"),
]

#: Functions on one value (profile property, event property, tag value).
ValueFunction = Literal[
    "equal",
    "notEqual",
    "in",
    "notIn",
    "contain",
    "notContain",
    "isSet",
    "notSet",
    "isTrue",
    "isFalse",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "before",
    "after",
    "relativeWithin",
    "relativeBefore",
    "relativeNext",
]
#: Comparisons of an event measure; ``did`` ≡ count ≥ 1, ``notDid`` ≡ count = 0.
MeasureFunction = Literal["equal", "notEqual", "gt", "gte", "lt", "lte", "between", "did", "notDid"]

_ARITY: dict[str, tuple[int, int]] = {
    "equal": (1, 1000),
    "notEqual": (1, 1000),
    "in": (1, 1000),
    "notIn": (1, 1000),
    "contain": (1, 1),
    "notContain": (1, 1),
    "isSet": (0, 0),
    "notSet": (0, 0),
    "isTrue": (0, 0),
    "isFalse": (0, 0),
    "gt": (1, 1),
    "gte": (1, 1),
    "lt": (1, 1),
    "lte": (1, 1),
    "between": (2, 2),
    "before": (1, 1),
    "after": (1, 1),
    "relativeWithin": (1, 1),
    "relativeBefore": (1, 1),
    "relativeNext": (1, 1),
    "did": (0, 0),
    "notDid": (0, 0),
}
_RELATIVE = {"relativeWithin", "relativeBefore", "relativeNext"}
_NUMERIC = {"gt", "gte", "lt", "lte", "between"}


class InvalidRule(FlywheelError):
    """A rule that does not validate or cannot run; ``detail.path`` names the bad part."""

    status = 422
    code = "invalid_rule"


def _check_params(function: str, params: list[Any], *, numeric: bool = False) -> None:
    low, high = _ARITY[function]
    if not low <= len(params) <= high:
        want = str(low) if low == high else f"{low}..{high}"
        raise ValueError(f"function {function!r} takes {want} params, got {len(params)}")
    if function in _RELATIVE and not (
        isinstance(params[0], int) and not isinstance(params[0], bool) and 0 < params[0] <= 36500
    ):
        raise ValueError(f"function {function!r} takes a whole number of days 1..36500")
    if numeric and function in _NUMERIC | {"equal", "notEqual"}:
        for value in params:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(  # noqa: TRY004 (pydantic reports ValueError only)
                    f"function {function!r} compares numbers, got {value!r}"
                )
            if abs(value) > 1e18:
                raise ValueError(f"{value!r} is out of range (±1e18)")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Model):
    """One condition on a property: ``{field, function, params}``."""

    field: PropertyName
    function: ValueFunction
    params: list[Scalar] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _arity(self) -> Condition:
        _check_params(self.function, self.params)
        return self


class Filter(_Model):
    """Conditions on event properties combined by ``relation``."""

    relation: Literal["and", "or"] = "and"
    conditions: list[Condition] = Field(min_length=1, max_length=50)


class Window(_Model):
    """When events count. Exactly one of:

    * ``relative_days: N`` – the last N calendar days in Asia/Shanghai, today included:
      from 00:00 (Shanghai) N-1 days ago up to now;
    * ``relative_trading_days: N`` – from 00:00 of the oldest of the last N trading days
      (today included when it is one) up to now;
    * ``relative``: ``today``, ``yesterday``, ``this_week`` (from Monday), ``last_week``,
      ``this_month``, ``last_month``, ``this_year``;
    * ``from``/``to`` – Shanghai calendar dates, both inclusive.
    """

    relative_days: int | None = Field(default=None, ge=1, le=3650)
    relative_trading_days: int | None = Field(default=None, ge=1, le=2500)
    relative: (
        Literal[
            "today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year"
        ]
        | None
    ) = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        kinds = [
            self.relative_days is not None,
            self.relative_trading_days is not None,
            self.relative is not None,
            self.from_ is not None or self.to is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                "give exactly one of relative_days, relative_trading_days, relative, from/to"
            )
        if (self.from_ is None) != (self.to is None):
            raise ValueError("an absolute window needs both 'from' and 'to'")
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise ValueError("'from' is after 'to'")
        return self


class Measure(_Model):
    """What is measured per user: ``aggregator`` over events named ``event`` (any when null)."""

    event: EventName | None = None
    aggregator: Literal["count", "distinct_count", "sum", "avg", "max", "min"] = "count"
    property: PropertyName | None = None

    @model_validator(mode="after")
    def _property(self) -> Measure:
        if self.aggregator == "count" and self.property is not None:
            raise ValueError("aggregator 'count' takes no property")
        if self.aggregator != "count" and self.property is None:
            raise ValueError(f"aggregator {self.aggregator!r} needs a property")
        return self


class ProfileRule(_Model):
    """A condition on a profile property (the users table)."""

    type: Literal["profile_rule"] = "profile_rule"
    field: PropertyName
    function: ValueFunction
    params: list[Scalar] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _arity(self) -> ProfileRule:
        _check_params(self.function, self.params)
        return self


class EventRule(_Model):
    """A comparison of a per-user event measure in a window; users without events measure 0
    (count, distinct_count, sum) or nothing (avg, max, min)."""

    type: Literal["event_rule"] = "event_rule"
    measure: Measure
    window: Window
    filters: Filter | None = None
    function: MeasureFunction
    params: list[Scalar] = Field(default_factory=list, max_length=2)

    @model_validator(mode="after")
    def _arity(self) -> EventRule:
        _check_params(self.function, self.params, numeric=True)
        return self


class Duration(_Model):
    """A length of time between two sequence steps."""

    days: int = Field(default=0, ge=0, le=3650)
    hours: int = Field(default=0, ge=0, le=87600)
    minutes: int = Field(default=0, ge=0, le=5256000)

    @property
    def seconds(self) -> int:
        return self.days * 86400 + self.hours * 3600 + self.minutes * 60

    @model_validator(mode="after")
    def _positive(self) -> Duration:
        if self.seconds <= 0:
            raise ValueError("a duration must be longer than zero")
        return self


class SequenceStep(_Model):
    """One step: an event (with filters). ``within`` bounds the time since the previous step;
    ``negate`` turns the step into "did not do it within ``within``"."""

    event: EventName
    filters: Filter | None = None
    within: Duration | None = None
    negate: bool = False

    @model_validator(mode="after")
    def _negated_needs_within(self) -> SequenceStep:
        if self.negate and self.within is None:
            raise ValueError("a negated step needs 'within'")
        return self


class SequenceRule(_Model):
    """Ordered steps; the first step happens inside ``window``. A negated step holds once its
    ``within`` has fully elapsed before now without the event."""

    type: Literal["sequence_rule"] = "sequence_rule"
    window: Window
    steps: list[SequenceStep] = Field(min_length=2, max_length=6)

    @model_validator(mode="after")
    def _first_positive(self) -> SequenceRule:
        if self.steps[0].negate:
            raise ValueError("the first step cannot be negated")
        if self.steps[0].within is not None:
            raise ValueError("the first step takes no 'within' (the window bounds it)")
        return self


class TagRule(_Model):
    """A condition on a tag's value: its latest version, or the version of ``day``."""

    type: Literal["tag_rule"] = "tag_rule"
    tag: PropertyName
    function: ValueFunction
    params: list[Scalar] = Field(default_factory=list, max_length=1000)
    day: date | None = None

    @model_validator(mode="after")
    def _arity(self) -> TagRule:
        _check_params(self.function, self.params)
        return self


class SegmentRule(_Model):
    """Membership (``in``) or non-membership (``notIn``) of another segment."""

    type: Literal["segment_rule"] = "segment_rule"
    segment_id: int = Field(ge=1, le=2**31 - 1)
    function: Literal["in", "notIn"] = "in"


def _rule_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is None and ("relation" in value or "rules" in value):
            return "rules_relation"
        return kind if isinstance(kind, str) else None
    kind = getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


class RuleGroup(_Model):
    """``{relation, rules}``; ``type`` ``rules_relation`` is optional."""

    type: Literal["rules_relation"] = "rules_relation"
    relation: Literal["and", "or"] = "and"
    rules: list[Rule] = Field(min_length=1, max_length=50)


Rule = Annotated[
    Annotated[ProfileRule, Tag("profile_rule")]
    | Annotated[EventRule, Tag("event_rule")]
    | Annotated[SequenceRule, Tag("sequence_rule")]
    | Annotated[TagRule, Tag("tag_rule")]
    | Annotated[SegmentRule, Tag("segment_rule")]
    | Annotated[RuleGroup, Tag("rules_relation")],
    Discriminator(
        _rule_kind,
        custom_error_type="invalid_rule_type",
        custom_error_message=(
            "unknown rule type: use profile_rule, event_rule, sequence_rule, tag_rule, "
            "segment_rule or a {relation, rules} group"
        ),
    ),
]
RuleGroup.model_rebuild()

_TAGS = {
    "profile_rule",
    "event_rule",
    "sequence_rule",
    "tag_rule",
    "segment_rule",
    "rules_relation",
}
MAX_DEPTH = 8


def error_path(loc: tuple[int | str, ...]) -> str:
    """``('rules', 1, 'event_rule', 'measure')`` → ``rules[1].measure``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS or part.startswith("function-") or part == "nullable[...]":
            continue
        else:
            out += f".{part}" if out else part
    return out or "(rule)"


def _depth(group: RuleGroup) -> int:
    return 1 + max((_depth(r) for r in group.rules if isinstance(r, RuleGroup)), default=0)


def parse(value: Any) -> RuleGroup:
    """Validate a JSON-like rule. Raises :class:`InvalidRule` naming the first bad part."""
    if isinstance(value, RuleGroup):
        return value
    try:
        group = RuleGroup.model_validate(value)
    except ValidationError as exc:
        errors = [{"path": error_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise InvalidRule(
            f"{first['path']}: {first['message']}",
            detail={"path": first["path"], "errors": errors},
        ) from None
    if _depth(group) > MAX_DEPTH:
        raise InvalidRule(f"rules nest deeper than {MAX_DEPTH} levels", detail={"path": "rules"})
    return group


def dump(rule: RuleGroup) -> dict[str, Any]:
    """The JSON form of a rule (what ``parse`` accepts), without unset optional parts."""
    data: dict[str, Any] = rule.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def referenced_tags(rule: RuleGroup) -> set[str]:
    """Names of the tags a rule reads (for lineage)."""
    found: set[str] = set()
    for leaf in leaves(rule):
        if isinstance(leaf, TagRule):
            found.add(leaf.tag)
    return found


def referenced_segments(rule: RuleGroup) -> set[int]:
    """Ids of the segments a rule reads (for lineage and cycle checks)."""
    return {leaf.segment_id for leaf in leaves(rule) if isinstance(leaf, SegmentRule)}


def leaves(rule: RuleGroup) -> list[ProfileRule | EventRule | SequenceRule | TagRule | SegmentRule]:
    """Every non-group rule of the tree, depth first."""
    out: list[ProfileRule | EventRule | SequenceRule | TagRule | SegmentRule] = []
    for child in rule.rules:
        if isinstance(child, RuleGroup):
            out.extend(leaves(child))
        else:
            out.append(child)
    return out
