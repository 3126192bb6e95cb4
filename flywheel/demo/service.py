"""Loading the demo brokerage through the real ingest machinery.

* items (funds, stocks, services, articles), anonymous → login sign-ups and customer profiles
  with their identities (login id 客户号, 资金账号, 两融账户, mobile, WeChat ids) go through the
  per-record path, ``ingest.pipeline.apply_records`` (IDM 3 binds, merges, profile_set);
* events go through the bulk path (``ingest.bulk``): identities resolved in bulk, one Arrow
  append per chunk.

Per chunk of customers the order is what a real app would have produced: the device's
anonymous events, then the sign-up binding the login id to that device's user, then the
profile, then the logged-in events, so events sent before login belong to the customer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flywheel.auth import service as auth
from flywheel.core.clock import to_utc
from flywheel.core.errors import Conflict, InvalidInput
from flywheel.demo.generator import (
    EVENT_PROPERTIES,
    EVENT_PROPERTY_TYPES,
    IDENTITY_COLUMNS,
    PROFILE_PROPERTY_TYPES,
    Demo,
    EventChunk,
    generate,
)
from flywheel.ingest import bulk
from flywheel.ingest.pipeline import apply_records
from flywheel.ingest.records import IngestRecord
from flywheel.projects import service as projects
from flywheel.runtime import Runtime
from flywheel.warehouse import PropertyType, TableKind
from flywheel.warehouse.engine import table_name

log = structlog.get_logger(__name__)

SOURCE = "demo"
DEFAULT_CUSTOMERS = 10_000
#: Records per ``apply_records`` call.
RECORD_BATCH = 5_000
LOGIN_KEY = "$identity_login_id"
ANONYMOUS_KEY = "$identity_anonymous_id"

#: ``progress(stage, done)``: stage ``customers`` advances by customers loaded.
ProgressFn = Callable[[str, int], None]


@dataclass
class DemoSummary:
    """What a demo load wrote."""

    customers: int
    items: int
    signups: int
    events: int
    anonymous_events: int
    rejected: int
    seconds: float
    generation_seconds: float


def project_event_count(runtime: Runtime, project_id: int) -> int:
    """How many events the project's warehouse holds."""
    runtime.warehouse.ensure_project(project_id)
    rows = runtime.warehouse.fetch(
        f'SELECT count(*) FROM "{table_name(project_id, TableKind.EVENTS)}"'
    )
    return int(rows[0][0]) if rows else 0


def load_demo(
    runtime: Runtime,
    *,
    project_id: int,
    customers: int = DEFAULT_CUSTOMERS,
    days: int = 90,
    seed: int = 7,
    progress: ProgressFn | None = None,
) -> DemoSummary:
    """Generate the demo brokerage (ending at ``runtime.clock()``) and load it into a project.

    An entry-point-level job: it commits per batch. :class:`Conflict` when the project already
    has events (load into a fresh data dir or project); :class:`InvalidInput` when the project's
    schema registry already types a demo property differently, or for a bad size.
    """
    if project_event_count(runtime, project_id):
        raise Conflict("the project already has events; load the demo into an empty project")
    started = time.perf_counter()
    try:
        demo = generate(customers=customers, days=days, seed=seed, now=runtime.clock())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    generated = time.perf_counter() - started
    _register_event_schema(runtime, project_id)
    rejected = _apply(runtime, project_id, list(_item_records(demo)))

    login_users = bulk.UserIds(project_id, LOGIN_KEY)
    device_users = bulk.UserIds(project_id, ANONYMOUS_KEY)
    signups = demo.signups
    signup_logins: list[str] = signups.column("login_id").to_pylist()
    signup_position = {login: row for row, login in enumerate(signup_logins)}
    events = anonymous_events = 0
    for number, chunk in enumerate(_prefetched(demo.event_chunks())):
        start = number * demo.chunk_customers
        stop = min(demo.customer_count, start + demo.chunk_customers)
        anonymous_events += _append_events(runtime, project_id, chunk.anonymous, device_users)
        profiles = demo.customers.slice(start, stop - start)
        logins: list[str] = profiles.column("distinct_id").to_pylist()
        rows = [signup_position[login] for login in logins if login in signup_position]
        records = [*_signup_records(demo, rows), *_profile_records(demo, profiles)]
        rejected += _apply(runtime, project_id, records)
        events += _append_events(runtime, project_id, chunk.events, login_users)
        if progress is not None:
            progress("customers", stop - start)
    summary = DemoSummary(
        customers=demo.customer_count,
        items=demo.items.num_rows,
        signups=signups.num_rows,
        events=events + signups.num_rows,
        anonymous_events=anonymous_events,
        rejected=rejected,
        seconds=time.perf_counter() - started,
        generation_seconds=generated,
    )
    log.info(
        "demo_loaded",
        project_id=project_id,
        customers=summary.customers,
        events=summary.events + summary.anonymous_events,
        rejected=summary.rejected,
        seconds=round(summary.seconds, 1),
    )
    return summary


