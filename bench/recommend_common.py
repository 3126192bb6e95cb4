"""Synthetic brokerage data for the recommend benchmarks (bench/recommend_*.py).

Customers belong to one of ``clusters`` tastes; products too. A customer's interactions are
drawn mostly (80 %) from their cluster's products, with a Zipf-like popularity inside it, and
the rest from the whole catalogue: structure ALS can learn, at any size, in vectorised NumPy.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from flywheel.warehouse import PropertyType, TableKind, Warehouse

CATEGORIES = ["货币", "债券", "混合", "股票", "指数", "QDII", "FOF"]
EVENTS = np.array(["ViewFundDetail", "itemClick", "BuyFund", "CreateAutoInvestPlan"])
EVENT_P = np.array([0.6, 0.25, 0.1, 0.05])


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(label: str, figures: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    figures[label] = time.perf_counter() - started
    print(f"  {label}: {figures[label]:.2f} s (peak RSS {peak_rss_mib():.0f} MiB)", flush=True)


def item_rows(n_items: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    levels = rng.integers(1, 6, n_items)
    return [
        {
            "item_type": "fund",
            "item_id": f"F{i:05d}",
            "name": f"基金{i:05d}",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "risk_level": f"R{levels[i]}",
            "on_sale": bool(rng.random() > 0.02),
            "launch_date": date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 1000))),
        }
        for i in range(n_items)
    ]


def interactions(
    n_users: int, n_items: int, n_rows: int, *, clusters: int = 50, seed: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """``n_rows`` (user index, item index) pairs with clustered tastes."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_rows)
    user_cluster = rng.integers(0, clusters, n_users)
    items_per_cluster = n_items // clusters
    # Zipf-like rank inside the cluster
    rank = np.minimum(rng.zipf(1.3, n_rows) - 1, items_per_cluster - 1)
    own = user_cluster[users] * items_per_cluster + rank
    random_item = rng.integers(0, n_items, n_rows)
    items = np.where(rng.random(n_rows) < 0.8, own, random_item)
    return users.astype(np.int64), items.astype(np.int64)


def write_items(warehouse: Warehouse, project_id: int, rows: list[dict[str, Any]]) -> None:
    warehouse.ensure_columns(
        project_id,
        TableKind.ITEMS,
        {
            "name": PropertyType.STRING,
            "category": PropertyType.STRING,
            "risk_level": PropertyType.STRING,
            "on_sale": PropertyType.BOOL,
            "launch_date": PropertyType.DATE,
        },
    )
    now = datetime(2026, 11, 1)
    table = pa.Table.from_pylist([{**r, "$update_time": now, "$is_deleted": False} for r in rows])
    warehouse.append(project_id, TableKind.ITEMS, table)


def write_users(warehouse: Warehouse, project_id: int, n_users: int, seed: int = 3) -> None:
    """Customers 1..n with tolerance C1..C5 (5 % missing) and an assessment expiry."""
    warehouse.ensure_columns(
        project_id,
        TableKind.USERS,
        {
            "risk_tolerance": PropertyType.STRING,
            "risk_assessment_expiry": PropertyType.DATE,
            "branch": PropertyType.STRING,
        },
    )
    rng = np.random.default_rng(seed)
    chunk = 250_000
    for start in range(0, n_users, chunk):
        size = min(chunk, n_users - start)
        levels = rng.integers(1, 6, size)
        tolerance = np.array([f"C{v}" for v in range(1, 6)], dtype=object)[levels - 1]
        tolerance[rng.random(size) < 0.05] = None
        expiry = np.datetime64("2027-06-01") - rng.integers(0, 250, size).astype("timedelta64[D]")
        table = pa.table(
            {
                "user_id": pa.array(np.arange(start + 1, start + size + 1, dtype=np.int64)),
                "$update_time": pa.array(np.full(size, np.datetime64("2026-11-01T00:00:00", "us"))),
                "risk_tolerance": pa.array(tolerance, pa.string()),
                "risk_assessment_expiry": pa.array(expiry.astype("datetime64[D]")),
                "branch": pa.array(np.array(["BR001", "BR002", "BR003"])[levels % 3]),
            }
        )
        warehouse.append(project_id, TableKind.USERS, table)
