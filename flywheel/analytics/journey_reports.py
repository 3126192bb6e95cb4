"""Journey and campaign reports: per-node funnel, goals, variants against control, channel cost,
and the live per-node counts pushed to the console.

Reports read the system events (``$Journey*``, ``$Message*``, see
``flywheel.channels.system_events``) in the warehouse, so they honour the caller's data scope
and drill down by profile properties and segment membership. Live counts read the operational
tables the engine and the dispatcher keep current (``journey_node_counts``, ``journey_states``,
``channel_messages``): cheap indexed aggregates, but without per-customer scope.

Definitions (also in ``docs/analytics.md``):

* an **entrant** is a customer with a ``$JourneyEnter`` of the journey (and version, when given)
  whose *first* entry falls in the date range; the report follows each entrant's journey events
  from that first entry on;
* a customer **converts** on a goal metric when they do the goal event (with its filters)
  strictly after that first entry and within the goal's window; on a goal node, when the engine
  recorded ``$JourneyGoal`` for that node;
* a node's ``converted`` counts entrants who entered the node and converted at or after their
  first entry into it; conversions are also credited by **last touch** to the node and channel of
  the last message sent to the customer before the conversion;
* a customer's **variant** is the latest non-null ``variant`` of their events in the journey
  (splits are stable per customer); the baseline of the comparison is ``control`` when present.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flywheel.analytics import stats
from flywheel.analytics.models import ChannelPrice
from flywheel.analytics.queries import Binder, QueryBuilder, ScopeRule
from flywheel.analytics.schemas import (
    BreakdownRow,
    CampaignJourneyRow,
    CampaignReportOut,
    ChannelCost,
    ChannelPriceIn,
    ChannelPriceOut,
    ExperimentReport,
    GoalReport,
    JourneyNodeReport,
    JourneyReportOut,
    LiveCountsOut,
    LiveNodeCounts,
    NodeMetrics,
    PriceUnit,
    PropertyFilter,
    ReportBreakdown,
    VariantReport,
)
from flywheel.audit import service as audit
from flywheel.auth.schemas import Principal
from flywheel.auth.scope import ADVISOR_PROPERTY, BRANCH_PROPERTY
from flywheel.channels import system_events as se
from flywheel.channels.models import Message
from flywheel.core.clock import SHANGHAI, utc_naive
from flywheel.core.errors import Forbidden, InvalidInput, NotFound
from flywheel.journeys.models import Journey, JourneyNodeCount, JourneyState, JourneyVersion
from flywheel.journeys.schemas import InlineContent, JourneyDefinition, Send
from flywheel.journeys.schemas import PropertyFilter as JourneyFilter
from flywheel.warehouse import Warehouse
from flywheel.warehouse.engine import PropertyType, TableKind, table_name

log = structlog.get_logger(__name__)

#: Journey states still moving through the graph (counted as "here now" on the live canvas).
IN_FLIGHT = ("active", "waiting")
#: Message event → the metric it counts.
MESSAGE_METRICS = {
    se.MESSAGE_PREPARED: "prepared",
    se.MESSAGE_SENT: "sent",
    se.MESSAGE_DELIVERED: "delivered",
    se.MESSAGE_OPENED: "opened",
    se.MESSAGE_CLICKED: "clicked",
    se.MESSAGE_FAILED: "failed",
    se.MESSAGE_BLOCKED: "blocked",
}
REPORT_EVENTS = (se.JOURNEY_ENTER, se.NODE_ENTER, se.JOURNEY_EXIT, se.GOAL, *MESSAGE_METRICS)
ALPHA = 0.05
BASELINE = "control"
#: Nodes per BIGINT word of the per-customer "entered nodes" bitmap.
NODES_PER_WORD = 62
#: Customers who never reached a split (and there is a global control group) form this arm.
EXPOSED = "exposed"
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


# -- the journey and its definition --------------------------------------------------------------
def _journey(session: Session, project_id: int, journey_id: int) -> Journey:
    journey = session.get(Journey, journey_id)
    if journey is None or journey.project_id != project_id:
        raise NotFound(f"unknown journey {journey_id}")
    return journey


def _parse(data: dict[str, Any]) -> JourneyDefinition:
    try:
        return JourneyDefinition.model_validate(data)
    except ValidationError as exc:  # a stored definition that no longer parses
        raise InvalidInput(f"the journey definition is invalid: {exc.errors()[0]['msg']}") from exc


def _definition(
    session: Session, journey: Journey, version: int | None
) -> tuple[JourneyDefinition, int | None]:
    """The definition to report on: the given version's, else the live (or latest) version's,
    else the draft; and the version number to filter events on (None: every version)."""
    if version is not None:
        row = session.scalar(
            select(JourneyVersion).where(
                JourneyVersion.journey_id == journey.id, JourneyVersion.number == version
            )
        )
        if row is None:
            raise NotFound(f"journey {journey.id} has no version {version}")
        return _parse(row.definition), version
    row = session.get(JourneyVersion, journey.live_version_id) if journey.live_version_id else None
    if row is None:
        row = session.scalar(
            select(JourneyVersion)
            .where(JourneyVersion.journey_id == journey.id)
            .order_by(JourneyVersion.number.desc())
            .limit(1)
        )
    return _parse(row.definition if row is not None else journey.draft), None


def graph_order(definition: JourneyDefinition) -> list[str]:
    """Node ids breadth-first from the entry nodes along the edges (definition order breaks
    ties), then any node not reachable from an entry."""
    successors: dict[str, list[str]] = {n.id: [] for n in definition.nodes}
    for edge in definition.edges:
        if edge.source in successors:
            successors[edge.source].append(edge.target)
    order: list[str] = []
    seen: set[str] = set()
    queue = [n.id for n in definition.nodes if n.type.startswith("entry_")]
    while queue:
        node_id = queue.pop(0)
        if node_id in seen or node_id not in successors:
            continue
        seen.add(node_id)
        order.append(node_id)
        queue.extend(successors[node_id])
    order.extend(n.id for n in definition.nodes if n.id not in seen)
    return order


@dataclass(frozen=True)
class GoalSpec:
    key: str
    kind: str  # "metric" | "node"
    event: str
    window_seconds: int
    filters: tuple[JourneyFilter, ...] = ()


def goals_of(definition: JourneyDefinition) -> list[GoalSpec]:
    """Journey goal metrics first (the first one is the primary goal), then goal nodes."""
    goals = [
        GoalSpec(g.event, "metric", g.event, g.window_seconds, tuple(g.filters))
        for g in definition.goals
    ]
    seen = {g.key for g in goals}
    for node in definition.nodes:
        if node.type == "goal" and node.id not in seen:
            goals.append(GoalSpec(node.id, "node", node.event, node.window_seconds))
    return goals


def planned_weights(definition: JourneyDefinition) -> dict[str, float] | None:
    """Planned share of each variant, or None when the plan is ambiguous (several splits) or
    there is nothing to compare."""
    splits = [n for n in definition.nodes if n.type == "split"]
    control = definition.control_percent
    if len(splits) > 1:
        return None
    if splits:
        branches = splits[0].branches
        total = sum(b.weight for b in branches)
        weights = {b.port: b.weight / total * (100.0 - control) for b in branches}
        if control:
            weights[BASELINE] = weights.get(BASELINE, 0.0) + control
        return weights
    if control:
        return {BASELINE: control, EXPOSED: 100.0 - control}
    return None


def sms_segments(content: InlineContent | None) -> int:
    """Estimated SMS segments of a message: the template text without its template tags;
    70 characters in one segment (160 for plain ASCII), else 67 (153) per part."""
    if content is None:
        return 1
    text = _JINJA.sub("", content.text)
    single, part = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / part)


# -- warehouse queries -----------------------------------------------------------------------------
@dataclass
class _Params:
    """Named placeholders ``$k0``, ``$k1``… (one per distinct value: DuckDB refuses a bound
    value the statement does not use, so values are bound where they are used)."""

    values: dict[str, Any] = field(default_factory=dict)
    names: dict[tuple[type, Any], str] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        key = (type(value), value)
        name = self.names.get(key)
        if name is None:
            name = f"k{len(self.values)}"
            self.values[name] = value
            self.names[key] = name
        return f"${name}"


@dataclass
class _Raw:
    """What the report query returns, keyed for assembly."""

    entrants: int = 0
    conversions: int = 0
    #: (node_id, event, channel, reason) → events
    node_events: dict[tuple[str | None, str, str | None, str | None], int] = field(
        default_factory=dict
    )
    #: node_id → customers who entered it
    reach: dict[str, int] = field(default_factory=dict)
    #: node_id → customers who entered it and converted afterwards
    converted: dict[str, int] = field(default_factory=dict)
    variants: dict[str | None, tuple[int, int]] = field(default_factory=dict)
    touches: dict[tuple[str | None, str | None], int] = field(default_factory=dict)
    goals: dict[int, int] = field(default_factory=dict)
    #: breakdown: (group, node_id, event, reason) → events
    group_events: dict[tuple[str | None, str | None, str, str | None], int] = field(
        default_factory=dict
    )
    group_reach: dict[tuple[str | None, str], int] = field(default_factory=dict)
    group_converted: dict[tuple[str | None, str], int] = field(default_factory=dict)


def _window(
    from_date: date | None, to_date: date | None
) -> tuple[datetime | None, datetime | None]:
    def start_of(day: date) -> datetime:
        return utc_naive(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI))

    start = start_of(from_date) if from_date is not None else None
    end = start_of(to_date + timedelta(days=1)) if to_date is not None else None
    if start is not None and end is not None and end <= start:
        raise InvalidInput("'to' is before 'from'", detail={"field": "to"})
    return start, end


def _goal_condition(goal: GoalSpec, builder: QueryBuilder, binder: Binder) -> str:
    """The goal's property filters as a DuckDB predicate on alias ``e`` (placeholders ``$pN``)."""
    parts: list[str] = []
    for flt in goal.filters:
        op = "is_set" if flt.op == "exists" else flt.op
        try:
            analytic = PropertyFilter(
                property=flt.property, op=op, value=None if op == "is_set" else flt.value
            )
        except ValidationError as exc:
            raise InvalidInput(
                f"goal {goal.key!r}: filter on {flt.property!r} cannot be evaluated",
                detail={"property": flt.property},
            ) from exc
        parts.append(builder.condition(analytic, binder).sql(dialect="duckdb"))
    return "".join(f" AND {p}" for p in parts)


