"""The journey engine: moves customers through published journeys in set-oriented batches.

Three sources of work, each handled in its own transactions by :meth:`Engine.run_once`:

* **segment entries** — everyone in a segment (once, or on a cron), in chunks of ascending
  user id with the progress stored with each chunk, so a crash resumes where it stopped;
* **the live feed** — events the journeys watch (``flywheel.ingest.feed``): event entries,
  "did A but not B", waits, goals and journey goal metrics;
* **due states** — customers whose delay or wait timed out (``wake_at <= now``), claimed with
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several workers share the work.

A batch walks every customer through the instant nodes (condition, split, send …) in memory,
node by node for the whole group (a condition is one warehouse query for the batch), until
each customer waits or ends; then the new states, the messages (outbox, deterministic
idempotency keys), the system events and the node counters are written in **one
transaction**. A crash before the commit loses nothing (the work is redone); after it, nothing
is redone (feed rows are deleted, states moved, keys unique).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import structlog
from prometheus_client import Counter as PromCounter
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flywheel.channels import outbox, system_events
from flywheel.channels.system_events import SystemEvent
from flywheel.core import calendar
from flywheel.core.clock import SHANGHAI, to_utc, utc_naive
from flywheel.core.errors import Conflict, FlywheelError, InvalidInput
from flywheel.core.memory import gc_paused
from flywheel.ingest import feed
from flywheel.ingest import pipeline as ingest_pipeline
from flywheel.journeys import service
from flywheel.journeys.models import Journey, JourneyNodeCount, JourneyState, JourneyVersion
from flywheel.journeys.schemas import (
    ENTRY_TYPES,
    AdvisorTask,
    Condition,
    Delay,
    EntryEvent,
    EntryNotDone,
    EntrySegment,
    EntrySegmentChange,
    Goal,
    JourneyDefinition,
    Node,
    PropertyFilter,
    Recommend,
    Send,
    SetProperty,
    SetTag,
    Split,
    TagBranch,
    WaitEvent,
    Webhook,
)
from flywheel.journeys.validation import NEXT, Graph, build_graph
from flywheel.profiles import service as profiles
from flywheel.recommend import service as recommend_service
from flywheel.runtime import Runtime
from flywheel.segments import service as segments
from flywheel.segments.service import ENTER_EVENT, LEAVE_EVENT
from flywheel.store import bulk
from flywheel.tags import service as tags

log = structlog.get_logger(__name__)

ENTERED = PromCounter("flywheel_journey_entries_total", "Customers entering journeys")
PREPARED = PromCounter("flywheel_journey_messages_prepared_total", "Messages put in the outbox")

CONTROL = "control"
ENTRY_CHUNK = 20_000
DUE_BATCH = 10_000
FEED_BATCH = 5_000
DEFAULT_TRADING_TIME = time(9, 30)
SENDING_TYPES = ("send", "webhook", "advisor_task")
SILENT_TYPES = ENTRY_TYPES | {"exit", *SENDING_TYPES}


# -- loaded versions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Loaded:
    """A published version ready to run (definitions are immutable: cached by id)."""

    journey_id: int
    version_id: int
    number: int
    project_id: int
    definition: JourneyDefinition
    graph: Graph
    spec_ids: dict[str, int]


@dataclass
class Cursor:
    """One customer occurrence in flight during a batch."""

    user_id: int
    occurrence: int
    node_id: str
    entered_at: datetime
    state_id: int | None = None
    variant: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    status: str = "active"
    wake_at: datetime | None = None
    wait_event: str | None = None


@dataclass
class Batch:
    """What one transaction writes for one version."""

    loaded: Loaded
    now: datetime
    messages: list[outbox.NewMessage] = field(default_factory=list)
    events: list[SystemEvent] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    settled: list[Cursor] = field(default_factory=list)
    tag_values: dict[str, dict[int, str]] = field(default_factory=dict)
    properties: dict[int, dict[str, Any]] = field(default_factory=dict)


def matches(filters: Sequence[PropertyFilter], properties: Mapping[str, Any]) -> bool:
    """Whether an event's properties pass every filter (missing properties fail, but for
    ``ne``/``not_in``)."""
    for f in filters:
        value = properties.get(f.property)
        if f.op == "exists":
            ok = value is not None
        elif value is None:
            ok = f.op in ("ne", "not_in")
        elif f.op == "eq":
            ok = value == f.value
        elif f.op == "ne":
            ok = value != f.value
        elif f.op in ("gt", "gte", "lt", "lte"):
            try:
                a, b = float(value), float(f.value)
            except (TypeError, ValueError):
                return False
            ok = {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[f.op]
        elif f.op == "in":
            ok = value in (f.value or [])
        elif f.op == "not_in":
            ok = value not in (f.value or [])
        else:  # contains
            ok = str(f.value) in (value if isinstance(value, list) else str(value))
        if not ok:
            return False
    return True


def bucket(*parts: object) -> float:
    """A stable number in [0, 100) for a customer (splits and control groups)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1_000_000 / 10_000


