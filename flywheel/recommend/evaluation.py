"""Offline evaluation: a time-based split, the serving pipeline, precision/recall/NDCG/coverage.

Split: for every user with at least :data:`MIN_USER_INTERACTIONS` interactions, the last 20 %
of their interactions by time are held out (per-user temporal leave-last-out); the rest, and
every interaction of lighter users, train the models. Each strategy then recommends ``k`` items
per held-out user through :func:`flywheel.recommend.engine.recommend` (items seen in training
excluded, no diversity cap, impressions and holdings off), and is scored against the held-out
items. Popularity is counted over the whole training part (a per-user split has no single
"now" for a hot window).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from flywheel.core.errors import InvalidInput
from flywheel.recommend import engine, index, suitability, training
from flywheel.recommend.schemas import EvaluationRow, RecallSource, StrategyConfig, TrainingConfig
from flywheel.warehouse import TableKind, Warehouse
from flywheel.warehouse.engine import table_name

TEST_SHARE = 0.2
MIN_USER_INTERACTIONS = 5
DATASETS = ("movielens-100k", "ml-latest-small", "project")

_EVAL_FILTERS: dict[str, Any] = {
    "exclude_held": False,
    "exclude_interacted": True,
    "exclude_off_sale": False,
    "max_impressions": None,
    "max_per_category": None,
    "fallback_popularity": False,
}

STRATEGIES: dict[str, StrategyConfig] = {
    name: StrategyConfig(recall=recall, **_EVAL_FILTERS)
    for name, recall in {
        "popularity": [RecallSource(kind="popularity")],
        "item_to_item": [RecallSource(kind="item_to_item")],
        "als": [RecallSource(kind="als")],
        "bpr": [RecallSource(kind="bpr")],
        "hybrid": [
            RecallSource(kind="als", weight=1.0),
            RecallSource(kind="item_to_item", weight=1.0),
            RecallSource(kind="popularity", weight=0.3),
        ],
    }.items()
}


@dataclass
class EventLog:
    """Interactions as parallel arrays (one row per interaction)."""

    users: npt.NDArray[np.int64]
    items: list[tuple[str, str]]  # item key per row
    weights: npt.NDArray[np.float32]
    times: npt.NDArray[np.int64]  # epoch seconds
    names: dict[tuple[str, str], str]
    catalog_rows: list[dict[str, Any]] | None = None


def load_movielens_100k(root: Path) -> EventLog:
    """``u.data`` (user, item, rating, time) and titles from ``u.item`` (Latin-1)."""
    folder = root / "movielens-100k"
    data = np.loadtxt(folder / "u.data", dtype=np.int64)
    names: dict[tuple[str, str], str] = {}
    with (folder / "u.item").open(encoding="latin-1") as handle:
        for line in handle:
            parts = line.split("|")
            names[("movie", parts[0])] = parts[1]
    return EventLog(
        users=data[:, 0],
        items=[("movie", str(i)) for i in data[:, 1]],
        weights=np.ones(len(data), np.float32),
        times=data[:, 3],
        names=names,
    )


def load_ml_latest_small(root: Path) -> EventLog:
    """``ratings.csv`` (userId, movieId, rating, timestamp) and titles from ``movies.csv``."""
    folder = root / "ml-latest-small"
    users: list[int] = []
    items: list[tuple[str, str]] = []
    times: list[int] = []
    with (folder / "ratings.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            users.append(int(row["userId"]))
            items.append(("movie", row["movieId"]))
            times.append(int(row["timestamp"]))
    names: dict[tuple[str, str], str] = {}
    with (folder / "movies.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            names[("movie", row["movieId"])] = row["title"]
    return EventLog(
        users=np.asarray(users, np.int64),
        items=items,
        weights=np.ones(len(users), np.float32),
        times=np.asarray(times, np.int64),
        names=names,
    )


def load_project(warehouse: Warehouse, project_id: int, config: TrainingConfig) -> EventLog:
    """The project's interaction events (weights from ``config``) and its item catalog."""
    columns = warehouse.columns(project_id, TableKind.EVENTS)
    if "item_id" not in columns or "item_type" not in columns or not config.event_weights:
        raise InvalidInput("the project has no interaction events (item_id / item_type)")
    weights = list(config.event_weights.items())
    case = " ".join("WHEN ? THEN ?" for _ in weights)
    marks = ", ".join("?" for _ in weights)
    rows = warehouse.fetch(
        f"""SELECT user_id, CAST(item_type AS VARCHAR), CAST(item_id AS VARCHAR),
                   CASE event {case} ELSE 0 END, epoch(time)
            FROM "{table_name(project_id, TableKind.EVENTS)}"
            WHERE item_id IS NOT NULL AND item_type IS NOT NULL AND event IN ({marks})""",
        [*[v for pair in weights for v in pair], *[name for name, _ in weights]],
    )
    catalog = index.load_catalog(warehouse, project_id)
    catalog_rows = [
        {
            "item_type": key[0],
            "item_id": key[1],
            "risk_level": suitability.level_name(int(catalog.risk[i])),
            "name": catalog.name[i],
            "category": catalog.category[i],
        }
        for i, key in enumerate(catalog.keys)
    ]
    return EventLog(
        users=np.asarray([r[0] for r in rows], np.int64),
        items=[(str(r[1]), str(r[2])) for r in rows],
        weights=np.asarray([r[3] for r in rows], np.float32),
        times=np.asarray([int(r[4]) for r in rows], np.int64),
        names={k: str(catalog.name[i]) for i, k in enumerate(catalog.keys) if catalog.name[i]},
        catalog_rows=catalog_rows,
    )