def _report_sql(
    *,
    warehouse: Warehouse,
    project_id: int,
    journey_id: int,
    version: int | None,
    start: datetime | None,
    end: datetime | None,
    goals: Sequence[GoalSpec],
    scope: ScopeRule,
    breakdown: ReportBreakdown | None,
    segment_id: int | None,
    node_ids: Sequence[str],
) -> tuple[str, dict[str, Any]]:
    """One statement answering every part of the report (the journey's events are read once:
    the CTE ``j`` is materialised and shared by the parts).

    Distinct customers per node come from one pass grouped by customer alone: a bitmap of the
    nodes each entered (``BIT_OR`` of one bit per node, 62 nodes per BIGINT word) — grouping
    by (customer, node) or ``count(DISTINCT …)`` per node cost 3× the CPU at 1 M entrants."""
    events = f'"{table_name(project_id, TableKind.EVENTS)}"'
    users = f'"{table_name(project_id, TableKind.USERS)}"'
    params = _Params()
    binder = Binder()
    builder = QueryBuilder(
        events_table=table_name(project_id, TableKind.EVENTS),
        users_table=table_name(project_id, TableKind.USERS),
        event_columns=warehouse.columns(project_id, TableKind.EVENTS),
        user_columns=warehouse.columns(project_id, TableKind.USERS),
    )
    jid = params.bind(float(journey_id))
    same_journey = f"e.journey_id = {jid}"
    if version is not None:
        same_journey += f" AND e.journey_version = {params.bind(float(version))}"
    entry_where = [f"e.event = {params.bind(se.JOURNEY_ENTER)}", same_journey]
    if start is not None:
        entry_where.append(f"e.time >= {params.bind(start)}")
    if end is not None:
        entry_where.append(f"e.time < {params.bind(end)}")
    scope_join = ""
    if scope.restricted:
        scope_join = f" JOIN {users} u ON u.user_id = e.user_id"
        if scope.branches is not None:
            marks = ", ".join(params.bind(b) for b in scope.branches) or "NULL"
            entry_where.append(f'u."{BRANCH_PROPERTY}" IN ({marks})')
        if scope.advisor_id is not None:
            entry_where.append(f'u."{ADVISOR_PROPERTY}" = {params.bind(scope.advisor_id)}')
    report_events = ", ".join(params.bind(name) for name in REPORT_EVENTS)
    sent = params.bind(se.MESSAGE_SENT)
    # Unscoped and without a range, every event of the journey is an entrant's, from their
    # first entry on: no join needed (it is the report's most expensive step at 1 M entrants).
    entrants_only = ""
    if start is not None or end is not None or scope.restricted:
        entrants_only = " JOIN entries x ON x.user_id = e.user_id AND e.time >= x.entered_at"
    after_start = f" AND e.time >= {params.bind(start)}" if start is not None else ""
    # First entry into a node: $JourneyNodeEnter, or the event the engine records instead
    # ($JourneyEnter for entries, $JourneyExit for exits, $MessagePrepared for sends).
    markers = ", ".join(
        params.bind(name)
        for name in (se.NODE_ENTER, se.JOURNEY_ENTER, se.JOURNEY_EXIT, se.MESSAGE_PREPARED)
    )
    words: list[str] = []
    bits: list[str] = []  # per node, the test of its bit
    for word, first in enumerate(range(0, max(len(node_ids), 1), NODES_PER_WORD)):
        chunk = node_ids[first : first + NODES_PER_WORD]
        cases = " ".join(
            f"WHEN {params.bind(node)} THEN {1 << bit}" for bit, node in enumerate(chunk)
        )
        words.append(
            f"coalesce(bit_or(CASE node_id {cases} ELSE 0 END) FILTER (WHERE event IN "
            f"({markers})), 0)::BIGINT AS w{word}"
            if chunk
            else f"0::BIGINT AS w{word}"
        )
        bits.extend(f"(w{word} & {1 << bit}) <> 0" for bit in range(len(chunk)))
    names = ", ".join(params.bind(node) for node in node_ids) or "NULL"
    counts = ", ".join(f"count(*) FILTER (WHERE {b})" for b in bits) or "0"
    ctes = [
        f"entries AS (SELECT e.user_id, min(e.time) AS entered_at FROM {events} e{scope_join} "
        f"WHERE {' AND '.join(entry_where)} GROUP BY e.user_id)",
        "j AS MATERIALIZED (SELECT e.user_id, e.event, e.time, e.node_id, e.variant, e.channel, "
        f"e.message_id, e.reason FROM {events} e{entrants_only} "
        f"WHERE e.event IN ({report_events}) AND {same_journey}{after_start})",
        f"pu AS (SELECT user_id, arg_max(variant, time) FILTER (WHERE variant IS NOT NULL) "
        f"AS variant, {', '.join(words)} FROM j GROUP BY user_id)",
    ]
    for index, goal in enumerate(goals):
        if goal.kind == "node":
            ctes.append(
                f"conv{index} AS (SELECT user_id, min(time) AS converted_at FROM j "
                f"WHERE event = {params.bind(se.GOAL)} AND node_id = {params.bind(goal.key)} "
                "GROUP BY user_id)"
            )
            continue
        filters = _goal_condition(goal, builder, binder)
        ctes.append(
            f"conv{index} AS (SELECT x.user_id, min(e.time) AS converted_at FROM entries x "
            f"JOIN {events} e ON e.user_id = x.user_id AND e.time > x.entered_at AND "
            f"e.time <= x.entered_at + to_seconds({params.bind(goal.window_seconds)}) "
            f"WHERE e.event = {params.bind(goal.event)}{filters} GROUP BY x.user_id)"
        )
    if not goals:
        ctes.append(
            "conv0 AS (SELECT user_id, entered_at AS converted_at FROM entries WHERE FALSE)"
        )
    cols = "kind, grp, node_id, event, channel, reason, n, users, msgs"
    parts = [
        "SELECT 'entrants', NULL, NULL, NULL, NULL, NULL, count(*), count(c.user_id), NULL "
        "FROM entries x LEFT JOIN conv0 c USING (user_id)",
        # Message events have deterministic ids (one per message and stage, duplicates are
        # dropped on the way into the warehouse), so counting rows counts messages.
        "SELECT 'node', NULL, node_id, event, channel, reason, count(*), NULL, NULL FROM j "
        "GROUP BY node_id, event, channel, reason",
        f"SELECT 'reach', NULL, unnest([{names}]), NULL, NULL, NULL, unnest(c), NULL, NULL "
        f"FROM (SELECT [{counts}] AS c FROM pu)",
        "SELECT 'converted', NULL, j.node_id, NULL, NULL, NULL, count(DISTINCT j.user_id), NULL, "
        f"NULL FROM j JOIN conv0 c USING (user_id) WHERE j.event IN ({markers}) "
        "AND j.time <= c.converted_at GROUP BY j.node_id",
        "SELECT 'variant', pu.variant, NULL, NULL, NULL, NULL, count(*), count(c.user_id), NULL "
        "FROM entries x LEFT JOIN pu USING (user_id) LEFT JOIN conv0 c USING (user_id) "
        "GROUP BY pu.variant",
        "SELECT 'touch', NULL, node_id, NULL, channel, NULL, count(*), NULL, NULL FROM ("
        "SELECT c.user_id, arg_max(m.node_id, m.time) AS node_id, "
        "arg_max(m.channel, m.time) AS channel FROM conv0 c JOIN j m ON m.user_id = c.user_id "
        f"AND m.event = {sent} AND m.time <= c.converted_at GROUP BY c.user_id) "
        "GROUP BY node_id, channel",
    ]
    for index in range(1, len(goals)):
        parts.append(
            f"SELECT 'goal', '{index}', NULL, NULL, NULL, NULL, count(*), NULL, NULL "
            f"FROM conv{index}"
        )
    if breakdown is not None:
        if breakdown == "channel":
            group_of_event = "j.channel"
            ctes.append("ug AS (SELECT user_id, NULL::VARCHAR AS grp FROM entries WHERE FALSE)")
        else:
            group_of_event = "ug.grp"
            if breakdown == "variant":
                ctes.append("ug AS (SELECT user_id, variant AS grp FROM pu)")
            elif breakdown == "branch":
                ctes.append(
                    f'ug AS (SELECT x.user_id, u."{BRANCH_PROPERTY}"::VARCHAR AS grp '
                    f"FROM entries x JOIN {users} u ON u.user_id = x.user_id)"
                )
            else:
                members = f'"p{int(project_id)}_segment_members"'
                ctes.append(
                    "ug AS (SELECT x.user_id, CASE WHEN m.user_id IS NULL THEN 'non_member' "
                    "ELSE 'member' END AS grp FROM entries x LEFT JOIN (SELECT DISTINCT user_id "
                    f"FROM {members} WHERE segment_id = {params.bind(segment_id)}) m "
                    "ON m.user_id = x.user_id)"
                )
        parts.append(
            f"SELECT 'group', {group_of_event}, j.node_id, j.event, NULL, j.reason, count(*), "
            "NULL, NULL FROM j LEFT JOIN ug USING (user_id) "
            f"GROUP BY {group_of_event}, j.node_id, j.event, j.reason"
        )
        if breakdown != "channel":
            parts.append(
                f"SELECT 'group_reach', grp, unnest([{names}]), NULL, NULL, NULL, unnest(c), "
                f"NULL, NULL FROM (SELECT ug.grp, [{counts}] AS c FROM pu "
                "LEFT JOIN ug USING (user_id) GROUP BY ug.grp)"
            )
            parts.append(
                "SELECT 'group_converted', ug.grp, j.node_id, NULL, NULL, NULL, "
                "count(DISTINCT j.user_id), NULL, NULL FROM j JOIN conv0 c USING (user_id) "
                f"LEFT JOIN ug USING (user_id) WHERE j.event IN ({markers}) "
                "AND j.time <= c.converted_at GROUP BY ug.grp, j.node_id"
            )
    union = "\nUNION ALL ".join(parts)
    sql = f"WITH {', '.join(ctes)}\nSELECT {cols} FROM ({union}) AS r({cols})"
    return sql, {**params.values, **binder.values}