def message_key(loaded: Loaded, node_id: str, cursor: Cursor) -> str:
    """The idempotency key: one message per (journey version, node, customer, occurrence)."""
    return f"j{loaded.journey_id}:v{loaded.number}:{node_id}:u{cursor.user_id}:o{cursor.occurrence}"


class Engine:
    """Runs journeys for every project of a runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._loaded: dict[int, Loaded] = {}

    # -- public ------------------------------------------------------------------------------
    def run_once(self) -> int:
        """One round of every kind of work; how many customers moved."""
        return self.enter_segments() + self.consume_feed() + self.advance_due()

    def trigger(
        self,
        *,
        session: Session,
        project_id: int,
        journey_id: int,
        user_ids: Sequence[int],
        properties: Mapping[str, Any],
        now: datetime,
    ) -> tuple[int, int]:
        """API entry (``entry_api`` nodes), in the caller's transaction: (entered, skipped)."""
        journey = service._get(session, project_id, journey_id)
        if journey.status != "published" or journey.live_version_id is None:
            raise Conflict("only a published journey can be triggered")
        loaded = self._load(session, journey.live_version_id)
        entry = next((n for n in loaded.definition.nodes if n.type == "entry_api"), None)
        if entry is None:
            raise InvalidInput("this journey has no API entry node")
        arrivals = [(u, dict(properties), now) for u in dict.fromkeys(user_ids)]
        entered = self._enter(session, loaded, entry.id, arrivals, now)
        return entered, len(user_ids) - entered

    # -- loading -----------------------------------------------------------------------------
    def _load(self, session: Session, version_id: int) -> Loaded:
        cached = self._loaded.get(version_id)
        if cached is not None:
            return cached
        version = session.get(JourneyVersion, version_id)
        if version is None:
            raise FlywheelError(f"journey version {version_id} is gone")
        definition = service.parse_definition(version.definition)
        spec_ids = outbox.spec_ids(
            session=session,
            owners={
                n.id: service.spec_owner(version.journey_id, version, n.id)
                for n in definition.nodes
                if n.type in SENDING_TYPES
            },
        )
        loaded = Loaded(
            journey_id=version.journey_id,
            version_id=version.id,
            number=version.number,
            project_id=version.project_id,
            definition=definition,
            graph=build_graph(definition),
            spec_ids=spec_ids,
        )
        self._loaded[version_id] = loaded
        return loaded

    def _running(self, session: Session, project_id: int | None = None) -> list[JourneyVersion]:
        """Versions that take new entries: the live version of each published journey."""
        query = (
            select(JourneyVersion)
            .join(Journey, Journey.live_version_id == JourneyVersion.id)
            .where(Journey.status == "published")
        )
        if project_id is not None:
            query = query.where(Journey.project_id == project_id)
        return list(session.scalars(query))

    # -- segment entries ---------------------------------------------------------------------
    @gc_paused()
    def enter_segments(self) -> int:
        moved = 0
        with self.runtime.db.unit_of_work() as session:
            due = [
                (v.id, node.id)
                for v in self._running(session)
                for node in self._load(session, v.id).definition.nodes
                if isinstance(node, EntrySegment) and self._segment_due(v, node)
            ]
        for version_id, node_id in due:
            while True:
                done, count = self._segment_chunk(version_id, node_id)
                moved += count
                if done:
                    break
        return moved

    def _segment_due(self, version: JourneyVersion, node: EntrySegment) -> bool:
        run = version.entry_runs.get(node.id)
        now = self.runtime.clock()
        if run is None:
            return node.mode == "once" or self._next_fire(node, None, now) is not None
        if not run.get("done"):
            return True
        if node.mode == "once":
            return False
        return self._next_fire(node, datetime.fromisoformat(run["started"]), now) is not None

    @staticmethod
    def _next_fire(node: EntrySegment, last: datetime | None, now: datetime) -> datetime | None:
        """The first cron fire time after ``last`` if it has passed, else None. Before the
        first run, the fires of the last day count: a schedule whose time of day has passed
        today runs at once."""
        from croniter import croniter

        assert node.cron is not None
        local_now = to_utc(now).astimezone(SHANGHAI)
        start = to_utc(last).astimezone(SHANGHAI) if last else local_now - timedelta(days=1)
        fire: datetime = croniter(node.cron, start).get_next(datetime)
        return fire if fire <= local_now else None

    def _segment_chunk(self, version_id: int, node_id: str) -> tuple[bool, int]:
        """Enter the next chunk of a segment entry; (finished, entered)."""
        runtime = self.runtime
        now = runtime.clock()
        with runtime.db.unit_of_work() as session:
            version = session.get(JourneyVersion, version_id)
            journey = session.get(Journey, version.journey_id) if version else None
            if version is None or journey is None or journey.status != "published":
                return True, 0
            loaded = self._load(session, version_id)
            node = loaded.graph.nodes[node_id]
            assert isinstance(node, EntrySegment)
            runs = dict(version.entry_runs)
            run = dict(runs.get(node_id) or {})
            if not run or run.get("done"):
                run = {"started": utc_naive(now).isoformat(), "after": 0, "done": False}
                self._refresh_segment(session, loaded.project_id, node.segment_id, now)
            ids = segments.member_ids_after(
                warehouse=runtime.warehouse,
                project_id=loaded.project_id,
                segment_id=node.segment_id,
                after=int(run["after"]),
                limit=ENTRY_CHUNK,
            )
            entered = self._enter(session, loaded, node_id, [(u, None, now) for u in ids], now)
            if len(ids) < ENTRY_CHUNK:
                run["done"] = True
            if ids:
                run["after"] = ids[-1]
            runs[node_id] = run
            version.entry_runs = runs
        log.info("journey_segment_entry", version=version_id, node=node_id, entered=entered)
        return bool(run["done"]), entered

    def _refresh_segment(
        self, session: Session, project_id: int, segment_id: int, now: datetime
    ) -> None:
        """A dynamic segment is recomputed when an entry run starts: customers enter as the
        segment is now, not as of its last scheduled refresh."""
        segment = segments.get_segment(
            session=session, project_id=project_id, segment_id=segment_id
        )
        if segment.mode == "dynamic":
            segments.refresh_segment(
                session=session,
                warehouse=self.runtime.warehouse,
                project_id=project_id,
                segment_id=segment_id,
                now=now,
            )

    # -- entering ----------------------------------------------------------------------------
    def _enter(
        self,
        session: Session,
        loaded: Loaded,
        entry_id: str,
        arrivals: Sequence[tuple[int, dict[str, Any] | None, datetime]],
        now: datetime,
    ) -> int:
        """Start occurrences for ``arrivals`` (user, trigger properties, time) at ``entry_id``
        under the journey's re-entry rules and schedule; write the batch. How many entered."""
        definition = loaded.definition
        window = definition.schedule
        at = utc_naive(now)
        if (window.start_at and at < utc_naive(window.start_at)) or (
            window.end_at and at > utc_naive(window.end_at)
        ):
            return 0
        users = [u for u, _, _ in arrivals]
        history = self._history(session, loaded.journey_id, users)
        cooldown = timedelta(seconds=definition.reentry_cooldown_seconds)
        batch = Batch(loaded=loaded, now=now)
        cursors: list[Cursor] = []
        for user_id, props, when in arrivals:
            last_occurrence, last_entered, in_flight = history.get(user_id, (0, None, False))
            if last_occurrence and (
                definition.reentry == "never"
                or (definition.reentry == "after_exit" and in_flight)
                or (last_entered is not None and at - last_entered < cooldown)
            ):
                continue
            occurrence = last_occurrence + 1
            history[user_id] = (occurrence, at, True)
            variant = (
                CONTROL
                if definition.control_percent
                and bucket(loaded.journey_id, "control", user_id) < definition.control_percent
                else None
            )
            context: dict[str, Any] = {}
            if props is not None:
                context["event"] = props
                context["event_time"] = utc_naive(when).isoformat()
            cursor = Cursor(
                user_id=user_id,
                occurrence=occurrence,
                node_id=entry_id,
                entered_at=at,
                variant=variant,
                context=context,
            )
            cursors.append(cursor)
            batch.events.append(
                SystemEvent(
                    id=f"j{loaded.journey_id}:u{user_id}:o{occurrence}:enter",
                    user_id=user_id,
                    event=system_events.JOURNEY_ENTER,
                    time=now,
                    properties=self._props(loaded, cursor),
                )
            )
        if not cursors:
            return 0
        self._walk(session, batch, {entry_id: cursors})
        self._write(session, batch)
        ENTERED.inc(len(cursors))
        return len(cursors)

    def _history(
        self, session: Session, journey_id: int, users: Sequence[int]
    ) -> dict[int, tuple[int, datetime | None, bool]]:
        """Per user: last occurrence, when it entered, whether any occurrence is in flight."""
        found: dict[int, tuple[int, datetime | None, bool]] = {}
        if not users:
            return found
        ordered = sorted(set(users))
        for start in range(0, len(ordered), 20_000):
            chunk = ordered[start : start + 20_000]
            rows = session.execute(
                select(
                    JourneyState.user_id,
                    JourneyState.occurrence,
                    JourneyState.entered_at,
                    JourneyState.status,
                ).where(
                    JourneyState.journey_id == journey_id,
                    JourneyState.user_id >= chunk[0],
                    JourneyState.user_id <= chunk[-1],
                )
            )
            wanted = set(chunk)
            for user_id, occurrence, entered_at, status in rows:
                if user_id not in wanted:
                    continue
                last, last_at, flying = found.get(user_id, (0, None, False))
                if occurrence > last:
                    last, last_at = occurrence, entered_at
                found[user_id] = (last, last_at, flying or status in service.IN_FLIGHT)
        return found

    # -- walking -----------------------------------------------------------------------------
    def _walk(self, session: Session, batch: Batch, arrivals: dict[str, list[Cursor]]) -> None:
        """Move cursors through instant nodes until each waits or ends."""
        graph = batch.loaded.graph
        pending = dict(arrivals)
        while pending:
            node_id = next(iter(pending))
            cursors = pending.pop(node_id)
            node = graph.nodes[node_id]
            for cursor in cursors:
                cursor.node_id = node_id
                cursor.path.append(node_id)
                # Entries, exits and sends have their own event ($JourneyEnter, $JourneyExit,
                # $MessagePrepared — each with the node id): no second event for the node.
                if node.type not in SILENT_TYPES:
                    batch.events.append(
                        SystemEvent(
                            id=f"j{batch.loaded.journey_id}:u{cursor.user_id}:o{cursor.occurrence}"
                            f":{node_id}:{len(cursor.path)}",
                            user_id=cursor.user_id,
                            event=system_events.NODE_ENTER,
                            time=batch.now,
                            properties={
                                **self._props(batch.loaded, cursor),
                                "node_type": node.type,
                            },
                        )
                    )
            batch.counts[(node_id, "entered")] += len(cursors)
            for cursor, port in self._handle(session, batch, node, cursors):
                if port is None:
                    batch.settled.append(cursor)
                    continue
                if port != NEXT:
                    batch.counts[(node_id, f"port:{port}")] += 1
                target = graph.target(node_id, port)
                if target is None:  # a control group that simply ends
                    self._end(batch, cursor, "done", "control")
                    batch.settled.append(cursor)
                else:
                    pending.setdefault(target, []).append(cursor)

    def _resume(self, session: Session, batch: Batch, moves: Iterable[tuple[Cursor, str]]) -> None:
        """Cursors leaving a waiting node through ``port``."""
        arrivals: dict[str, list[Cursor]] = {}
        graph = batch.loaded.graph
        for cursor, port in moves:
            cursor.status, cursor.wake_at, cursor.wait_event = "active", None, None
            if port != NEXT:
                batch.counts[(cursor.node_id, f"port:{port}")] += 1
            target = graph.target(cursor.node_id, port)
            if target is None:
                self._end(batch, cursor, "done", "control")
                batch.settled.append(cursor)
            else:
                arrivals.setdefault(target, []).append(cursor)
        self._walk(session, batch, arrivals)

    def _end(self, batch: Batch, cursor: Cursor, status: str, reason: str) -> None:
        cursor.status, cursor.wake_at, cursor.wait_event = status, None, None
        batch.counts[(cursor.node_id, f"ended:{reason}")] += 1
        batch.events.append(
            SystemEvent(
                id=f"j{batch.loaded.journey_id}:u{cursor.user_id}:o{cursor.occurrence}:exit",
                user_id=cursor.user_id,
                event=system_events.JOURNEY_EXIT,
                time=batch.now,
                properties={**self._props(batch.loaded, cursor), "reason": reason},
            )
        )

    @staticmethod
    def _props(loaded: Loaded, cursor: Cursor) -> dict[str, Any]:
        props: dict[str, Any] = {
            "journey_id": loaded.journey_id,
            "journey_version": loaded.number,
            "node_id": cursor.node_id,
        }
        if cursor.variant is not None:
            props["variant"] = cursor.variant
        return props

    def _handle(
        self, session: Session, batch: Batch, node: Node, cursors: list[Cursor]
    ) -> list[tuple[Cursor, str | None]]:
        """Each cursor's exit port, or None when it settled (waits or ended)."""
        now = batch.now
        if node.type in ("entry_segment", "entry_segment_change", "entry_event", "entry_api"):
            return [(c, NEXT) for c in cursors]
        if isinstance(node, EntryNotDone):
            started = {
                c.user_id: datetime.fromisoformat(
                    c.context.get("event_time", utc_naive(now).isoformat())
                )
                for c in cursors
            }
            for c in cursors:
                self._wait(
                    c, node.not_event, started[c.user_id] + timedelta(seconds=node.within_seconds)
                )
            return [
                (c, NEXT if c.wake_at and c.wake_at <= utc_naive(now) else None) for c in cursors
            ]
        if node.type == "exit":
            for c in cursors:
                self._end(batch, c, "done", "exit")
            return [(c, None) for c in cursors]
        if isinstance(node, Delay):
            return self._delay(session, batch, node, cursors)
        if isinstance(node, WaitEvent | Goal):
            seconds = node.timeout_seconds if isinstance(node, WaitEvent) else node.window_seconds
            for c in cursors:
                self._wait(c, node.event, utc_naive(now) + timedelta(seconds=seconds))
            return [(c, None) for c in cursors]
        if isinstance(node, Condition):
            yes = segments.matching_users(
                session=session,
                warehouse=self.runtime.warehouse,
                project_id=batch.loaded.project_id,
                rule=node.rule,
                user_ids=[c.user_id for c in cursors],
                now=now,
            )
            return [(c, "yes" if c.user_id in yes else "no") for c in cursors]
        if isinstance(node, Split):
            return [(c, self._split(batch, node, c)) for c in cursors]
        if isinstance(node, TagBranch):
            values = tags.values_of(
                warehouse=self.runtime.warehouse,
                project_id=batch.loaded.project_id,
                tag=node.tag,
                user_ids=[c.user_id for c in cursors],
            )
            ports = {v: case.port for case in node.cases for v in case.values}
            return [(c, ports.get(str(values.get(c.user_id)), "else")) for c in cursors]
        if isinstance(node, Send | Webhook | AdvisorTask):
            self._prepare(batch, node, cursors)
            return [(c, NEXT) for c in cursors]
        if isinstance(node, Recommend):
            for c in cursors:
                c.context["recommendations"] = self._recommend(session, batch, node, c.user_id)
            return [(c, NEXT) for c in cursors]
        if isinstance(node, SetTag):
            batch.tag_values.setdefault(node.tag, {}).update(
                {c.user_id: node.value for c in cursors}
            )
            return [(c, NEXT) for c in cursors]
        if isinstance(node, SetProperty):
            for c in cursors:
                batch.properties.setdefault(c.user_id, {})[node.property] = node.value
            return [(c, NEXT) for c in cursors]
        raise FlywheelError(f"no handler for node type {node.type}")  # pragma: no cover

    @staticmethod
    def _wait(cursor: Cursor, event: str, until: datetime) -> None:
        cursor.status, cursor.wait_event, cursor.wake_at = "waiting", event, utc_naive(until)

    def _split(self, batch: Batch, node: Split, cursor: Cursor) -> str:
        total = sum(b.weight for b in node.branches)
        point = bucket(batch.loaded.journey_id, node.id, cursor.user_id) / 100 * total
        acc = 0.0
        chosen = node.branches[-1].port
        for branch in node.branches:
            acc += branch.weight
            if point < acc:
                chosen = branch.port
                break
        if cursor.variant != CONTROL:  # the global control group stays control
            cursor.variant = chosen
        return chosen

    def _delay(
        self, session: Session, batch: Batch, node: Delay, cursors: list[Cursor]
    ) -> list[tuple[Cursor, str | None]]:
        now = utc_naive(batch.now)
        wakes: dict[int, datetime | None] = {}
        if node.mode == "duration":
            assert node.seconds is not None
            wake = now + timedelta(seconds=node.seconds)
            wakes = {c.user_id: wake for c in cursors}
        elif node.mode == "until_time":
            assert node.time is not None
            wake = next_time_of_day(batch.now, node.time)
            wakes = {c.user_id: wake for c in cursors}
        elif node.mode == "trading_days":
            assert node.days is not None
            wake = after_trading_days(batch.now, node.days, node.time)
            wakes = {c.user_id: wake for c in cursors}
        else:
            assert node.property is not None
            found = profiles.load_profiles(
                session=session,
                project_id=batch.loaded.project_id,
                user_ids=[c.user_id for c in cursors],
            )
            for c in cursors:
                moment = _as_moment(found.get(c.user_id, {}).get(node.property))
                wakes[c.user_id] = (
                    moment + timedelta(seconds=node.offset_seconds) if moment else None
                )
        out: list[tuple[Cursor, str | None]] = []
        for c in cursors:
            wake_at = wakes.get(c.user_id)
            if wake_at is None or wake_at <= now:
                out.append((c, NEXT))  # no date, or already past: go on
            else:
                c.status, c.wake_at = "active", wake_at
                out.append((c, None))
        return out

    def _prepare(
        self, batch: Batch, node: Send | Webhook | AdvisorTask, cursors: list[Cursor]
    ) -> None:
        loaded = batch.loaded
        spec_id = loaded.spec_ids[node.id]
        channel = (
            node.channel
            if isinstance(node, Send)
            else ("webhook" if isinstance(node, Webhook) else "advisor")
        )
        for c in cursors:
            if c.variant == CONTROL:
                batch.counts[(node.id, "held_control")] += 1
                continue
            context: dict[str, Any] = {}
            for name in ("event", "recommendations"):
                if name in c.context:
                    context[name] = c.context[name]
            batch.messages.append(
                outbox.NewMessage(
                    key=message_key(loaded, node.id, c),
                    user_id=c.user_id,
                    spec_id=spec_id,
                    channel=channel,
                    purpose=loaded.definition.purpose,
                    journey_id=loaded.journey_id,
                    version_id=loaded.version_id,
                    node_id=node.id,
                    variant=c.variant,
                    priority=loaded.definition.priority,
                    context=context,
                    due_at=batch.now,
                )
            )

    def _recommend(
        self, session: Session, batch: Batch, node: Recommend, user_id: int
    ) -> list[dict[str, Any]]:
        try:
            result = recommend_service.recommend(
                session=session,
                warehouse=self.runtime.warehouse,
                models_root=recommend_service.models_dir(self.runtime.settings.data_dir),
                project_id=batch.loaded.project_id,
                scene=node.scene,
                user_id=user_id,
                now=batch.now,
                n=node.n,
            )
        except FlywheelError as exc:
            log.warning("journey_recommend_failed", node=node.id, error=str(exc))
            batch.counts[(node.id, "recommend_failed")] += 1
            return []
        if not result.items:
            batch.counts[(node.id, "recommend_empty")] += 1
        return [item.model_dump(mode="json") for item in result.items]

    # -- writing -----------------------------------------------------------------------------
    def _write(self, session: Session, batch: Batch) -> None:
        loaded = batch.loaded
        at = utc_naive(batch.now)
        new = [c for c in batch.settled if c.state_id is None]
        old = [c for c in batch.settled if c.state_id is not None]
        connection = session.connection()
        stamp = bulk.db_datetime(connection, at)
        empty = bulk.db_json({})

        def when(moment: datetime | None) -> Any:
            return stamp if moment == at else bulk.db_datetime(connection, moment)

        bulk.insert(
            connection,
            "journey_states",
            (
                "project_id",
                "journey_id",
                "version_id",
                "user_id",
                "occurrence",
                "node_id",
                "status",
                "wake_at",
                "wait_event",
                "variant",
                "path",
                "context",
                "entered_at",
                "updated_at",
            ),
            [
                (
                    loaded.project_id,
                    loaded.journey_id,
                    loaded.version_id,
                    c.user_id,
                    c.occurrence,
                    c.node_id,
                    c.status,
                    when(c.wake_at),
                    c.wait_event,
                    c.variant,
                    _path(c.path),
                    bulk.db_json(c.context) if c.context else empty,
                    when(c.entered_at),
                    stamp,
                )
                for c in new
            ],
        )
        bulk.update_by_id(
            connection,
            "journey_states",
            (
                "version_id",
                "node_id",
                "status",
                "wake_at",
                "wait_event",
                "variant",
                "path",
                "context",
                "updated_at",
            ),
            [
                (
                    loaded.version_id,
                    c.node_id,
                    c.status,
                    when(c.wake_at),
                    c.wait_event,
                    c.variant,
                    _path(c.path),
                    bulk.db_json(c.context) if c.context else empty,
                    stamp,
                    c.state_id,
                )
                for c in old
            ],
        )
        if batch.properties:
            ingest_pipeline.set_profile_properties(
                session=session,
                project_id=loaded.project_id,
                values=batch.properties,
                now=batch.now,
            )
        ids = outbox.enqueue(
            session=session, project_id=loaded.project_id, messages=batch.messages, now=batch.now
        )
        for message in batch.messages:
            message_id = ids.get(message.key)
            if message_id is None:
                continue  # already in the outbox: never a second message
            assert message.node_id is not None
            batch.counts[(message.node_id, "prepared")] += 1
            batch.events.append(
                SystemEvent(
                    id=f"msg{message_id}-prepared",
                    user_id=message.user_id,
                    event=system_events.MESSAGE_PREPARED,
                    time=batch.now,
                    properties={
                        "message_id": message_id,
                        "journey_id": loaded.journey_id,
                        "journey_version": loaded.number,
                        "node_id": message.node_id,
                        "channel": message.channel,
                        **({"variant": message.variant} if message.variant else {}),
                    },
                )
            )
        PREPARED.inc(len(ids))
        system_events.emit(
            session=session, project_id=loaded.project_id, events=batch.events, now=batch.now
        )
        self._bump(session, loaded.version_id, batch.counts)
        # Warehouse tag writes are idempotent (a set value set again); done before the commit
        # so a failure here rolls the batch back and it is redone.
        for tag, values in batch.tag_values.items():
            tags.set_values(
                warehouse=self.runtime.warehouse,
                project_id=loaded.project_id,
                tag=tag,
                values=values,
                now=batch.now,
            )

    @staticmethod
    def _bump(session: Session, version_id: int, counts: Counter[tuple[str, str]]) -> None:
        if not counts:
            return
        rows = [
            {"version_id": version_id, "node_id": node, "metric": metric, "count": n}
            for (node, metric), n in counts.items()
        ]
        dialect = session.get_bind().dialect.name
        stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(JourneyNodeCount)
        stmt = stmt.on_conflict_do_update(
            index_elements=["version_id", "node_id", "metric"],
            set_={"count": JourneyNodeCount.count + stmt.excluded.count},
        )
        session.execute(stmt, rows)

    # -- the live feed -----------------------------------------------------------------------
    @gc_paused()
    def consume_feed(self) -> int:
        moved = 0
        now = self.runtime.clock()
        with self.runtime.db.unit_of_work() as session:
            taken = feed.take(session=session, subscriber=service.SUBSCRIBER, limit=FEED_BATCH)
            if not taken:
                return 0
            by_project: dict[int, list[feed.FedEvent]] = {}
            for event in taken:
                by_project.setdefault(event.project_id, []).append(event)
            for project_id, events in by_project.items():
                moved += self._feed_project(session, project_id, events, now)
            feed.ack(session=session, ids=[e.id for e in taken])
        return moved or len(taken)

    def _feed_project(
        self, session: Session, project_id: int, events: list[feed.FedEvent], now: datetime
    ) -> int:
        moved = self._feed_waits(session, project_id, events, now)
        moved += self._feed_goals(session, project_id, events, now)
        for version in self._running(session, project_id):
            loaded = self._load(session, version.id)
            for node in loaded.definition.nodes:
                arrivals = [(e.user_id, e.properties, e.time) for e in events if _is_entry(node, e)]
                if arrivals:
                    moved += self._enter(session, loaded, node.id, arrivals, now)
        return moved

    def _feed_waits(
        self, session: Session, project_id: int, events: list[feed.FedEvent], now: datetime
    ) -> int:
        """Customers waiting for one of these events move on (or, for "did A but not B",
        leave)."""
        names = {e.event for e in events}
        users = {e.user_id for e in events}
        states = list(
            session.scalars(
                select(JourneyState)
                .join(Journey, Journey.id == JourneyState.journey_id)
                .where(
                    JourneyState.project_id == project_id,
                    JourneyState.status == "waiting",
                    JourneyState.wait_event.in_(names),
                    JourneyState.user_id.in_(users),
                    Journey.status == "published",
                )
            )
        )
        if not states:
            return 0
        by_user: dict[tuple[int, str], list[feed.FedEvent]] = {}
        for e in events:
            by_user.setdefault((e.user_id, e.event), []).append(e)
        moves: dict[int, list[tuple[Cursor, str]]] = {}
        exits: dict[int, list[Cursor]] = {}
        for state in states:
            loaded = self._load(session, state.version_id)
            node = loaded.graph.nodes.get(state.node_id)
            candidates = by_user.get((state.user_id, state.wait_event or ""), [])
            started = state.updated_at - timedelta(seconds=1)
            hit = next(
                (e for e in candidates if utc_naive(e.time) >= started and _node_filter(node, e)),
                None,
            )
            if hit is None or node is None:
                continue
            cursor = _cursor(state)
            if isinstance(node, EntryNotDone):
                exits.setdefault(state.version_id, []).append(cursor)
                continue
            cursor.context["event"] = hit.properties
            port = "reached" if isinstance(node, Goal) else "event"
            moves.setdefault(state.version_id, []).append((cursor, port))
        moved = 0
        for version_id in set(moves) | set(exits):
            loaded = self._load(session, version_id)
            batch = Batch(loaded=loaded, now=now)
            for cursor in exits.get(version_id, []):
                self._end(batch, cursor, "exited", "did_not_event")
                batch.settled.append(cursor)
            for cursor, port in moves.get(version_id, []):
                node = loaded.graph.nodes[cursor.node_id]
                if port == "reached" and isinstance(node, Goal):
                    batch.counts[(node.id, f"goal:{node.event}")] += 1
                    batch.events.append(
                        SystemEvent(
                            id=f"j{loaded.journey_id}:u{cursor.user_id}:o{cursor.occurrence}"
                            f":goal:{node.id}",
                            user_id=cursor.user_id,
                            event=system_events.GOAL,
                            time=now,
                            properties={**self._props(loaded, cursor), "goal": node.event},
                        )
                    )
            self._resume(session, batch, moves.get(version_id, []))
            self._write(session, batch)
            moved += len(batch.settled)
        return moved

    def _feed_goals(
        self, session: Session, project_id: int, events: list[feed.FedEvent], now: datetime
    ) -> int:
        """Journey goal metrics: a goal event within the window after entry, once per
        occurrence, recorded as ``$JourneyGoal`` and counted."""
        found = 0
        versions = [self._load(session, v.id) for v in self._running(session, project_id)]
        for loaded in versions:
            goals = loaded.definition.goals
            if not goals:
                continue
            relevant = [
                (e, g)
                for e in events
                for g in goals
                if e.event == g.event and matches(g.filters, e.properties)
            ]
            if not relevant:
                continue
            users = {e.user_id for e, _ in relevant}
            states = list(
                session.scalars(
                    select(JourneyState).where(
                        JourneyState.journey_id == loaded.journey_id,
                        JourneyState.user_id.in_(users),
                    )
                )
            )
            batch = Batch(loaded=loaded, now=now)
            for state in states:
                reached = list(state.context.get("goals", []))
                for event, goal in relevant:
                    when = utc_naive(event.time)
                    if (
                        event.user_id != state.user_id
                        or goal.event in reached
                        or not (state.entered_at <= when + timedelta(seconds=1))
                        or when > state.entered_at + timedelta(seconds=goal.window_seconds)
                    ):
                        continue
                    reached.append(goal.event)
                    batch.counts[("__journey__", f"goal:{goal.event}")] += 1
                    batch.events.append(
                        SystemEvent(
                            id=f"j{loaded.journey_id}:u{state.user_id}:o{state.occurrence}"
                            f":goal:{goal.event}",
                            user_id=state.user_id,
                            event=system_events.GOAL,
                            time=event.time,
                            properties={
                                "journey_id": loaded.journey_id,
                                "journey_version": loaded.number,
                                "goal": goal.event,
                                **({"variant": state.variant} if state.variant else {}),
                            },
                        )
                    )
                if len(reached) != len(state.context.get("goals", [])):
                    state.context = {**state.context, "goals": reached}
                    found += 1
            system_events.emit(session=session, project_id=project_id, events=batch.events, now=now)
            self._bump(session, loaded.version_id, batch.counts)
        return found

    # -- due states --------------------------------------------------------------------------
    @gc_paused()
    def advance_due(self) -> int:
        now = self.runtime.clock()
        with self.runtime.db.unit_of_work() as session:
            query = (
                select(JourneyState)
                .join(Journey, Journey.id == JourneyState.journey_id)
                .where(
                    JourneyState.status.in_(service.IN_FLIGHT),
                    JourneyState.wake_at <= utc_naive(now),
                    Journey.status == "published",
                )
                .order_by(JourneyState.wake_at)
                .limit(DUE_BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(of=JourneyState, skip_locked=True)
            states = list(session.scalars(query))
            if not states:
                return 0
            by_version: dict[int, list[JourneyState]] = {}
            for state in states:
                by_version.setdefault(state.version_id, []).append(state)
            for version_id, group in by_version.items():
                loaded = self._load(session, version_id)
                batch = Batch(loaded=loaded, now=now)
                moves = []
                for state in group:
                    node = loaded.graph.nodes[state.node_id]
                    port = {"wait_event": "timeout", "goal": "timeout"}.get(node.type, NEXT)
                    moves.append((_cursor(state), port))
                self._resume(session, batch, moves)
                self._write(session, batch)
        return len(states)


# -- helpers -----------------------------------------------------------------------------------
def _path(path: list[str]) -> str:
    text = ">".join(path)
    return text if len(text) <= 2000 else "…" + text[-1999:]


def _cursor(state: JourneyState) -> Cursor:
    return Cursor(
        user_id=state.user_id,
        occurrence=state.occurrence,
        node_id=state.node_id,
        entered_at=state.entered_at,
        state_id=state.id,
        variant=state.variant,
        context=dict(state.context),
        path=[p for p in state.path.split(">") if p],
        status=state.status,
        wake_at=state.wake_at,
        wait_event=state.wait_event,
    )


def _is_entry(node: Node, event: feed.FedEvent) -> bool:
    if isinstance(node, EntryEvent | EntryNotDone):
        return node.event == event.event and matches(node.filters, event.properties)
    if isinstance(node, EntrySegmentChange):
        name = ENTER_EVENT if node.change == "enter" else LEAVE_EVENT
        segment = event.properties.get("segment_id")
        return event.event == name and segment is not None and int(segment) == node.segment_id
    return False


def _node_filter(node: Node | None, event: feed.FedEvent) -> bool:
    if isinstance(node, WaitEvent | Goal):
        return matches(node.filters, event.properties)
    return node is not None


def _as_moment(value: Any) -> datetime | None:
    """A profile date (Shanghai midnight) or datetime (UTC) as naive UTC."""
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return utc_naive(datetime.combine(day, time(0, 0), tzinfo=SHANGHAI))
        return utc_naive(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def next_time_of_day(now: datetime, hhmm: str) -> datetime:
    """The next ``HH:MM`` in Asia/Shanghai strictly after ``now``, as naive UTC."""
    local = to_utc(now).astimezone(SHANGHAI)
    hour, minute = (int(x) for x in hhmm.split(":"))
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    return utc_naive(target)


def after_trading_days(now: datetime, days: int, hhmm: str | None) -> datetime:
    """``days`` SSE/SZSE trading days after today (Shanghai), at ``hhmm`` (default 09:30)."""
    local = to_utc(now).astimezone(SHANGHAI)
    day = calendar.add_trading_days(local.date(), days)
    at = DEFAULT_TRADING_TIME
    if hhmm:
        hour, minute = hhmm.split(":")
        at = time(int(hour), int(minute))
    return utc_naive(datetime.combine(day, at, tzinfo=SHANGHAI))
