"""The journey definition (what the canvas saves) and the API's shapes.

A definition is a graph: ``nodes`` (each with an ``id`` and a ``type``) and ``edges``
(``{"from", "to", "port"}``). Nodes with several exits name them with ports:

======================  =========================================================
node type               exits (edge ``port``)
======================  =========================================================
entry_* , delay, send,  one exit (port omitted or ``"next"``)
recommend, set_tag,
set_property,
advisor_task, webhook
wait_event              ``event`` (it happened) and ``timeout``
goal                    ``reached`` and ``timeout``
condition               ``yes`` and ``no``
split                   one port per branch name (``control`` ends: tracked, no send)
tag_branch              one port per case, plus ``else``
exit                    none
======================  =========================================================

Times: durations in seconds; times of day ``HH:MM`` in Asia/Shanghai; all stored in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flywheel.rules.schema import RuleGroup

NODE_ID = r"^[A-Za-z0-9_\-]{1,64}$"
TIME_OF_DAY = r"^([01]\d|2[0-3]):[0-5]\d$"
EVENT_NAME = r"^[$A-Za-z_][A-Za-z0-9_$]{0,99}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# -- pieces ------------------------------------------------------------------------------------
class PropertyFilter(_Model):
    """A test on a trigger event's property, e.g. ``{"property": "amount", "op": "gte",
    "value": 1000}``."""

    property: str = Field(min_length=1, max_length=100)
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists"]
    value: Any = None


class InlineContent(_Model):
    """Content written in the journey itself (checked for prohibited claims at publish).

    Personalisation is the content sandbox's: ``user`` (profile), ``tags``,
    ``recommendations``, ``event`` (the trigger event's properties).
    """

    text: str = Field(min_length=1, max_length=20000)
    subject: str | None = Field(default=None, max_length=500)
    html: str | None = Field(default=None, max_length=200000)
    title: str | None = Field(default=None, max_length=200)
    link: str | None = Field(default=None, max_length=2000)
    fields: dict[str, str] = Field(default_factory=dict)


class ContentRef(_Model):
    """An item of the content library: its approved version is what is sent."""

    content_id: int = Field(ge=1)


class WebhookTarget(_Model):
    url: str = Field(min_length=8, max_length=2000)
    secret: str = Field(min_length=1, max_length=500)
    headers: dict[str, str] = Field(default_factory=dict)


# -- nodes -------------------------------------------------------------------------------------
class _Node(_Model):
    id: str = Field(pattern=NODE_ID)
    #: Free label shown on the canvas.
    label: str | None = Field(default=None, max_length=200)
    #: Canvas position (the engine ignores it).
    position: dict[str, float] | None = None


class EntrySegment(_Node):
    """Everyone in a segment: once at publish, or recurring on a cron schedule (Shanghai)."""

    type: Literal["entry_segment"]
    segment_id: int = Field(ge=1)
    mode: Literal["once", "recurring"] = "once"
    #: Five-field cron in Asia/Shanghai, for ``recurring`` (e.g. ``"0 9 * * 1-5"``).
    cron: str | None = None

    @model_validator(mode="after")
    def _cron_for_recurring(self) -> EntrySegment:
        if self.mode == "recurring" and not self.cron:
            raise ValueError("a recurring segment entry needs a cron schedule")
        return self


class EntrySegmentChange(_Node):
    """Customers as they enter (or leave) a segment ($SegmentEnter / $SegmentLeave)."""

    type: Literal["entry_segment_change"]
    segment_id: int = Field(ge=1)
    change: Literal["enter", "leave"] = "enter"


class EntryEvent(_Node):
    """A customer doing ``event`` (with every filter true) enters."""

    type: Literal["entry_event"]
    event: str = Field(pattern=EVENT_NAME)
    filters: list[PropertyFilter] = Field(default_factory=list)


class EntryNotDone(_Node):
    """Did A but not B within T (完成A未完成B): enters ``within_seconds`` after A unless B
    happened meanwhile."""

    type: Literal["entry_not_done"]
    event: str = Field(pattern=EVENT_NAME)
    filters: list[PropertyFilter] = Field(default_factory=list)
    not_event: str = Field(pattern=EVENT_NAME)
    within_seconds: int = Field(ge=60, le=90 * 86400)


class EntryApi(_Node):
    """Customers pushed by ``POST /api/v1/journeys/{id}/trigger``."""

    type: Literal["entry_api"]


class Delay(_Node):
    """Wait: ``duration`` (seconds), ``until_time`` (next HH:MM), ``until_date_property`` (a
    profile date/datetime property plus an offset), ``trading_days`` (N SSE/SZSE trading days,
    then ``time`` on that day)."""

    type: Literal["delay"]
    mode: Literal["duration", "until_time", "until_date_property", "trading_days"] = "duration"
    seconds: int | None = Field(default=None, ge=1, le=366 * 86400)
    time: str | None = Field(default=None, pattern=TIME_OF_DAY)
    property: str | None = Field(default=None, max_length=100)
    offset_seconds: int = Field(default=0, ge=-366 * 86400, le=366 * 86400)
    days: int | None = Field(default=None, ge=1, le=250)

    @model_validator(mode="after")
    def _fields_for_mode(self) -> Delay:
        needed = {
            "duration": ("seconds",),
            "until_time": ("time",),
            "until_date_property": ("property",),
            "trading_days": ("days",),
        }[self.mode]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.mode} delay needs {', '.join(missing)}")
        return self


class WaitEvent(_Node):
    """Wait for ``event`` up to ``timeout_seconds``: exits ``event`` or ``timeout``."""

    type: Literal["wait_event"]
    event: str = Field(pattern=EVENT_NAME)
    filters: list[PropertyFilter] = Field(default_factory=list)
    timeout_seconds: int = Field(ge=60, le=366 * 86400)


class Condition(_Node):
    """Any rule of the segment DSL, evaluated for the customer now: exits ``yes`` / ``no``."""

    type: Literal["condition"]
    rule: RuleGroup


class SplitBranch(_Model):
    port: str = Field(pattern=NODE_ID)
    weight: float = Field(gt=0, le=100)


class Split(_Node):
    """Random / A-B split by weight (stable per customer). A branch named ``control`` is a
    control group: tracked, never sent to."""

    type: Literal["split"]
    branches: list[SplitBranch] = Field(min_length=2, max_length=20)

    @field_validator("branches")
    @classmethod
    def _unique_ports(cls, value: list[SplitBranch]) -> list[SplitBranch]:
        ports = [b.port for b in value]
        if len(set(ports)) != len(ports):
            raise ValueError("split branch ports must be unique")
        return value


class TagCase(_Model):
    port: str = Field(pattern=NODE_ID)
    values: list[str] = Field(min_length=1)


class TagBranch(_Node):
    """Multi-branch by the customer's current value of ``tag``; ``else`` otherwise."""

    type: Literal["tag_branch"]
    tag: str = Field(min_length=1, max_length=100)
    cases: list[TagCase] = Field(min_length=1, max_length=50)


class Send(_Node):
    """Send ``content`` on ``channel``; ``fallback_channel`` when the channel is unavailable or
    the customer lacks the identity for it. ``product_risk_level`` (R1–R5 as 1–5) marks a
    product promotion for the suitability check (content library items carry their own)."""

    type: Literal["send"]
    channel: str = Field(min_length=2, max_length=32)
    content: InlineContent | ContentRef
    fallback_channel: str | None = Field(default=None, max_length=32)
    webhook: WebhookTarget | None = None
    #: Channel options (in-app ``slot``, email ``from``, SMS ``template_code`` …).
    options: dict[str, Any] = Field(default_factory=dict)
    product_risk_level: int | None = Field(default=None, ge=1, le=5)

    @model_validator(mode="after")
    def _webhook_target(self) -> Send:
        if self.channel == "webhook" and self.webhook is None:
            raise ValueError("a webhook send needs webhook.url and webhook.secret")
        return self


class Webhook(_Node):
    """Call a signed webhook with the customer's context (same delivery as a webhook send)."""

    type: Literal["webhook"]
    webhook: WebhookTarget
    content: InlineContent | None = None


class Recommend(_Node):
    """Fill ``recommendations`` for later sends from a recommendation scene (suitability
    filtered)."""

    type: Literal["recommend"]
    scene: str = Field(min_length=1, max_length=100)
    n: int = Field(default=3, ge=1, le=20)


class SetTag(_Node):
    type: Literal["set_tag"]
    tag: str = Field(min_length=1, max_length=100)
    value: str = Field(max_length=500)


class SetProperty(_Node):
    type: Literal["set_property"]
    property: str = Field(min_length=1, max_length=100)
    value: Any


class AdvisorTask(_Node):
    """A follow-up task for the customer's advisor, with a call script and a due date."""

    type: Literal["advisor_task"]
    title: str = Field(min_length=1, max_length=200)
    script: str = Field(default="", max_length=5000)
    due_days: int = Field(default=3, ge=0, le=90)
    product_risk_level: int | None = Field(default=None, ge=1, le=5)


class Goal(_Node):
    """Conversion: ``event`` within ``window_seconds`` → ``reached`` (recorded as a goal),
    else ``timeout``."""

    type: Literal["goal"]
    event: str = Field(pattern=EVENT_NAME)
    filters: list[PropertyFilter] = Field(default_factory=list)
    window_seconds: int = Field(ge=60, le=366 * 86400)


class Exit(_Node):
    type: Literal["exit"]


Node = Annotated[
    EntrySegment
    | EntrySegmentChange
    | EntryEvent
    | EntryNotDone
    | EntryApi
    | Delay
    | WaitEvent
    | Condition
    | Split
    | TagBranch
    | Send
    | Webhook
    | Recommend
    | SetTag
    | SetProperty
    | AdvisorTask
    | Goal
    | Exit,
    Field(discriminator="type"),
]

ENTRY_TYPES = frozenset(
    {"entry_segment", "entry_segment_change", "entry_event", "entry_not_done", "entry_api"}
)


class Edge(_Model):
    source: str = Field(alias="from", pattern=NODE_ID)
    target: str = Field(alias="to", pattern=NODE_ID)
    port: str | None = Field(default=None, pattern=NODE_ID)


class GoalMetric(_Model):
    """A journey-level conversion counted for every entrant (reports, A/B)."""

    event: str = Field(pattern=EVENT_NAME)
    window_seconds: int = Field(default=7 * 86400, ge=60, le=366 * 86400)
    filters: list[PropertyFilter] = Field(default_factory=list)


class Schedule(_Model):
    """Entries are accepted only inside this window (UTC datetimes)."""

    start_at: datetime | None = None
    end_at: datetime | None = None


class JourneyDefinition(_Model):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    #: Campaign label: journeys sharing it are reported together (campaign report).
    campaign: str | None = Field(default=None, max_length=100)
    #: marketing (quiet hours, caps, consent for marketing) or service notices.
    purpose: Literal["marketing", "service"] = "marketing"
    #: never: once per customer; after_exit: again once the previous occurrence ended;
    #: always: every trigger starts an occurrence.
    reentry: Literal["never", "after_exit", "always"] = "never"
    #: Minimum seconds between two entries of one customer (after_exit / always).
    reentry_cooldown_seconds: int = Field(default=0, ge=0)
    #: Higher wins when a customer's messages compete for a frequency cap.
    priority: int = Field(default=0, ge=0, le=100)
    #: Percent of entrants held out of every send (tracked as variant ``control``).
    control_percent: float = Field(default=0, ge=0, le=50)
    schedule: Schedule = Field(default_factory=Schedule)
    goals: list[GoalMetric] = Field(default_factory=list)
    nodes: list[Node] = Field(min_length=2, max_length=500)
    edges: list[Edge] = Field(max_length=2000)
    #: Canvas-only data (zoom, notes); kept as is.
    layout: dict[str, Any] = Field(default_factory=dict)


# -- API shapes --------------------------------------------------------------------------------
class Problem(BaseModel):
    """One validation finding, attached to a node or edge when it has one."""

    code: str
    message: str
    node: str | None = None
    edge: int | None = None


class ValidationOut(BaseModel):
    valid: bool
    problems: list[Problem]


class VersionOut(BaseModel):
    id: int
    number: int
    state: str
    published_by: str
    published_at: datetime


class PublishRequestOut(BaseModel):
    """A publication awaiting a second person's approval (four-eyes setting)."""

    by: str
    by_user_id: int | None = None
    at: datetime
    in_flight: Literal["drain", "migrate"] = "drain"
    #: SHA-256 of the draft as requested; an approver may send it back to approve only that.
    draft_sha: str
    #: Who last edited the draft before the request (may not approve either).
    edited_by: str | None = None


class JourneyOut(BaseModel):
    id: int
    name: str
    status: str
    purpose: str
    definition: dict[str, Any]
    live_version: VersionOut | None
    publish_request: PublishRequestOut | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime


class JourneySummary(BaseModel):
    id: int
    name: str
    status: str
    purpose: str
    live_version: int | None
    in_flight: int
    awaiting_approval: bool = False
    updated_at: datetime


class PublishIn(BaseModel):
    """How customers in flight on the previous version continue: ``drain`` (finish on the old
    version) or ``migrate`` (move to the same node id in the new version when it exists)."""

    model_config = ConfigDict(extra="forbid")
    in_flight: Literal["drain", "migrate"] = "drain"


class PublishDecisionIn(BaseModel):
    """An approver's decision on a publication request. ``draft_sha`` (from
    ``publish_request``) approves only the draft the approver reviewed."""

    model_config = ConfigDict(extra="forbid")
    draft_sha: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    comment: str = Field(default="", max_length=2000)


class TriggerIn(BaseModel):
    """API entry: customers by user id or by identity (key, value), with event-like
    properties available to templates as ``event``."""

    model_config = ConfigDict(extra="forbid")
    user_ids: list[int] = Field(default_factory=list, max_length=10000)
    identities: list[tuple[str, str]] = Field(default_factory=list, max_length=10000)
    properties: dict[str, Any] = Field(default_factory=dict)


class TriggerOut(BaseModel):
    entered: int
    skipped: int


class NodeStats(BaseModel):
    """Per node: engine counters (entered, ports, waiting now) and message outcomes."""

    node_id: str
    type: str
    entered: int
    active: int
    counters: dict[str, int]
    messages: dict[str, int]
    blocked: dict[str, int]


class JourneyStats(BaseModel):
    journey_id: int
    version: int | None
    entered: int
    in_flight: int
    completed: int
    goals: dict[str, int]
    nodes: list[NodeStats]
