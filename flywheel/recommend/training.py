"""Training: interactions → ALS, BPR, item-to-item similarity and popularity, saved as files.

An interaction is an event carrying ``item_id`` and ``item_type`` whose name is in the
configured event → weight map; its weight decays by half every ``half_life_days``. Artifacts
are NumPy files in one folder per version (factors are memory-mapped when served).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
import structlog
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from flywheel.core.clock import utc_naive
from flywheel.recommend.schemas import TrainingConfig
from flywheel.warehouse import TableKind, Warehouse
from flywheel.warehouse.engine import table_name

log = structlog.get_logger(__name__)

# implicit trains on OpenMP threads. Busy-waiting OpenMP workers collapse on a shared,
# oversubscribed machine (measured 40x slower on 2 busy cores); passive waiting does not.
# Read once when libgomp loads, i.e. at the first (lazy) import of implicit below.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
#: Below this many interactions one thread is faster than waking a pool.
SINGLE_THREAD_BELOW = 100_000

KEY_SEPARATOR = "\x1f"


@dataclass
class Interactions:
    """A user × item weight matrix plus what serving needs besides the factors."""

    user_ids: npt.NDArray[np.int64]  # sorted; row r is user_ids[r]
    item_keys: list[tuple[str, str]]  # column c is item_keys[c]
    matrix: sp.csr_matrix  # decayed weights
    held: sp.csr_matrix  # 1 where the user holds the item
    popularity: npt.NDArray[np.float32]  # weight within the hot window

    @property
    def n_interactions(self) -> int:
        return int(self.matrix.nnz)


@dataclass
class Artifacts:
    """A trained model in item-key space (not yet aligned to a catalog)."""

    interactions: Interactions
    als_user: npt.NDArray[np.float32] | None = None
    als_item: npt.NDArray[np.float32] | None = None
    bpr_user: npt.NDArray[np.float32] | None = None
    bpr_item: npt.NDArray[np.float32] | None = None
    similarity: sp.csr_matrix | None = None
    hot_days: int = 30
    #: Seconds spent per algorithm by :func:`fit`.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def algorithms(self) -> list[str]:
        found = [("als", self.als_user), ("bpr", self.bpr_user), ("item_to_item", self.similarity)]
        return ["popularity", *(name for name, part in found if part is not None)]


def load_interactions(
    warehouse: Warehouse, project_id: int, config: TrainingConfig, *, now: datetime
) -> Interactions:
    """Read and aggregate the project's interactions from the events table (one query)."""
    events_table = table_name(project_id, TableKind.EVENTS)
    columns = warehouse.columns(project_id, TableKind.EVENTS)
    if "item_id" not in columns or "item_type" not in columns or not config.event_weights:
        return empty_interactions()
    now_naive = utc_naive(now)
    since = now_naive - timedelta(days=config.lookback_days)
    hot_since = now_naive - timedelta(days=config.hot_days)
    weights = list(config.event_weights.items())
    case = " ".join("WHEN ? THEN ?" for _ in weights)
    case_params: list[Any] = [v for pair in weights for v in pair]
    half_life = config.half_life_days or 0.0
    decay = (
        "pow(0.5, date_diff('second', time, ?::TIMESTAMP) / 86400.0 / ?)"
        if config.half_life_days
        else "1.0"
    )
    decay_params: list[Any] = [now_naive, half_life] if config.half_life_days else []
    marks = ", ".join("?" for _ in weights)
    sql = f"""
        SELECT user_id,
               CAST(item_type AS VARCHAR) || chr(31) || CAST(item_id AS VARCHAR) AS item_key,
               CAST(SUM(w * decay) AS FLOAT) AS weight,
               CAST(SUM(CASE WHEN time >= ? THEN w ELSE 0 END) AS FLOAT) AS hot
        FROM (
            SELECT user_id, item_type, item_id, time,
                   CASE event {case} ELSE 0 END AS w,
                   {decay} AS decay
            FROM "{events_table}"
            WHERE item_id IS NOT NULL AND item_type IS NOT NULL
              AND event IN ({marks}) AND time >= ? AND time <= ?
        )
        GROUP BY 1, 2
    """
    params = [
        hot_since,
        *case_params,
        *decay_params,
        *[name for name, _ in weights],
        since,
        now_naive,
    ]
    table = arrow(warehouse, sql, params)
    held = _held(warehouse, events_table, config, since=since, now=now_naive)
    return _build(table, held)