def _ensure_columns(warehouse: Warehouse, project_id: int, profile_columns: bool) -> None:
    warehouse.ensure_project(project_id)
    warehouse.ensure_columns(project_id, TableKind.EVENTS, dict(se.PROPERTY_TYPES))
    if profile_columns:
        warehouse.ensure_columns(
            project_id,
            TableKind.USERS,
            {BRANCH_PROPERTY: PropertyType.STRING, ADVISOR_PROPERTY: PropertyType.STRING},
        )
        warehouse.ensure_project(project_id)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _run_report(warehouse: Warehouse, sql: str, params: dict[str, Any]) -> _Raw:
    started = time.perf_counter()
    rows = warehouse.cursor().execute(sql, params).fetchall()
    log.debug(
        "journey_report_query_ran",
        rows=len(rows),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    raw = _Raw()
    for kind, grp, node_id, event, channel, reason, n, second, _ in rows:
        count, other = int(n or 0), int(second or 0)
        if kind == "entrants":
            raw.entrants, raw.conversions = count, other
        elif kind == "node":
            raw.node_events[(_text(node_id), str(event), _text(channel), _text(reason))] = count
        elif kind == "reach":
            raw.reach[str(node_id)] = count
        elif kind == "converted":
            raw.converted[str(node_id)] = count
        elif kind == "variant":
            raw.variants[_text(grp)] = (count, other)
        elif kind == "touch":
            raw.touches[(_text(node_id), _text(channel))] = count
        elif kind == "goal":
            raw.goals[int(grp)] = count
        elif kind == "group":
            raw.group_events[(_text(grp), _text(node_id), str(event), _text(reason))] = count
        elif kind == "group_reach":
            raw.group_reach[(_text(grp), str(node_id))] = count
        elif kind == "group_converted":
            raw.group_converted[(_text(grp), str(node_id))] = count
    return raw


# -- assembly ----------------------------------------------------------------------------------
def _add(metrics: NodeMetrics, event: str, reason: str | None, count: int) -> None:
    if event == se.NODE_ENTER:
        metrics.entered += count
        return
    metric = MESSAGE_METRICS.get(event)
    if metric is None:
        return
    setattr(metrics, metric, getattr(metrics, metric) + count)
    if metric == "blocked":
        label = reason or "unknown"
        metrics.blocked_by_reason[label] = metrics.blocked_by_reason.get(label, 0) + count


#: Node types the engine records without ``$JourneyNodeEnter``, and the event that marks an
#: entry into them instead (each carries the node id).
SILENT_ENTRY_EVENT = {
    "send": se.MESSAGE_PREPARED,
    "webhook": se.MESSAGE_PREPARED,
    "advisor_task": se.MESSAGE_PREPARED,
    "exit": se.JOURNEY_EXIT,
}


def entry_event_of(node_type: str) -> str | None:
    """The event counted as an entry into a node of ``node_type`` when the node has no
    ``$JourneyNodeEnter`` events."""
    if node_type.startswith("entry_"):
        return se.JOURNEY_ENTER
    return SILENT_ENTRY_EVENT.get(node_type)


def _accumulate(items: Iterable[tuple[NodeMetrics, str, str, str | None, int]]) -> None:
    """Add ``(metrics, node type, event, reason, count)`` rows. Entries are the node's
    ``$JourneyNodeEnter`` events; the engine records entry nodes by ``$JourneyEnter``, exit
    nodes by ``$JourneyExit`` and sending nodes by ``$MessagePrepared`` instead, which count
    as entries when the node has no ``$JourneyNodeEnter``."""
    fallback: dict[int, tuple[NodeMetrics, int]] = {}
    for metrics, node_type, event, reason, count in items:
        if event == entry_event_of(node_type):
            _, entries = fallback.get(id(metrics), (metrics, 0))
            fallback[id(metrics)] = (metrics, entries + count)
        _add(metrics, event, reason, count)
    for metrics, entries in fallback.values():
        if metrics.entered == 0:
            metrics.entered = entries


def _ratio(numerator: int | float, denominator: int | float) -> float | None:
    return numerator / denominator if denominator else None


def _money(value: Decimal | float) -> float:
    return round(float(value), 4)


def _prices(session: Session, project_id: int) -> dict[str, ChannelPrice]:
    return {
        p.channel: p
        for p in session.scalars(select(ChannelPrice).where(ChannelPrice.project_id == project_id))
    }


def _experiment(
    raw: _Raw, definition: JourneyDefinition, primary: GoalSpec | None
) -> ExperimentReport:
    plan = planned_weights(definition)
    arms: dict[str, tuple[int, int]] = {}
    for variant, (users, conversions) in raw.variants.items():
        name = variant if variant is not None else (EXPOSED if plan and EXPOSED in plan else None)
        if name is None:
            continue
        prior = arms.get(name, (0, 0))
        arms[name] = (prior[0] + users, prior[1] + conversions)
    shares = None
    if plan:
        total = sum(plan.values())
        shares = {k: v / total for k, v in plan.items()}
    names = sorted(arms)
    baseline = BASELINE if BASELINE in arms else (names[0] if names else None)
    variants = [
        VariantReport(
            variant=name,
            baseline=name == baseline,
            users=arms[name][0],
            conversions=arms[name][1],
            rate=_ratio(arms[name][1], arms[name][0]),
            planned_share=shares.get(name) if shares else None,
        )
        for name in ([baseline] if baseline else []) + [n for n in names if n != baseline]
    ]
    report = ExperimentReport(
        goal=primary.key if primary else None,
        baseline=baseline,
        alpha=ALPHA,
        srm_p_value=None,
        variants=variants,
    )
    treatments = [n for n in names if n != baseline]
    if baseline is None or not treatments:
        report.note = "no variants to compare"
        return report
    if primary is None:
        report.note = "the journey has no goal: variants are counted but not compared"
        return report
    if any(arms[n][0] == 0 for n in [baseline, *treatments]):
        report.note = "an arm has no customers yet"
        return report
    weights = None
    if shares and all(n in shares for n in [baseline, *treatments]):
        weights = {"control": shares[baseline], **{n: shares[n] for n in treatments}}
    result = stats.evaluate(
        control=stats.BinomialArm(n=arms[baseline][0], conversions=arms[baseline][1]),
        treatments={n: stats.BinomialArm(n=arms[n][0], conversions=arms[n][1]) for n in treatments},
        alpha=ALPHA,
        weights=weights,
    )
    report.srm_p_value = result.srm_p_value if weights is not None else None
    if weights is None:
        report.note = "no planned split to check the sample ratio against"
    for row in report.variants:
        comparison = result.comparisons.get(row.variant)
        if comparison is None:
            continue
        row.difference = comparison.difference
        row.lift = comparison.lift
        row.ci_low, row.ci_high = comparison.ci_low, comparison.ci_high
        row.p_value = comparison.p_value
        row.p_value_adjusted = comparison.p_value_adjusted
        row.always_valid_p_value = comparison.always_valid_p_value
        row.chance_to_win = comparison.chance_to_win
    return report


def _channel_costs(
    raw: _Raw,
    definition: JourneyDefinition,
    prices: dict[str, ChannelPrice],
    node_cost: dict[str, float],
) -> list[ChannelCost]:
    segments = {
        n.id: sms_segments(n.content if isinstance(n.content, InlineContent) else None)
        for n in definition.nodes
        if isinstance(n, Send)
    }
    sent: dict[str, int] = {}
    units: dict[str, int] = {}
    for (node_id, event, channel, _reason), messages in raw.node_events.items():
        if event != se.MESSAGE_SENT or channel is None:
            continue
        price = prices.get(channel)
        per_message = segments.get(node_id or "", 1) if price and price.unit == "sms_segment" else 1
        sent[channel] = sent.get(channel, 0) + messages
        units[channel] = units.get(channel, 0) + messages * per_message
        if price is not None and node_id is not None:
            node_cost[node_id] = node_cost.get(node_id, 0.0) + float(
                price.unit_price * messages * per_message
            )
    conversions: dict[str, int] = {}
    for (_node, channel), count in raw.touches.items():
        if channel is not None:
            conversions[channel] = conversions.get(channel, 0) + count
    out: list[ChannelCost] = []
    for channel in sorted(set(sent) | set(conversions)):
        price = prices.get(channel)
        cost = float(price.unit_price * units.get(channel, 0)) if price else 0.0
        out.append(
            ChannelCost(
                channel=channel,
                unit=_unit(price.unit) if price else None,
                unit_price=_money(price.unit_price) if price else None,
                messages_sent=sent.get(channel, 0),
                billed_units=units.get(channel, 0),
                cost=_money(cost),
                conversions=conversions.get(channel, 0),
                cost_per_conversion=(
                    _money(cost / conversions[channel]) if conversions.get(channel) else None
                ),
            )
        )
    return out


def _unit(value: str) -> PriceUnit:
    return "sms_segment" if value == "sms_segment" else "message"


def journey_report(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    journey_id: int,
    now: datetime,
    version: int | None = None,
    from_date: date | None = None,
    to_date: date | None = None,
    breakdown: ReportBreakdown | None = None,
    segment_id: int | None = None,
    principal: Principal | None = None,
) -> JourneyReportOut:
    """The report of one journey (one version when ``version`` is given): per node in graph
    order, per goal, per variant against the baseline, per channel with cost.

    ``from_date`` / ``to_date`` (Shanghai business days, both included) select entrants by
    their first entry. ``breakdown`` adds per-node rows per channel, profile ``branch``,
    ``variant`` or membership of ``segment_id`` (``member`` / ``non_member``). A scoped
    principal gets every number computed over their customers only.

    Raises :class:`NotFound` (journey, version), :class:`InvalidInput` (range, breakdown).
    """
    journey = _journey(session, project_id, journey_id)
    definition, version_filter = _definition(session, journey, version)
    if breakdown == "segment" and segment_id is None:
        raise InvalidInput("breakdown by segment needs segment_id", detail={"field": "segment_id"})
    start, end = _window(from_date, to_date)
    scope = _scope(principal)
    _ensure_columns(warehouse, project_id, scope.restricted or breakdown == "branch")
    goals = goals_of(definition)
    sql, params = _report_sql(
        warehouse=warehouse,
        project_id=project_id,
        journey_id=journey.id,
        version=version_filter,
        start=start,
        end=end,
        goals=goals,
        scope=scope,
        breakdown=breakdown,
        segment_id=segment_id,
        node_ids=graph_order(definition),
    )
    raw = _run_report(warehouse, sql, params)
    primary = goals[0] if goals else None
    labels = {n.id: (n.type, n.label) for n in definition.nodes}
    nodes: dict[str, JourneyNodeReport] = {
        node_id: JourneyNodeReport(
            node_id=node_id,
            type=labels[node_id][0],
            label=labels[node_id][1],
            users=raw.reach.get(node_id, 0),
            converted=raw.converted.get(node_id, 0) if primary else None,
        )
        for node_id in graph_order(definition)
    }
    _accumulate(
        (nodes[node_id], nodes[node_id].type, event, reason, counts)
        for (node_id, event, _channel, reason), counts in raw.node_events.items()
        if node_id in nodes
    )
    for (node_id, _channel), count in raw.touches.items():
        node = nodes.get(node_id or "")
        if node is not None:
            node.attributed_conversions += count
    node_cost: dict[str, float] = {}
    channels = _channel_costs(raw, definition, _prices(session, project_id), node_cost)
    for node_id, cost in node_cost.items():
        if node_id in nodes:
            nodes[node_id].cost = _money(cost)
    cost_total = _money(sum(c.cost for c in channels))
    goal_reports = [
        GoalReport(
            key=g.key,
            kind="node" if g.kind == "node" else "metric",
            event=g.event,
            window_seconds=g.window_seconds,
            conversions=raw.conversions if i == 0 else raw.goals.get(i, 0),
            rate=_ratio(raw.conversions if i == 0 else raw.goals.get(i, 0), raw.entrants),
        )
        for i, g in enumerate(goals)
    ]
    rows: list[BreakdownRow] = []
    if breakdown is not None:
        grouped: dict[tuple[str | None, str], BreakdownRow] = {}
        order = {node_id: i for i, node_id in enumerate(nodes)}
        _accumulate(
            (
                grouped.setdefault((grp, node_id), BreakdownRow(group=grp, node_id=node_id)),
                labels[node_id][0],
                event,
                reason,
                counts,
            )
            for (grp, node_id, event, reason), counts in raw.group_events.items()
            if node_id in labels
        )
        for (grp, node_id), reached in raw.group_reach.items():
            if reached == 0 and (grp, node_id) not in grouped:
                continue
            row = grouped.setdefault((grp, node_id), BreakdownRow(group=grp, node_id=node_id))
            row.users = reached
            if primary is not None:
                row.converted = raw.group_converted.get((grp, node_id), 0)
        rows = sorted(
            grouped.values(),
            key=lambda r: (r.group is None, r.group or "", order.get(r.node_id, len(order))),
        )
    conversions = raw.conversions if primary else None
    log.info(
        "journey_report_built",
        project_id=project_id,
        journey_id=journey.id,
        entrants=raw.entrants,
        scoped=scope.restricted,
    )
    return JourneyReportOut(
        journey_id=journey.id,
        name=journey.name,
        campaign=definition.campaign,
        version=version_filter,
        from_date=from_date,
        to_date=to_date,
        generated_at=now,
        entrants=raw.entrants,
        conversions=conversions,
        conversion_rate=_ratio(conversions, raw.entrants) if conversions is not None else None,
        primary_goal=primary.key if primary else None,
        nodes=list(nodes.values()),
        goals=goal_reports,
        experiment=_experiment(raw, definition, primary),
        channels=channels,
        cost_total=cost_total,
        cost_per_conversion=_money(cost_total / conversions) if conversions else None,
        breakdown_by=breakdown,
        breakdown=rows,
    )


def _scope(principal: Principal | None) -> ScopeRule:
    if principal is None:
        return ScopeRule()
    return ScopeRule(branches=principal.branch_scope, advisor_id=principal.advisor_id)


# -- campaigns ---------------------------------------------------------------------------------
def campaign_journeys(*, session: Session, project_id: int, campaign: str) -> list[Journey]:
    """Journeys whose draft or any published version carries the campaign label."""
    labelled: dict[int, Journey] = {}
    for journey in session.scalars(
        select(Journey).where(Journey.project_id == project_id).order_by(Journey.id)
    ):
        if (journey.draft or {}).get("campaign") == campaign:
            labelled[journey.id] = journey
    for journey_id, definition in session.execute(
        select(JourneyVersion.journey_id, JourneyVersion.definition).where(
            JourneyVersion.project_id == project_id
        )
    ):
        if journey_id not in labelled and (definition or {}).get("campaign") == campaign:
            found = session.get(Journey, journey_id)
            if found is not None:
                labelled[journey_id] = found
    return [labelled[k] for k in sorted(labelled)]


def _journey_row(report: JourneyReportOut) -> CampaignJourneyRow:
    row = CampaignJourneyRow(
        journey_id=report.journey_id,
        name=report.name,
        entrants=report.entrants,
        users=report.entrants,
        conversions=report.conversions,
        conversion_rate=report.conversion_rate,
        cost=report.cost_total,
    )
    for node in report.nodes:
        for metric in ("prepared", "sent", "delivered", "opened", "clicked", "failed", "blocked"):
            setattr(row, metric, getattr(row, metric) + getattr(node, metric))
        for reason, count in node.blocked_by_reason.items():
            row.blocked_by_reason[reason] = row.blocked_by_reason.get(reason, 0) + count
    row.entered = report.entrants
    return row


def campaign_report(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    campaign: str,
    now: datetime,
    from_date: date | None = None,
    to_date: date | None = None,
    principal: Principal | None = None,
) -> CampaignReportOut:
    """Every journey labelled ``campaign`` (one row each, each on its own primary goal) and
    their sum; channel costs merged. :class:`NotFound` when no journey carries the label."""
    journeys = campaign_journeys(session=session, project_id=project_id, campaign=campaign)
    if not journeys:
        raise NotFound(f"no journey carries the campaign label {campaign!r}")
    rows: list[CampaignJourneyRow] = []
    channels: dict[str, ChannelCost] = {}
    for journey in journeys:
        report = journey_report(
            session=session,
            warehouse=warehouse,
            project_id=project_id,
            journey_id=journey.id,
            now=now,
            from_date=from_date,
            to_date=to_date,
            principal=principal,
        )
        rows.append(_journey_row(report))
        for cost in report.channels:
            merged = channels.get(cost.channel)
            if merged is None:
                channels[cost.channel] = cost.model_copy()
                continue
            merged.messages_sent += cost.messages_sent
            merged.billed_units += cost.billed_units
            merged.cost = _money(merged.cost + cost.cost)
            merged.conversions += cost.conversions
    for cost in channels.values():
        cost.cost_per_conversion = (
            _money(cost.cost / cost.conversions) if cost.conversions else None
        )
    total = CampaignJourneyRow(journey_id=None, name=campaign)
    for row in rows:
        for metric in (
            "entered",
            "users",
            "entrants",
            "prepared",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "failed",
            "blocked",
        ):
            setattr(total, metric, getattr(total, metric) + getattr(row, metric))
        for reason, count in row.blocked_by_reason.items():
            total.blocked_by_reason[reason] = total.blocked_by_reason.get(reason, 0) + count
        if row.conversions is not None:
            total.conversions = (total.conversions or 0) + row.conversions
        total.cost = _money(total.cost + row.cost)
    if total.conversions is not None:
        total.conversion_rate = _ratio(total.conversions, total.entrants)
    return CampaignReportOut(
        campaign=campaign,
        from_date=from_date,
        to_date=to_date,
        generated_at=now,
        total=total,
        journeys=rows,
        channels=sorted(channels.values(), key=lambda c: c.channel),
        cost_per_conversion=_money(total.cost / total.conversions) if total.conversions else None,
    )


# -- CSV ---------------------------------------------------------------------------------------
_METRIC_COLUMNS = [
    "entered",
    "users",
    "prepared",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "failed",
    "blocked",
    "converted",
]


def _reasons(rows: Iterable[NodeMetrics]) -> list[str]:
    return sorted({reason for row in rows for reason in row.blocked_by_reason})


def _write_table(writer: Any, title: str, header: list[str], rows: Iterable[list[Any]]) -> None:
    writer.writerow([f"# {title}"])
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    writer.writerow([])


def report_csv(report: JourneyReportOut) -> str:
    """The report as CSV: one titled table per section (nodes, goals, variants, channels,
    breakdown), separated by an empty line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    reasons = _reasons(report.nodes)
    _write_table(
        writer,
        f"journey {report.journey_id} {report.name}: nodes",
        [
            "node_id",
            "type",
            *_METRIC_COLUMNS,
            *(f"blocked:{r}" for r in reasons),
            "attributed_conversions",
            "cost_cny",
        ],
        (
            [
                n.node_id,
                n.type,
                *(getattr(n, c) for c in _METRIC_COLUMNS),
                *(n.blocked_by_reason.get(r, 0) for r in reasons),
                n.attributed_conversions,
                n.cost,
            ]
            for n in report.nodes
        ),
    )
    _write_table(
        writer,
        "goals",
        ["goal", "kind", "event", "window_seconds", "conversions", "rate"],
        ([g.key, g.kind, g.event, g.window_seconds, g.conversions, g.rate] for g in report.goals),
    )
    variant_columns = [
        "variant",
        "baseline",
        "users",
        "conversions",
        "rate",
        "planned_share",
        "difference",
        "lift",
        "ci_low",
        "ci_high",
        "p_value",
        "chance_to_win",
    ]
    _write_table(
        writer,
        f"variants (srm_p_value={report.experiment.srm_p_value})",
        variant_columns,
        ([getattr(v, c) for c in variant_columns] for v in report.experiment.variants),
    )
    channel_columns = [
        "channel",
        "unit",
        "unit_price",
        "messages_sent",
        "billed_units",
        "cost",
        "conversions",
        "cost_per_conversion",
    ]
    _write_table(
        writer,
        "channels (CNY)",
        channel_columns,
        ([getattr(c, k) for k in channel_columns] for c in report.channels),
    )
    if report.breakdown_by is not None:
        reasons = _reasons(report.breakdown)
        _write_table(
            writer,
            f"breakdown by {report.breakdown_by}",
            [report.breakdown_by, "node_id", *_METRIC_COLUMNS, *(f"blocked:{r}" for r in reasons)],
            (
                [
                    r.group,
                    r.node_id,
                    *(getattr(r, c) for c in _METRIC_COLUMNS),
                    *(r.blocked_by_reason.get(k, 0) for k in reasons),
                ]
                for r in report.breakdown
            ),
        )
    return buffer.getvalue()


def campaign_csv(report: CampaignReportOut) -> str:
    """The campaign report as CSV: per journey rows then the total; channel costs."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    rows = [*report.journeys, report.total]
    reasons = _reasons(rows)
    columns = ["entrants", *_METRIC_COLUMNS[2:-1], "conversions", "conversion_rate", "cost"]
    _write_table(
        writer,
        f"campaign {report.campaign}",
        ["journey_id", "name", *columns, *(f"blocked:{r}" for r in reasons)],
        (
            [
                r.journey_id if r.journey_id is not None else "total",
                r.name,
                *(getattr(r, c) for c in columns),
                *(r.blocked_by_reason.get(k, 0) for k in reasons),
            ]
            for r in rows
        ),
    )
    _write_table(
        writer,
        "channels (CNY)",
        ["channel", "messages_sent", "billed_units", "cost", "conversions", "cost_per_conversion"],
        (
            [
                c.channel,
                c.messages_sent,
                c.billed_units,
                c.cost,
                c.conversions,
                c.cost_per_conversion,
            ]
            for c in report.channels
        ),
    )
    return buffer.getvalue()


# -- channel prices ----------------------------------------------------------------------------
def _price_out(price: ChannelPrice) -> ChannelPriceOut:
    return ChannelPriceOut(
        channel=price.channel,
        unit=_unit(price.unit),
        unit_price=_money(price.unit_price),
        updated_by=price.updated_by,
        updated_at=price.updated_at,
    )


def list_prices(*, session: Session, project_id: int) -> list[ChannelPriceOut]:
    """Unit prices of the project's channels, by channel name."""
    return [_price_out(p) for _, p in sorted(_prices(session, project_id).items())]


def set_price(
    *,
    session: Session,
    project_id: int,
    channel: str,
    price_in: ChannelPriceIn,
    actor: str,
    now: datetime,
) -> ChannelPriceOut:
    """Create or replace the unit price of ``channel`` (CNY, 4 decimals)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,31}", channel):
        raise InvalidInput(f"{channel!r} is not a channel name", detail={"field": "channel"})
    price = _prices(session, project_id).get(channel)
    if price is None:
        price = ChannelPrice(project_id=project_id, channel=channel)
        session.add(price)
    price.unit = price_in.unit
    price.unit_price = Decimal(str(price_in.unit_price)).quantize(Decimal("0.0001"))
    price.updated_by = actor
    price.updated_at = utc_naive(now)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="analytics.channel_price",
        target=f"channel:{channel}",
        detail={"unit": price.unit, "unit_price": str(price.unit_price)},
        project_id=project_id,
        now=now,
    )
    log.info("channel_price_set", project_id=project_id, channel=channel, unit=price.unit)
    return _price_out(price)


def delete_price(
    *, session: Session, project_id: int, channel: str, actor: str, now: datetime
) -> None:
    """Remove a channel's price (its messages then cost nothing in reports); audited."""
    price = _prices(session, project_id).get(channel)
    if price is None:
        raise NotFound(f"no price for channel {channel!r}")
    session.delete(price)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="analytics.channel_price_deleted",
        target=f"channel:{channel}",
        detail={},
        project_id=project_id,
        now=now,
    )