#: Console accounts of the demo: (username, role, branch scope, advisor id). ``ADV0001`` is an
#: advisor of branch ``BR001`` in the generated brokerage.
DEMO_ACCOUNTS: tuple[tuple[str, str, list[str] | None, str | None], ...] = (
    ("admin", "admin", None, None),
    ("marketer", "marketer", None, None),
    ("analyst", "analyst", None, None),
    ("compliance", "compliance", None, None),
    ("auditor", "auditor", None, None),
    ("branch_analyst", "analyst", ["BR001"], None),
    ("advisor", "advisor", ["BR001"], "ADV0001"),
)


def load_demo_if_empty(runtime: Runtime, *, console: Console) -> DemoSummary | None:
    """Load the default 10,000-customer demo into the default project if it has no events,
    and create the demo console accounts when the installation has no console user yet.

    Shows a Rich progress bar on ``console``; returns None when there was data already.
    """
    ensure_demo_accounts(runtime, console=console)
    with runtime.db.unit_of_work() as session:
        project_id = projects.ensure_default(session=session).id
    if project_event_count(runtime, project_id):
        console.print("demo: the default project already has events; nothing loaded")
        return None
    summary = load_with_progress(
        runtime, project_id=project_id, customers=DEFAULT_CUSTOMERS, console=console
    )
    journey_id = create_demo_journey(runtime, project_id=project_id)
    console.print(f"demo: journey {journey_id} (risk-assessment renewal notice) published")
    return summary


#: A service notice the demo publishes: customers whose risk assessment expires within 30
#: days get an in-app card (so the journey canvas and report have live numbers at once).
DEMO_SEGMENT = "测评30天内到期 Assessment expiring in 30 days"
DEMO_JOURNEY: dict[str, Any] = {
    "name": "风险测评到期提醒 Risk-assessment renewal notice",
    "description": "Demo: an in-app notice to renew the risk assessment before it expires.",
    "purpose": "service",
    "reentry": "never",
    "campaign": "demo",
    "nodes": [
        {"id": "in", "type": "entry_segment", "segment_id": 0, "position": {"x": 0, "y": 0}},
        {
            "id": "notice",
            "type": "send",
            "channel": "in_app",
            "options": {"slot": "home_notice"},
            "content": {
                "title": "风险测评即将到期",
                "text": "{{ user.name | default('客户') }}您好，您的风险测评将于"
                "{{ user.risk_assessment_expiry }}到期，请及时在App内重新测评。",
                "link": "https://example.com/app/risk-assessment",
            },
            "position": {"x": 0, "y": 140},
        },
        {"id": "out", "type": "exit", "position": {"x": 0, "y": 280}},
    ],
    "edges": [{"from": "in", "to": "notice"}, {"from": "notice", "to": "out"}],
}