def split(log: EventLog) -> tuple[npt.NDArray[np.bool_], dict[int, set[tuple[str, str]]]]:
    """Training mask over the log, and each held-out user's test items (unseen in training)."""
    order = np.lexsort((log.times, log.users))
    train = np.ones(len(log.users), np.bool_)
    sorted_users = log.users[order]
    boundaries = np.flatnonzero(np.diff(sorted_users)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(order)]))
    for start, end in zip(starts, ends, strict=True):
        size = int(end - start)
        held = round(size * TEST_SHARE)
        if size >= MIN_USER_INTERACTIONS and held > 0:
            train[order[end - held : end]] = False
    seen: dict[int, set[tuple[str, str]]] = {}
    for pos in np.flatnonzero(train):
        seen.setdefault(int(log.users[pos]), set()).add(log.items[pos])
    test: dict[int, set[tuple[str, str]]] = {}
    for pos in np.flatnonzero(~train):
        user = int(log.users[pos])
        if log.items[pos] not in seen.get(user, set()):
            test.setdefault(user, set()).add(log.items[pos])
    return train, test


def _interactions(log: EventLog, mask: npt.NDArray[np.bool_]) -> training.Interactions:
    users = log.users[mask]
    keys = [log.items[i] for i in np.flatnonzero(mask)]
    user_ids, user_index = np.unique(users, return_inverse=True)
    item_keys = sorted(set(keys))
    item_pos = {k: i for i, k in enumerate(item_keys)}
    item_index = np.asarray([item_pos[k] for k in keys], np.int64)
    weights = log.weights[mask]
    matrix = sp.csr_matrix(
        (weights, (user_index, item_index)), shape=(len(user_ids), len(item_keys))
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    popularity = np.bincount(item_index, weights=weights, minlength=len(item_keys))
    return training.Interactions(
        user_ids=user_ids.astype(np.int64),
        item_keys=item_keys,
        matrix=matrix.astype(np.float32),
        held=sp.csr_matrix((len(user_ids), len(item_keys)), dtype=np.float32),
        popularity=popularity.astype(np.float32),
    )


def evaluate(
    log: EventLog,
    *,
    dataset: str,
    k: int = 10,
    config: TrainingConfig | None = None,
    strategies: dict[str, StrategyConfig] | None = None,
    today: date = date(2000, 1, 1),
) -> list[EvaluationRow]:
    """Train on the split's training part and score every strategy on the held-out part.

    ``today`` only matters to a ``new_items`` source (launch dates); the default strategies
    have none.
    """
    config = config or TrainingConfig(half_life_days=None)
    strategies = strategies or STRATEGIES
    train_mask, test = split(log)
    inter = _interactions(log, train_mask)
    started = time.perf_counter()
    artifacts = training.fit(inter, config)
    fit_seconds = time.perf_counter() - started
    rows = log.catalog_rows or [
        {"item_type": key[0], "item_id": key[1], "risk_level": None, "name": log.names.get(key)}
        for key in inter.item_keys
    ]
    catalog = engine.Catalog.from_rows(rows)
    if log.catalog_rows is None:
        catalog.risk[:] = suitability.NO_RISK  # films: nothing to be suitable for
    model = index.align(artifacts, catalog, version=None)
    results: list[EvaluationRow] = []
    catalog_size = max(1, int(model.known_items.sum()))
    for name, strategy in strategies.items():
        started = time.perf_counter()
        totals = np.zeros(3)
        recommended: set[int] = set()
        users = 0
        for user_id, relevant in test.items():
            picks = engine.recommend(
                catalog=catalog,
                model=model,
                customer=engine.Customer(user_id=user_id, max_level=5),
                strategy=strategy,
                n=k,
                today=today,
            )
            positions = [p.position for p in picks]
            recommended.update(positions)
            totals += _metrics([catalog.keys[p] for p in positions], relevant, k)
            users += 1
        seconds = time.perf_counter() - started + (fit_seconds if name != "popularity" else 0)
        results.append(
            EvaluationRow(
                dataset=dataset,
                strategy=name,
                users=users,
                precision=round(float(totals[0] / max(users, 1)), 4),
                recall=round(float(totals[1] / max(users, 1)), 4),
                ndcg=round(float(totals[2] / max(users, 1)), 4),
                coverage=round(len(recommended) / catalog_size, 4),
                seconds=round(seconds, 2),
            )
        )
    return results


def _metrics(ranked: list[tuple[str, str]], relevant: set[tuple[str, str]], k: int) -> Any:
    hits = [1.0 if key in relevant else 0.0 for key in ranked[:k]]
    dcg = sum(h / np.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(relevant), k)))
    return np.array([sum(hits) / k, sum(hits) / len(relevant), dcg / ideal if ideal else 0.0])


def load_dataset(name: str, *, data_root: Path) -> EventLog:
    """A MovieLens dataset by name from ``data_root`` (``project`` is read separately)."""
    if name == "movielens-100k":
        return load_movielens_100k(data_root)
    if name == "ml-latest-small":
        return load_ml_latest_small(data_root)
    raise InvalidInput(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
