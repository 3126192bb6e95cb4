"""The journey engine: moves customers through published journeys in set-oriented batches.

Three sources of work, each handled in its own transactions by :meth:`Engine.run_once`:

* **segment entries** — everyone in a segment (once, or on a cron), in chunks of ascending
  user id with the progress stored with each chunk, so a crash resumes where it stopped;
* **the live feed** — events the journeys watch (``flywheel.ingest.feed``): event entries,
  "did A but not B", waits, goals and journey goal metrics;
* **due states** — customers whose delay or wait timed out (``wake_at <= now``), claimed with
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several workers share the work.

A batch walks every customer through the instant nodes (condition, split, send …) in memory,
node by node for the whole group (:mod:`flywheel.journeys.walker`; a condition is one
warehouse query for the batch), until each customer waits or ends; then
(:mod:`flywheel.journeys.writer`) the new states, the messages (outbox, deterministic
idempotency keys), the system events and the node counters are written in **one
transaction**. A crash before the commit loses nothing (the work is redone); after it, nothing
is redone (feed rows are deleted, states moved, keys unique).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter as PromCounter
from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.channels import outbox, system_events
from flywheel.channels.system_events import SystemEvent
from flywheel.core.clock import SHANGHAI, to_utc, utc_naive
from flywheel.core.errors import Conflict, FlywheelError, InvalidInput
from flywheel.core.memory import gc_paused
from flywheel.ingest import feed
from flywheel.journeys import service, writer
from flywheel.journeys.batch import (
    CONTROL,
    SENDING_TYPES,
    Batch,
    Cursor,
    Loaded,
    bucket,
    cursor_of,
    end,
    matches,
    props,
)
from flywheel.journeys.models import Journey, JourneyState, JourneyVersion
from flywheel.journeys.schemas import (
    EntryEvent,
    EntryNotDone,
    EntrySegment,
    EntrySegmentChange,
    Goal,
    Node,
    WaitEvent,
)
from flywheel.journeys.validation import NEXT, build_graph
from flywheel.journeys.walker import Walker
from flywheel.runtime import Runtime
from flywheel.segments import service as segments
from flywheel.segments.service import ENTER_EVENT, LEAVE_EVENT

log = structlog.get_logger(__name__)

ENTERED = PromCounter("flywheel_journey_entries_total", "Customers entering journeys")

ENTRY_CHUNK = 20_000
DUE_BATCH = 10_000
FEED_BATCH = 5_000


class Engine:
    """Runs journeys for every project of a runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._loaded: dict[int, Loaded] = {}
        self.walker = Walker(runtime)

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
        for user_id, trigger_props, when in arrivals:
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
            if trigger_props is not None:
                context["event"] = trigger_props
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
                    properties=props(loaded, cursor),
                )
            )
        if not cursors:
            return 0
        self.walker.walk(session, batch, {entry_id: cursors})
        writer.write(session, batch, self.runtime.warehouse)
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
            cursor = cursor_of(state)
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
                end(batch, cursor, "exited", "did_not_event")
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
                            properties={**props(loaded, cursor), "goal": node.event},
                        )
                    )
            self.walker.resume(session, batch, moves.get(version_id, []))
            writer.write(session, batch, self.runtime.warehouse)
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
            writer.bump(session, loaded.version_id, batch.counts)
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
                    moves.append((cursor_of(state), port))
                self.walker.resume(session, batch, moves)
                writer.write(session, batch, self.runtime.warehouse)
        return len(states)


# -- helpers -----------------------------------------------------------------------------------
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