def _held(
    warehouse: Warehouse,
    events_table: str,
    config: TrainingConfig,
    *,
    since: datetime,
    now: datetime,
) -> pa.Table:
    events = [*config.hold_start_events, *config.hold_end_events]
    if not config.hold_start_events:
        return pa.table(
            {"user_id": pa.array([], pa.int64()), "item_key": pa.array([], pa.string())}
        )
    marks = ", ".join("?" for _ in events)
    start_marks = ", ".join("?" for _ in config.hold_start_events)
    sql = f"""
        SELECT user_id, item_key FROM (
            SELECT user_id,
                   CAST(item_type AS VARCHAR) || chr(31) || CAST(item_id AS VARCHAR) AS item_key,
                   arg_max(event, time) AS last_event
            FROM "{events_table}"
            WHERE item_id IS NOT NULL AND item_type IS NOT NULL AND event IN ({marks})
              AND time >= ? AND time <= ?
            GROUP BY 1, 2
        ) WHERE last_event IN ({start_marks})
    """
    return arrow(warehouse, sql, [*events, since, now, *config.hold_start_events])


def arrow(warehouse: Warehouse, sql: str, params: list[Any]) -> pa.Table:
    """A read query as an Arrow table (the relation API: no extra copy, no DuckDB warning)."""
    table: pa.Table = warehouse.cursor().sql(sql, params=params).to_arrow_table()
    return table


def empty_interactions() -> Interactions:
    return Interactions(
        user_ids=np.zeros(0, np.int64),
        item_keys=[],
        matrix=sp.csr_matrix((0, 0), dtype=np.float32),
        held=sp.csr_matrix((0, 0), dtype=np.float32),
        popularity=np.zeros(0, np.float32),
    )


def _build(table: pa.Table, held: pa.Table) -> Interactions:
    table = table.filter(pc.greater(table["weight"], 0))
    if table.num_rows == 0:
        return empty_interactions()
    users_np = table["user_id"].to_numpy()
    user_ids, user_index = np.unique(users_np, return_inverse=True)
    encoded = pc.dictionary_encode(table["item_key"]).combine_chunks()
    raw_keys = encoded.dictionary.to_pylist()
    item_index = encoded.indices.to_numpy().astype(np.int64)
    n_users, n_items = len(user_ids), len(raw_keys)
    weights = table["weight"].to_numpy().astype(np.float32)
    matrix = sp.csr_matrix((weights, (user_index, item_index)), shape=(n_users, n_items))
    matrix.sort_indices()
    popularity = np.bincount(
        item_index, weights=table["hot"].to_numpy().astype(np.float64), minlength=n_items
    ).astype(np.float32)
    key_pos = {key: i for i, key in enumerate(raw_keys)}
    held_rows: list[int] = []
    held_cols: list[int] = []
    if held.num_rows:
        held_users = held["user_id"].to_numpy()
        rows = np.searchsorted(user_ids, held_users)
        for r, uid, key in zip(rows, held_users, held["item_key"].to_pylist(), strict=True):
            col = key_pos.get(key)
            if col is not None and r < n_users and user_ids[r] == uid:
                held_rows.append(int(r))
                held_cols.append(col)
    held_matrix = sp.csr_matrix(
        (np.ones(len(held_rows), np.float32), (held_rows, held_cols)), shape=(n_users, n_items)
    )
    keys = [tuple(k.split(KEY_SEPARATOR, 1)) for k in raw_keys]
    return Interactions(
        user_ids=user_ids.astype(np.int64),
        item_keys=[(k[0], k[1]) for k in keys],
        matrix=matrix,
        held=held_matrix,
        popularity=popularity,
    )