# -- live counts -------------------------------------------------------------------------------
def check_live_access(
    *, session: Session, project_id: int, journey_id: int, principal: Principal
) -> None:
    """Refuse live counts to a scoped principal (they cover every customer) and unknown
    journeys. Raises :class:`Forbidden` or :class:`NotFound`."""
    if principal.branch_scope is not None or principal.advisor_id is not None:
        raise Forbidden(
            "live journey counts cover every customer: a branch- or advisor-scoped user reads "
            "the journey report instead"
        )
    _journey(session, project_id, journey_id)


def live_counts(
    *, session: Session, project_id: int, journey_id: int, version: int | None = None
) -> LiveCountsOut:
    """Per node now: engine counters (summed over versions unless ``version``), customers
    in flight there, messages per current status and blocked per reason; for the journey
    (every version, as ``journeys/{id}/stats``): occurrences started, in flight and done; and
    goal counters of the version(s) shown."""
    journey = _journey(session, project_id, journey_id)
    definition, version_filter = _definition(session, journey, version)
    versions = select(JourneyVersion.id).where(JourneyVersion.journey_id == journey.id)
    if version_filter is not None:
        versions = versions.where(JourneyVersion.number == version_filter)
    version_ids = [int(v) for v in session.scalars(versions)]
    counters: dict[str, dict[str, int]] = {}
    messages: dict[str, dict[str, int]] = {}
    blocked: dict[str, dict[str, int]] = {}
    active: dict[str, int] = {}
    statuses: dict[str, int] = {}
    if version_ids:
        for node_id, metric, count in session.execute(
            select(
                JourneyNodeCount.node_id, JourneyNodeCount.metric, func.sum(JourneyNodeCount.count)
            )
            .where(JourneyNodeCount.version_id.in_(version_ids))
            .group_by(JourneyNodeCount.node_id, JourneyNodeCount.metric)
        ):
            counters.setdefault(node_id, {})[metric] = int(count or 0)
        # One pass over the states gives both the per-node in-flight numbers and the totals.
        for node_id, status, count in session.execute(
            select(JourneyState.node_id, JourneyState.status, func.count())
            .where(JourneyState.version_id.in_(version_ids))
            .group_by(JourneyState.node_id, JourneyState.status)
        ):
            statuses[status] = statuses.get(status, 0) + int(count)
            if status in IN_FLIGHT:
                active[str(node_id)] = active.get(str(node_id), 0) + int(count)
    query = (
        select(Message.node_id, Message.status, Message.reason, func.count())
        .where(Message.journey_id == journey.id)
        .group_by(Message.node_id, Message.status, Message.reason)
    )
    if version_filter is not None:
        query = query.where(Message.version_id.in_(version_ids or [-1]))
    for message_node, status, reason, count in session.execute(query):
        node = str(message_node)
        by_status = messages.setdefault(node, {})
        by_status[status] = by_status.get(status, 0) + int(count)
        if status == "blocked":
            label = reason or "unknown"
            blocked.setdefault(node, {})[label] = blocked.get(node, {}).get(label, 0) + int(count)
    goals: dict[str, int] = {}
    for node_counters in counters.values():  # goal nodes and the journey's goal metrics
        for metric, count in node_counters.items():
            if metric.startswith("goal:"):
                goals[metric[5:]] = goals.get(metric[5:], 0) + count
    if version_filter is not None:
        # Journey totals are the whole journey's, whatever the version shown (as /stats).
        statuses = {
            str(status): int(n)
            for status, n in session.execute(
                select(JourneyState.status, func.count())
                .where(JourneyState.journey_id == journey.id)
                .group_by(JourneyState.status)
            )
        }
    types = {n.id: n.type for n in definition.nodes}
    return LiveCountsOut(
        journey_id=journey.id,
        version=version_filter,
        entered=sum(statuses.values()),
        in_flight=sum(statuses.get(s, 0) for s in IN_FLIGHT),
        completed=statuses.get("done", 0),
        goals=goals,
        nodes=[
            LiveNodeCounts(
                node_id=node_id,
                type=types[node_id],
                entered=counters.get(node_id, {}).get("entered", 0),
                active=active.get(node_id, 0),
                counters=counters.get(node_id, {}),
                messages=messages.get(node_id, {}),
                blocked=blocked.get(node_id, {}),
            )
            for node_id in graph_order(definition)
        ],
    )
