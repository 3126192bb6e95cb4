"""A small, seeded brokerage written straight into the warehouse (profiles, events, tag values)
and the same tables loaded into chDB, so one rule can run on both engines."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel.rules.compiler import Compiled
from flywheel.warehouse import PropertyType, TableKind, Warehouse

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
PROJECT = 1
N_USERS = 400
EVENTS = [
    "BuyFund",
    "RedeemFund",
    "ViewFundDetail",
    "CreateAutoInvestPlan",
    "TerminateAutoInvestPlan",
    "AutoInvestPaymentFailed",
    "AssetChange",
    "Login",
]
USER_PROPS = {
    "risk_tolerance": PropertyType.STRING,
    "total_assets": PropertyType.NUMBER,
    "account_open_date": PropertyType.DATE,
    "has_margin_account": PropertyType.BOOL,
    "branch": PropertyType.STRING,
    "advisor_id": PropertyType.STRING,
    "city": PropertyType.STRING,
    "interests": PropertyType.LIST,
    "last_login_time": PropertyType.DATETIME,
    "name": PropertyType.STRING,
    "mobile": PropertyType.STRING,
}
EVENT_PROPS = {
    "amount": PropertyType.NUMBER,
    "fund_category": PropertyType.STRING,
    "item_id": PropertyType.STRING,
    "reason": PropertyType.STRING,
    "total_assets": PropertyType.NUMBER,
}


def naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def users_table(n: int = N_USERS, seed: int = 7) -> pa.Table:
    rng = random.Random(seed)
    rows: dict[str, list[Any]] = {k: [] for k in ["user_id", "$update_time", *USER_PROPS]}
    for uid in range(1, n + 1):
        rows["user_id"].append(uid)
        rows["$update_time"].append(naive(NOW))
        rows["risk_tolerance"].append(rng.choice(["C1", "C2", "C3", "C4", "C5", None]))
        rows["total_assets"].append(
            None if rng.random() < 0.05 else round(rng.lognormvariate(11, 1.5), 2)
        )
        rows["account_open_date"].append(
            None if rng.random() < 0.05 else date(2026, 11, 2) - timedelta(days=rng.randint(0, 900))
        )
        rows["has_margin_account"].append(rng.random() < 0.3)
        rows["branch"].append(rng.choice(["BR001", "BR002", "BR003"]))
        rows["advisor_id"].append(f"ADV{rng.randint(1, 6):04d}")
        rows["city"].append(rng.choice(["上海", "北京", "深圳", "杭州"]))
        rows["interests"].append(
            rng.sample(["fund", "stock", "bond", "ipo", "margin"], rng.randint(0, 3))
        )
        rows["last_login_time"].append(
            naive(NOW - timedelta(hours=rng.randint(0, 24 * 60))) if rng.random() < 0.9 else None
        )
        rows["name"].append(f"客户{uid}")
        rows["mobile"].append(f"138{uid:08d}")
    return pa.table(rows)


def events_table(n_users: int = N_USERS, per_user: int = 18, seed: int = 11) -> pa.Table:
    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {
        k: []
        for k in ["id", "user_id", "distinct_id", "event", "time", "$receive_time", *EVENT_PROPS]
    }
    counter = 0
    for uid in range(1, n_users + 1):
        if uid % 10 == 0:  # every tenth customer has no events at all
            continue
        for _ in range(rng.randint(0, per_user * 2)):
            counter += 1
            event = rng.choice(EVENTS)
            moment = NOW - timedelta(minutes=rng.randint(0, 90 * 24 * 60))
            cols["id"].append(f"ev{counter}")
            cols["user_id"].append(uid)
            cols["distinct_id"].append(f"d{uid}")
            cols["event"].append(event)
            cols["time"].append(naive(moment))
            cols["$receive_time"].append(naive(moment))
            money = event in {"BuyFund", "RedeemFund", "CreateAutoInvestPlan"}
            cols["amount"].append(round(rng.uniform(100, 50000), 2) if money else None)
            cols["fund_category"].append(
                rng.choice(["货币", "债券", "混合", "股票", "指数"])
                if event in {"BuyFund", "ViewFundDetail"}
                else None
            )
            cols["item_id"].append(
                f"F{rng.randint(1, 12):03d}" if event not in {"Login", "AssetChange"} else None
            )
            cols["reason"].append(
                rng.choice(["insufficient_balance", "card_expired"])
                if event == "AutoInvestPaymentFailed"
                else None
            )
            cols["total_assets"].append(
                round(rng.uniform(1e4, 2e6), 2) if event == "AssetChange" else None
            )
    return pa.table(cols)


def tag_values_table() -> pa.Table:
    rng = random.Random(3)
    rows: dict[str, list[Any]] = {k: [] for k in ["tag", "user_id", "value", "day", "computed_at"]}
    for day in (date(2026, 10, 31), date(2026, 11, 1)):
        for uid in range(1, N_USERS + 1, 2):
            rows["tag"].append("fund_preference")
            rows["user_id"].append(uid)
            rows["value"].append(rng.choice(["股票", "债券", "货币"]))
            rows["day"].append(day)
            rows["computed_at"].append(naive(NOW))
            rows["tag"].append("aum_score")
            rows["user_id"].append(uid)
            rows["value"].append(str(rng.randint(1, 5)))
            rows["day"].append(day)
            rows["computed_at"].append(naive(NOW))
    return pa.table(rows)


def load(warehouse: Warehouse, project_id: int = PROJECT) -> None:
    """Write the seeded brokerage into ``warehouse``."""
    warehouse.ensure_project(project_id)
    warehouse.ensure_columns(project_id, TableKind.USERS, USER_PROPS)
    warehouse.ensure_columns(project_id, TableKind.EVENTS, EVENT_PROPS)
    warehouse.append(project_id, TableKind.USERS, users_table())
    warehouse.append(project_id, TableKind.EVENTS, events_table())
    cur = warehouse.cursor()
    cur.register("_tv", tag_values_table())
    cur.execute(f'INSERT INTO "p{project_id}_tag_values" SELECT * FROM _tv')
    cur.unregister("_tv")
    cur.execute(
        f'INSERT INTO "p{project_id}_segment_members" '
        f"SELECT 99, user_id, TIMESTAMP '2026-11-01' FROM range(1, 60, 3) t(user_id)"
    )


class ClickHouseMirror:
    """The warehouse's tables copied into a chDB session (MergeTree, via Parquet files)."""

    TABLES = ("users", "events", "tag_values", "segment_members")

    def __init__(self, warehouse: Warehouse, folder: Path, project_id: int = PROJECT) -> None:
        from chdb import session

        self.session = session.Session()
        for kind in self.TABLES:
            name = f"p{project_id}_{kind}"
            path = folder / f"{name}.parquet"
            warehouse.cursor().execute(f"COPY \"{name}\" TO '{path}' (FORMAT PARQUET)")
            self.session.query(f"DROP TABLE IF EXISTS `{name}`")
            self.session.query(
                f"CREATE TABLE `{name}` ENGINE = MergeTree ORDER BY tuple() "
                f"AS SELECT * FROM file('{path}', Parquet)"
            )

    def user_ids(self, compiled: Compiled) -> set[int]:
        sql, params = compiled.bound("clickhouse")
        result = self.session.query(sql, "ArrowTable", params=params)
        return {int(v) for v in result.column(0).to_pylist()}

    def scalar(self, compiled: Compiled) -> int:
        sql, params = compiled.bound("clickhouse")
        result = self.session.query(sql, "ArrowTable", params=params)
        return int(result.column(0)[0].as_py())

    def close(self) -> None:
        self.session.close()


def duck_user_ids(warehouse: Warehouse, compiled: Compiled) -> set[int]:
    sql, params = compiled.bound("duckdb")
    return {int(row[0]) for row in warehouse.cursor().execute(sql, params).fetchall()}