def fit(interactions: Interactions, config: TrainingConfig, *, threads: int = 0) -> Artifacts:
    """Train every model the config asks for. ``threads`` 0 means all cores.

    OpenBLAS is held to one thread while ``implicit`` trains (its own threads do the work;
    nested BLAS threads slow it down ten-fold and make it warn).
    """
    artifacts = Artifacts(interactions=interactions, hot_days=config.hot_days)
    matrix = interactions.matrix
    if matrix.nnz == 0:
        return artifacts
    from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]
    from implicit.cpu.bpr import BayesianPersonalizedRanking  # type: ignore[import-untyped]
    from implicit.nearest_neighbours import (  # type: ignore[import-untyped]
        ItemItemRecommender,
        bm25_weight,
        normalize,
    )

    if not threads:
        threads = 1 if matrix.nnz < SINGLE_THREAD_BELOW else (os.cpu_count() or 1)
    with threadpool_limits(1, "blas"):
        started = time.perf_counter()
        weighted = bm25_weight(matrix, K1=100, B=0.8).tocsr().astype(np.float32)
        als = AlternatingLeastSquares(
            factors=config.als_factors or auto_factors(matrix),
            regularization=config.als_regularization,
            iterations=config.als_iterations,
            num_threads=threads,
            random_state=42,
        )
        als.fit(weighted, show_progress=False)
        artifacts.als_user = np.ascontiguousarray(als.user_factors, dtype=np.float32)
        artifacts.als_item = np.ascontiguousarray(als.item_factors, dtype=np.float32)
        artifacts.timings["als"] = round(time.perf_counter() - started, 3)
        log.info("recommend_als_trained", seconds=artifacts.timings["als"])
        if config.train_bpr:
            started = time.perf_counter()
            binary = matrix.copy()
            binary.data[:] = 1.0
            bpr = BayesianPersonalizedRanking(
                factors=config.bpr_factors,
                learning_rate=config.bpr_learning_rate,
                regularization=config.bpr_regularization,
                iterations=max(1, min(config.bpr_iterations, config.bpr_max_samples // binary.nnz)),
                num_threads=threads,
                random_state=42,
            )
            bpr.fit(binary, show_progress=False)
            artifacts.bpr_user = np.ascontiguousarray(bpr.user_factors, dtype=np.float32)
            artifacts.bpr_item = np.ascontiguousarray(bpr.item_factors, dtype=np.float32)
            artifacts.timings["bpr"] = round(time.perf_counter() - started, 3)
            log.info("recommend_bpr_trained", seconds=artifacts.timings["bpr"])
        if config.train_item_to_item:
            started = time.perf_counter()
            # cosine = dot product of L2-normalised item columns (CosineRecommender, minus
            # its COO hand-over that makes implicit warn)
            normalised = normalize(matrix.T).T.tocsr()
            cosine = ItemItemRecommender(K=config.neighbours, num_threads=threads)
            cosine.fit(normalised, show_progress=False)
            similarity = sp.csr_matrix(cosine.similarity, dtype=np.float32)
            similarity.setdiag(0)
            similarity.eliminate_zeros()
            artifacts.similarity = similarity
            artifacts.timings["item_to_item"] = round(time.perf_counter() - started, 3)
            log.info("recommend_i2i_trained", seconds=artifacts.timings["item_to_item"])
    return artifacts


def auto_factors(matrix: sp.csr_matrix) -> int:
    """ALS factors for a user × item matrix: the power of two nearest half the median history.

    Measured on the offline evaluation: customers with ~5 items (demo brokerage) are served
    best by 4 factors, which beat the hot ranking, while 32 overfit and lose to it; MovieLens
    users (~50 ratings) want 32. Clipped to [4, 32].
    """
    per_user = np.diff(matrix.indptr)
    per_user = per_user[per_user > 0]
    if per_user.size == 0:
        return 4
    half = max(float(np.median(per_user)) / 2.0, 1.0)
    return int(np.clip(2 ** round(np.log2(half)), 4, 32))


# -- files ------------------------------------------------------------------------------------
def save(artifacts: Artifacts, folder: Path, *, meta: dict[str, Any]) -> None:
    """Write ``artifacts`` to ``folder`` atomically (a temporary folder renamed at the end)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    inter = artifacts.interactions
    np.save(tmp / "user_ids.npy", inter.user_ids)
    np.save(tmp / "popularity.npy", inter.popularity)
    sp.save_npz(tmp / "user_items.npz", inter.matrix, compressed=False)
    sp.save_npz(tmp / "held.npz", inter.held, compressed=False)
    for name in ("als_user", "als_item", "bpr_user", "bpr_item"):
        part = getattr(artifacts, name)
        if part is not None:
            np.save(tmp / f"{name}.npy", part)
    if artifacts.similarity is not None:
        sp.save_npz(tmp / "similarity.npz", artifacts.similarity, compressed=False)
    (tmp / "items.json").write_text(json.dumps(inter.item_keys, ensure_ascii=False))
    (tmp / "meta.json").write_text(
        json.dumps(
            {
                **meta,
                "hot_days": artifacts.hot_days,
                "algorithms": artifacts.algorithms,
                "timings": artifacts.timings,
            }
        )
    )
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def load(folder: Path) -> Artifacts:
    """Read artifacts written by :func:`save`; factors are memory-mapped, not copied."""
    meta = json.loads((folder / "meta.json").read_text())
    keys = [(str(t), str(i)) for t, i in json.loads((folder / "items.json").read_text())]
    interactions = Interactions(
        user_ids=np.load(folder / "user_ids.npy"),
        item_keys=keys,
        matrix=sp.load_npz(folder / "user_items.npz").tocsr(),
        held=sp.load_npz(folder / "held.npz").tocsr(),
        popularity=np.load(folder / "popularity.npy"),
    )
    artifacts = Artifacts(interactions=interactions, hot_days=int(meta.get("hot_days", 30)))
    for name in ("als_user", "als_item", "bpr_user", "bpr_item"):
        path = folder / f"{name}.npy"
        if path.exists():
            setattr(artifacts, name, np.load(path, mmap_mode="r"))
    if (folder / "similarity.npz").exists():
        artifacts.similarity = sp.load_npz(folder / "similarity.npz").tocsr()
    return artifacts
