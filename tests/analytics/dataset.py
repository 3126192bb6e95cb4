"""A small synthetic brokerage event set, written to the warehouse as the ingest processor does."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from flywheel.warehouse import Warehouse
from flywheel.warehouse.engine import ARROW_TYPES, BASE_ARROW, PropertyType, TableKind

EVENT_PROPERTIES = {
    "amount": PropertyType.NUMBER,
    "fund_category": PropertyType.STRING,
    "utm_source": PropertyType.STRING,
    "$app_version": PropertyType.STRING,
    "labels": PropertyType.LIST,
}
USER_PROPERTIES = {
    "branch": PropertyType.STRING,
    "channel": PropertyType.STRING,
    "advisor_id": PropertyType.STRING,
}

#: Shanghai 2026-10-01 00:00 in naive UTC.
START = datetime(2026, 9, 30, 16, 0)
EVENTS = ["$AppStart", "$SignUp", "ViewFundDetail", "BuyFund", "WeChatFollow", "Search"]


@dataclass
class Dataset:
    events: list[dict[str, Any]]
    users: list[dict[str, Any]]


def generate(seed: int = 42, users: int = 300, days: int = 32) -> Dataset:
    """Random but reproducible events: sign-up, app starts, fund views and buys."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    counter = 0

    def add(user: int, name: str, at: datetime, **props: Any) -> None:
        nonlocal counter
        counter += 1
        events.append(
            {
                "id": f"e{counter}",
                "user_id": user,
                "distinct_id": f"d{user}",
                "event": name,
                "time": at,
                "$receive_time": at,
                **props,
            }
        )

    for user in range(1, users + 1):
        profiles.append(
            {
                "user_id": user,
                "$update_time": START,
                "branch": rng.choice(["BR001", "BR002", "BR003"]),
                "channel": rng.choice(["app_store", "referral", "wechat"]),
                "advisor_id": f"ADV{user % 4}",
            }
        )
        at = START + timedelta(seconds=rng.randrange(days * 86400))
        version = rng.choice(["5.1.0", "5.2.0"])
        add(
            user,
            "$AppStart",
            at,
            utm_source=rng.choice(["push", "sms", "wechat"]),
            **{"$app_version": version},
        )
        if rng.random() < 0.7:
            at += timedelta(minutes=rng.randrange(1, 600))
            add(user, "$SignUp", at)
        for _ in range(rng.randrange(0, 6)):
            t = START + timedelta(seconds=rng.randrange(days * 86400))
            add(
                user,
                rng.choice(["$AppStart", "Search", "WeChatFollow"]),
                t,
                utm_source=rng.choice(["push", "sms", "wechat", None]),
                labels=rng.choice([["vip"], ["new", "vip"], [], None]),
            )
        if rng.random() < 0.6:
            t = at + timedelta(hours=rng.randrange(0, 200))
            add(user, "ViewFundDetail", t, fund_category=rng.choice(["货币", "股票", "债券"]))
            if rng.random() < 0.5:
                t += timedelta(hours=rng.randrange(0, 200))
                add(
                    user,
                    "BuyFund",
                    t,
                    amount=float(rng.randrange(100, 50_000)),
                    fund_category=rng.choice(["货币", "股票"]),
                )
    return Dataset(events=events, users=profiles)


def arrow_events(rows: list[dict[str, Any]]) -> pa.Table:
    names = ["id", "user_id", "distinct_id", "event", "time", "$receive_time", *EVENT_PROPERTIES]
    types = {**BASE_ARROW, **{k: ARROW_TYPES[v] for k, v in EVENT_PROPERTIES.items()}}
    return pa.table({n: pa.array([r.get(n) for r in rows], type=types[n]) for n in names})


def arrow_users(rows: list[dict[str, Any]]) -> pa.Table:
    names = ["user_id", "$update_time", *USER_PROPERTIES]
    types = {**BASE_ARROW, **{k: ARROW_TYPES[v] for k, v in USER_PROPERTIES.items()}}
    return pa.table({n: pa.array([r.get(n) for r in rows], type=types[n]) for n in names})


def load(warehouse: Warehouse, project_id: int, data: Dataset) -> None:
    warehouse.ensure_columns(project_id, TableKind.EVENTS, EVENT_PROPERTIES)
    warehouse.ensure_columns(project_id, TableKind.USERS, USER_PROPERTIES)
    warehouse.append(project_id, TableKind.EVENTS, arrow_events(data.events))
    warehouse.append(project_id, TableKind.USERS, arrow_users(data.users))
