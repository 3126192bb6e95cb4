"""A small brokerage written straight into the warehouse: funds R1..R5, articles, customers
C1..C5 (plus unassessed and expired ones), and interaction events with clear tastes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from flywheel.core.clock import FrozenClock, utc_naive
from flywheel.identity import service as identity
from flywheel.projects import service as projects
from flywheel.recommend import service as recommend
from flywheel.recommend.schemas import TrainingConfig
from flywheel.runtime import Runtime
from flywheel.warehouse import PropertyType, TableKind
from flywheel.warehouse.engine import ARROW_TYPES, BASE_ARROW

LOGIN = "$identity_login_id"
CATEGORIES = ["货币", "债券", "混合", "股票", "指数"]
#: Fast settings for tests (same code paths as production, fewer iterations).
FAST = TrainingConfig(
    als_iterations=8,
    bpr_iterations=20,
    als_factors=16,
    bpr_factors=16,
    event_weights={**TrainingConfig().event_weights, "ViewArticle": 1.0},
)

ITEM_PROPS = {
    "name": PropertyType.STRING,
    "category": PropertyType.STRING,
    "risk_level": PropertyType.STRING,
    "on_sale": PropertyType.BOOL,
    "launch_date": PropertyType.DATE,
}
USER_PROPS = {
    "risk_tolerance": PropertyType.STRING,
    "risk_assessment_expiry": PropertyType.DATE,
    "branch": PropertyType.STRING,
    "advisor_id": PropertyType.STRING,
}
EVENT_PROPS = {"item_id": PropertyType.STRING, "item_type": PropertyType.STRING}


def _table(rows: list[dict[str, Any]], props: dict[str, PropertyType]) -> pa.Table:
    names = list(dict.fromkeys(k for r in rows for k in r))
    fields = [
        pa.field(n, BASE_ARROW[n] if n in BASE_ARROW else ARROW_TYPES[props[n]]) for n in names
    ]
    schema = pa.schema(fields)
    return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema)


def put_items(runtime: Runtime, project_id: int, rows: list[dict[str, Any]], now: datetime) -> None:
    runtime.warehouse.ensure_columns(project_id, TableKind.ITEMS, ITEM_PROPS)
    full = [{"$update_time": utc_naive(now), "$is_deleted": False, **r} for r in rows]
    runtime.warehouse.append(project_id, TableKind.ITEMS, _table(full, ITEM_PROPS))


def put_users(runtime: Runtime, project_id: int, rows: list[dict[str, Any]], now: datetime) -> None:
    runtime.warehouse.ensure_columns(project_id, TableKind.USERS, USER_PROPS)
    full = [{"$update_time": utc_naive(now), **r} for r in rows]
    runtime.warehouse.append(project_id, TableKind.USERS, _table(full, USER_PROPS))


def put_events(runtime: Runtime, project_id: int, rows: list[dict[str, Any]]) -> None:
    runtime.warehouse.ensure_columns(project_id, TableKind.EVENTS, EVENT_PROPS)
    full = [
        {
            "id": f"e{i}-{r['user_id']}-{r['event']}-{r['time'].timestamp()}",
            "distinct_id": str(r["user_id"]),
            "$receive_time": r.get("$receive_time", r["time"]),
            **r,
        }
        for i, r in enumerate(rows)
    ]
    runtime.warehouse.append(project_id, TableKind.EVENTS, _table(full, EVENT_PROPS))


@dataclass
class Brokerage:
    project_id: int
    now: datetime
    #: login id → user id
    users: dict[str, int] = field(default_factory=dict)
    #: login id → tolerance (None: unassessed)
    tolerance: dict[str, str | None] = field(default_factory=dict)
    #: fund id → risk level
    funds: dict[str, str] = field(default_factory=dict)


def fund_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(40):
        level = i % 5 + 1
        rows.append(
            {
                "item_type": "fund",
                "item_id": f"F{i:03d}",
                "name": f"基金{i:03d}",
                "category": CATEGORIES[level - 1],
                "risk_level": f"R{level}",
                "on_sale": True,
                "launch_date": date(2024, 1, 1),
            }
        )
    rows.append(  # a new fund, launched a week before "now"
        {
            "item_type": "fund",
            "item_id": "FNEW",
            "name": "新发基金",
            "category": "混合",
            "risk_level": "R2",
            "on_sale": True,
            "launch_date": date(2026, 10, 26),
        }
    )
    rows.append(  # off sale
        {
            "item_type": "fund",
            "item_id": "FOFF",
            "name": "暂停申购基金",
            "category": "债券",
            "risk_level": "R1",
            "on_sale": False,
        }
    )
    rows.append({"item_type": "fund", "item_id": "FUNRATED", "name": "未评级基金"})
    for i in range(5):
        rows.append(
            {"item_type": "article", "item_id": f"A{i}", "name": f"投教文章{i}", "category": "投教"}
        )
    return rows


def build_brokerage(runtime: Runtime, now: datetime, *, customers: int = 120) -> Brokerage:
    with runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name="default").id
        logins = [f"cust-{i}" for i in range(customers)]
        ids = identity.resolve_many(
            session=session, project_id=project_id, key=LOGIN, values=logins, now=now
        )
    shop = Brokerage(project_id=project_id, now=now, users=ids)
    items = fund_rows()
    put_items(runtime, project_id, items, now)
    shop.funds = {r["item_id"]: r["risk_level"] for r in items if r.get("risk_level")}
    rng = random.Random(7)
    users: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    today = now.date()
    for n, login in enumerate(logins):
        level = n % 5 + 1
        tolerance: str | None = f"C{level}"
        expiry = today + timedelta(days=200)
        if n % 17 == 3:
            tolerance = None
        elif n % 13 == 5:
            expiry = today - timedelta(days=3)
        shop.tolerance[login] = tolerance if expiry >= today else None
        users.append(
            {
                "user_id": ids[login],
                "risk_tolerance": tolerance,
                "risk_assessment_expiry": expiry,
                "branch": "BR001" if n % 2 else "BR002",
                "advisor_id": f"ADV{n % 3}",
            }
        )
        # tastes: customers like funds of "their" level; a few articles
        liked = [f"F{i:03d}" for i in range(40) if i % 5 + 1 == level]
        for _ in range(12):
            fund = rng.choice(liked[: 4 + n % 4])
            when = now - timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 600))
            events.append(_event(ids[login], "ViewFundDetail", "fund", fund, when))
        bought = rng.choice(liked[:3])
        events.append(_event(ids[login], "BuyFund", "fund", bought, now - timedelta(days=2)))
        events.append(
            _event(ids[login], "ViewArticle", "article", f"A{n % 5}", now - timedelta(days=1))
        )
    put_users(runtime, project_id, users, now)
    put_events(runtime, project_id, events)
    return shop


def _event(
    user_id: int, event: str, item_type: str, item_id: str, when: datetime
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "event": event,
        "time": utc_naive(when),
        "item_type": item_type,
        "item_id": item_id,
    }


@pytest.fixture
def brokerage(runtime: Runtime, clock: FrozenClock) -> Brokerage:
    runtime.clock = clock
    shop = build_brokerage(runtime, clock())
    with runtime.db.unit_of_work() as session:
        recommend.put_training_config(
            session=session, project_id=shop.project_id, config=FAST, now=clock()
        )
    return shop
