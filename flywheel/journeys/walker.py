"""Node handlers: customers move through instant nodes together, node by node.

A condition is one warehouse query for the whole group, a tag branch one lookup, a send one
outbox row per customer; each customer stops where it waits (delay, wait, goal) or ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from flywheel.channels import outbox, system_events
from flywheel.channels.system_events import SystemEvent
from flywheel.core.clock import utc_naive
from flywheel.core.errors import FlywheelError
from flywheel.journeys.batch import (
    CONTROL,
    SILENT_TYPES,
    Batch,
    Cursor,
    bucket,
    end,
    message_key,
    props,
)
from flywheel.journeys.schemas import (
    AdvisorTask,
    Condition,
    Delay,
    EntryNotDone,
    Goal,
    Node,
    Recommend,
    Send,
    SetProperty,
    SetTag,
    Split,
    TagBranch,
    WaitEvent,
    Webhook,
)
from flywheel.journeys.timing import after_trading_days, as_moment, next_time_of_day
from flywheel.journeys.validation import NEXT
from flywheel.profiles import service as profiles
from flywheel.recommend import service as recommend_service
from flywheel.runtime import Runtime
from flywheel.segments import service as segments
from flywheel.tags import service as tags

log = structlog.get_logger(__name__)


class Walker:
    """Walks cursors of one batch through the graph of its version."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def walk(self, session: Session, batch: Batch, arrivals: dict[str, list[Cursor]]) -> None:
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
                                **props(batch.loaded, cursor),
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
                    end(batch, cursor, "done", "control")
                    batch.settled.append(cursor)
                else:
                    pending.setdefault(target, []).append(cursor)

    def resume(self, session: Session, batch: Batch, moves: Iterable[tuple[Cursor, str]]) -> None:
        """Cursors leaving a waiting node through ``port``."""
        arrivals: dict[str, list[Cursor]] = {}
        graph = batch.loaded.graph
        for cursor, port in moves:
            cursor.status, cursor.wake_at, cursor.wait_event = "active", None, None
            if port != NEXT:
                batch.counts[(cursor.node_id, f"port:{port}")] += 1
            target = graph.target(cursor.node_id, port)
            if target is None:
                end(batch, cursor, "done", "control")
                batch.settled.append(cursor)
            else:
                arrivals.setdefault(target, []).append(cursor)
        self.walk(session, batch, arrivals)

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
                end(batch, c, "done", "exit")
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
                moment = as_moment(found.get(c.user_id, {}).get(node.property))
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