def create_demo_journey(runtime: Runtime, *, project_id: int) -> int:
    """Create the demo segment and publish :data:`DEMO_JOURNEY` on it; the journey id."""
    from flywheel.journeys import service as journeys
    from flywheel.journeys.schemas import JourneyDefinition
    from flywheel.segments import service as segments
    from flywheel.segments.schemas import SegmentIn

    now = runtime.clock()
    with runtime.db.unit_of_work() as session:
        segment = segments.create_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=project_id,
            segment_in=SegmentIn(
                name=DEMO_SEGMENT,
                rule={
                    "relation": "and",
                    "rules": [
                        {
                            "type": "profile_rule",
                            "field": "risk_assessment_expiry",
                            "function": "relativeNext",
                            "params": [30],
                        }
                    ],
                },
            ),
            actor="demo",
            now=now,
        )
        definition = dict(DEMO_JOURNEY)
        definition["nodes"] = [dict(n) for n in DEMO_JOURNEY["nodes"]]
        definition["nodes"][0]["segment_id"] = segment.id
        created = journeys.create_journey(
            session=session,
            project_id=project_id,
            definition=JourneyDefinition.model_validate(definition),
            principal=None,
            actor="demo",
            now=now,
        )
        journeys.publish(
            session=session, project_id=project_id, journey_id=created.id, actor="demo", now=now
        )
    return created.id


def ensure_demo_accounts(runtime: Runtime, *, console: Console) -> str | None:
    """Create :data:`DEMO_ACCOUNTS` with one fresh random password, printed once on
    ``console``, when there is no console user at all; returns the password (None if skipped).

    Never touches an installation that already has users, so a real deployment's accounts are
    safe even if someone starts it with ``--demo``.
    """
    with runtime.db.unit_of_work() as session:
        if auth.list_users(session=session):
            return None
        password = f"demo-{secrets.token_hex(4)}-{secrets.randbelow(90) + 10}"
        for username, role, branch_scope, advisor_id in DEMO_ACCOUNTS:
            auth.create_user(
                session=session,
                username=username,
                password=password,
                role=role,
                branch_scope=branch_scope,
                advisor_id=advisor_id,
                now=runtime.clock(),
            )
    names = ", ".join(name for name, *_ in DEMO_ACCOUNTS)
    console.print(f"demo console accounts: {names} — password (shown once): {password}")
    return password


