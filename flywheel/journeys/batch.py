"""What a journey batch works on: published versions, customers in flight and what one
transaction writes, plus the small pure helpers every node handler shares."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flywheel.channels import outbox, system_events
from flywheel.channels.system_events import SystemEvent
from flywheel.journeys.models import JourneyState
from flywheel.journeys.schemas import ENTRY_TYPES, JourneyDefinition, PropertyFilter
from flywheel.journeys.validation import Graph

CONTROL = "control"
SENDING_TYPES = ("send", "webhook", "advisor_task")
SILENT_TYPES = ENTRY_TYPES | {"exit", *SENDING_TYPES}


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


def props(loaded: Loaded, cursor: Cursor) -> dict[str, Any]:
    """The common properties of a journey system event for ``cursor``."""
    common: dict[str, Any] = {
        "journey_id": loaded.journey_id,
        "journey_version": loaded.number,
        "node_id": cursor.node_id,
    }
    if cursor.variant is not None:
        common["variant"] = cursor.variant
    return common


def end(batch: Batch, cursor: Cursor, status: str, reason: str) -> None:
    """The occurrence ends here (``$JourneyExit`` with the reason, counted on the node)."""
    cursor.status, cursor.wake_at, cursor.wait_event = status, None, None
    batch.counts[(cursor.node_id, f"ended:{reason}")] += 1
    batch.events.append(
        SystemEvent(
            id=f"j{batch.loaded.journey_id}:u{cursor.user_id}:o{cursor.occurrence}:exit",
            user_id=cursor.user_id,
            event=system_events.JOURNEY_EXIT,
            time=batch.now,
            properties={**props(batch.loaded, cursor), "reason": reason},
        )
    )


def path_text(path: list[str]) -> str:
    """The stored path (``a>b>c``), its oldest part cut beyond 2,000 characters."""
    text = ">".join(path)
    return text if len(text) <= 2000 else "…" + text[-1999:]


def cursor_of(state: JourneyState) -> Cursor:
    """A stored state back in flight."""
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