def load_with_progress(
    runtime: Runtime,
    *,
    project_id: int,
    customers: int,
    console: Console,
    days: int = 90,
    seed: int = 7,
) -> DemoSummary:
    """:func:`load_demo` with a Rich progress bar and a one-line summary on ``console``."""
    with Progress(
        TextColumn("loading the demo brokerage"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("demo", total=customers)
        summary = load_demo(
            runtime,
            project_id=project_id,
            customers=customers,
            days=days,
            seed=seed,
            progress=lambda _stage, done: bar.advance(task, done),
        )
    console.print(
        f"demo loaded: {summary.customers:,} customers, {summary.items:,} items, "
        f"{summary.events + summary.anonymous_events:,} events "
        f"({summary.signups:,} sign-ups) in {summary.seconds:.1f} s"
    )
    return summary


# -- pieces ----------------------------------------------------------------------------------------
def _prefetched(chunks: Iterator[EventChunk]) -> Iterator[EventChunk]:
    """The chunks, the next one generated on a worker thread while the caller loads this one.

    numpy and Arrow release the GIL for most of the generation, so this overlaps generation
    with the SQLite/DuckDB writes. Each chunk has its own random stream: order is unchanged.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-gen") as pool:
        pending = pool.submit(next, chunks, None)
        while True:
            chunk = pending.result()
            if chunk is None:
                return
            pending = pool.submit(next, chunks, None)
            yield chunk


def _register_event_schema(runtime: Runtime, project_id: int) -> None:
    wanted = {name: PropertyType(ptype) for name, ptype in EVENT_PROPERTY_TYPES.items()}
    with runtime.db.unit_of_work() as session:
        registered = bulk.register_event_schema(
            session=session,
            project_id=project_id,
            event_properties=EVENT_PROPERTIES,
            properties=wanted,
        )
        users = bulk.registered_types(
            session=session,
            project_id=project_id,
            kind=TableKind.USERS,
            wanted={n: PropertyType(t) for n, t in PROFILE_PROPERTY_TYPES.items()},
        )
    clashes = [
        f"{name} is {registered[name].value}, the demo sends {ptype.value}"
        for name, ptype in wanted.items()
        if registered[name] is not ptype
    ] + [
        f"profile {name} is {users[name].value}, the demo sends {ptype}"
        for name, ptype in PROFILE_PROPERTY_TYPES.items()
        if users[name].value != ptype
    ]
    if clashes:
        raise InvalidInput("the project's schema clashes with the demo: " + "; ".join(clashes))
    runtime.warehouse.ensure_columns(project_id, TableKind.EVENTS, wanted)


def _apply(runtime: Runtime, project_id: int, records: Sequence[IngestRecord]) -> int:
    rejected = 0
    for start in range(0, len(records), RECORD_BATCH):
        result = apply_records(
            runtime,
            project_id=project_id,
            records=records[start : start + RECORD_BATCH],
            source=SOURCE,
        )
        rejected += len(result.rejected)
    return rejected


def _append_events(runtime: Runtime, project_id: int, events: pa.Table, users: bulk.UserIds) -> int:
    """Bulk-append demo events whose ``distinct_id`` are values of ``users.key``."""
    if events.num_rows == 0:
        return 0
    now = runtime.clock()
    with runtime.db.unit_of_work() as session:
        user_ids = users.resolve(
            session=session, values=events.column("distinct_id").combine_chunks(), now=now
        )
    properties = {name: events.column(name).combine_chunks() for name in EVENT_PROPERTY_TYPES}
    table = bulk.event_table(
        ids=events.column("id").combine_chunks(),
        user_ids=user_ids,
        distinct_ids=events.column("distinct_id").combine_chunks(),
        events=events.column("event").combine_chunks(),
        times=events.column("time").combine_chunks(),
        receive_time=now,
        properties=properties,
    )
    return runtime.warehouse.append(project_id, TableKind.EVENTS, table)


def _item_records(demo: Demo) -> Iterator[IngestRecord]:
    when = to_utc(demo.now)
    for row in demo.items.to_pylist():
        item_type, item_id = row.pop("item_type"), row.pop("item_id")
        yield IngestRecord(
            type="item_set",
            time=when,
            event_id=f"demo{demo.seed}-item-{item_type}-{item_id}",
            item_type=item_type,
            item_id=item_id,
            properties=_json_ready(row),
        )


def _signup_records(demo: Demo, rows: Sequence[int]) -> Iterator[IngestRecord]:
    if not rows:
        return
    picked = demo.signups.take(pa.array(rows, type=pa.int64()))
    for login, anonymous, moment in zip(
        picked.column("login_id").to_pylist(),
        picked.column("anonymous_id").to_pylist(),
        picked.column("time").to_pylist(),
        strict=True,
    ):
        yield IngestRecord(
            type="track_signup",
            time=to_utc(moment),
            event_id=f"demo{demo.seed}-signup-{login}",
            event="$SignUp",
            distinct_id=login,
            original_id=anonymous,
            login_id=login,
            anonymous_id=anonymous,
            lib={"$lib": "demo"},
        )


def _profile_records(demo: Demo, customers: pa.Table) -> Iterator[IngestRecord]:
    when = to_utc(demo.now)
    # Dates travel as 'YYYY-MM-DD' strings, as the Sensors SDKs send them: cast by Arrow.
    customers = pa.table(
        {
            name: column.cast(pa.string()) if pa.types.is_date(column.type) else column
            for name, column in zip(customers.column_names, customers.columns, strict=True)
        }
    )
    identity_columns = list(IDENTITY_COLUMNS.items())
    for row in customers.to_pylist():
        login = row.pop("distinct_id")
        identities = {LOGIN_KEY: login}
        for column, key in identity_columns:
            value = row.pop(column)
            if value:
                identities[key] = value
        yield IngestRecord(
            type="profile_set",
            time=when,
            event_id=f"demo{demo.seed}-profile-{login}",
            distinct_id=login,
            login_id=login,
            identities=identities,
            properties={name: value for name, value in row.items() if value is not None},
            lib={"$lib": "demo"},
        )


def _json_ready(properties: dict[str, Any]) -> dict[str, Any]:
    """Sensors wire forms: dates as ``YYYY-MM-DD``; absent values left out."""
    ready: dict[str, Any] = {}
    for name, value in properties.items():
        if value is None:
            continue
        ready[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return ready
