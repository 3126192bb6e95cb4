"""The scoring pipeline, without I/O: recall sources → filters → ranking and mixing → top-N.

Everything here works on a :class:`Catalog` (the items that may be served, with their risk
levels) and a :class:`ServingModel` (the trained artifacts aligned to that catalog), so the
same code serves the API, the journeys' recommend node and the offline evaluation.

Scores of each recall source are turned into ranks (the best of a source's ``size`` recalled
items gets 1, the last 1/size), weighted and summed; the source that contributed most to an
item gives its explanation. Suitability is applied to the candidate set before recall and
checked again on the answer: no strategy setting reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from flywheel.recommend import suitability
from flywheel.recommend.schemas import RecallSource, StrategyConfig

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Personal recall sources: when none knows the customer, popularity fills in (cold start).
PERSONAL = frozenset({"als", "bpr", "item_to_item"})
#: How many of the customer's strongest interactions feed item-to-item recall.
HISTORY_CAP = 50


@dataclass
class Catalog:
    """The servable items (not deleted), one position per item, with what filters need."""

    keys: list[tuple[str, str]]
    item_types: npt.NDArray[np.object_]
    risk: npt.NDArray[np.int8]
    on_sale: BoolArray
    category: npt.NDArray[np.object_]
    name: npt.NDArray[np.object_]
    launch_date: npt.NDArray[np.datetime64]
    properties: dict[str, npt.NDArray[np.object_]] = field(default_factory=dict)
    position: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.position:
            self.position = {key: i for i, key in enumerate(self.keys)}
        self._type_masks: dict[tuple[str, ...], BoolArray] = {}
        self._level_masks: dict[int, BoolArray] = {}

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Catalog:
        """Build from item rows (``item_type``, ``item_id`` and item properties)."""
        keys = [(str(r["item_type"]), str(r["item_id"])) for r in rows]
        risk = np.array(
            [suitability.risk_level(str(r["item_type"]), r.get("risk_level")) for r in rows],
            dtype=np.int8,
        )
        on_sale = np.array([r.get("on_sale") is not False for r in rows], dtype=np.bool_)
        launch = np.array(
            [_as_day(r.get("launch_date")) for r in rows], dtype="datetime64[D]"
        ).reshape(-1)
        skip = {"item_type", "item_id", "$update_time", "$is_deleted"}
        names = {k for r in rows for k in r if k not in skip}
        properties = {k: _objects([r.get(k) for r in rows]) for k in names}
        return cls(
            keys=keys,
            item_types=_objects([k[0] for k in keys]),
            risk=risk,
            on_sale=on_sale,
            category=_objects([r.get("category") for r in rows]),
            name=_objects([r.get("name") for r in rows]),
            launch_date=launch,
            properties=properties,
        )

    def type_mask(self, item_types: list[str]) -> BoolArray:
        key = tuple(sorted(item_types))
        mask = self._type_masks.get(key)
        if mask is None:
            mask = np.isin(self.item_types, list(key)) if key else np.ones(len(self), np.bool_)
            self._type_masks[key] = mask
        return mask

    def level_mask(self, max_level: int) -> BoolArray:
        mask = self._level_masks.get(max_level)
        if mask is None:
            mask = suitability.allowed_mask(self.risk, max_level)
            self._level_masks[max_level] = mask
        return mask


@dataclass
class ServingModel:
    """Trained artifacts aligned to a catalog (item axis = catalog positions)."""

    version: int | None
    user_ids: IntArray
    user_items: sp.csr_matrix
    held: sp.csr_matrix
    popularity: FloatArray
    als_user: FloatArray | None = None
    als_item: FloatArray | None = None
    bpr_user: FloatArray | None = None
    bpr_item: FloatArray | None = None
    similarity: sp.csr_matrix | None = None
    hot_days: int = 30
    popularity_rank: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: Catalog positions the trained model knows (others are cold items for CF).
    known_items: BoolArray = field(default_factory=lambda: np.zeros(0, np.bool_))

    def __post_init__(self) -> None:
        if len(self.known_items) != len(self.popularity):
            self.known_items = np.zeros(len(self.popularity), np.bool_)
        if len(self.popularity_rank) != len(self.popularity):
            order = np.argsort(-self.popularity, kind="stable")
            rank = np.empty(len(order), np.int64)
            rank[order] = np.arange(1, len(order) + 1)
            self.popularity_rank = rank

    def row(self, user_id: int) -> int | None:
        """The model row of ``user_id``; None for a customer the model has not seen."""
        pos = int(np.searchsorted(self.user_ids, user_id))
        if pos < len(self.user_ids) and int(self.user_ids[pos]) == user_id:
            return pos
        return None

    @classmethod
    def empty(cls, n_items: int) -> ServingModel:
        return cls(
            version=None,
            user_ids=np.zeros(0, np.int64),
            user_items=sp.csr_matrix((0, n_items), dtype=np.float32),
            held=sp.csr_matrix((0, n_items), dtype=np.float32),
            popularity=np.zeros(n_items, np.float32),
        )


@dataclass
class Customer:
    """Who is being served: their model row, their suitability ceiling and profile."""

    user_id: int
    max_level: int
    profile: dict[str, Any] = field(default_factory=dict)
    #: Catalog positions shown too often already (from impression counters).
    overexposed: list[int] = field(default_factory=list)


@dataclass
class Pick:
    position: int
    score: float
    source: str
    reason: str


def recommend(
    *,
    catalog: Catalog,
    model: ServingModel,
    customer: Customer,
    strategy: StrategyConfig,
    n: int,
    item_types: list[str] | None = None,
    today: date,
) -> list[Pick]:
    """Top ``n`` suitable items for ``customer`` by ``strategy``, each with its explanation.

    Invariant: every pick satisfies ``suitability.allowed(risk, customer.max_level)``; the
    candidate mask starts from it and the answer is checked against it again.
    """
    if len(catalog) == 0 or n <= 0:
        return []
    row = model.row(customer.user_id)
    candidates = catalog.level_mask(customer.max_level).copy()
    if item_types:
        candidates &= catalog.type_mask(item_types)
    if strategy.exclude_off_sale:
        candidates &= catalog.on_sale
    history_idx = np.zeros(0, np.int64)
    history_w = np.zeros(0, np.float32)
    if row is not None:
        start, end = model.user_items.indptr[row], model.user_items.indptr[row + 1]
        history_idx = model.user_items.indices[start:end].astype(np.int64)
        history_w = model.user_items.data[start:end]
        if strategy.exclude_held:
            h0, h1 = model.held.indptr[row], model.held.indptr[row + 1]
            candidates[model.held.indices[h0:h1]] = False
        if strategy.exclude_interacted:
            candidates[history_idx] = False
    if strategy.max_impressions is not None and customer.overexposed:
        candidates[np.asarray(customer.overexposed, np.int64)] = False
    if not candidates.any():
        return []

    sources = list(strategy.recall)
    total = np.zeros(len(catalog), np.float32)
    best = np.zeros(len(catalog), np.float32)
    best_source = np.full(len(catalog), -1, np.int64)
    contexts: list[_SourceContext] = []

    def apply(source: RecallSource) -> bool:
        ctx = _SourceContext(source)
        contexts.append(ctx)
        index = len(contexts) - 1
        scores = _recall(source, catalog, model, customer, row, history_idx, history_w, today, ctx)
        if scores is None:
            return False
        picked = np.flatnonzero(candidates & np.isfinite(scores))
        if picked.size == 0:
            return False
        if picked.size > source.size:
            part = np.argpartition(-scores[picked], source.size - 1)[: source.size]
            picked = picked[part]
        order = picked[np.argsort(-scores[picked], kind="stable")]
        ranked = (len(order) - np.arange(len(order), dtype=np.float32)) / np.float32(source.size)
        contribution = ranked * np.float32(source.weight)
        total[order] += contribution
        better = contribution > best[order]
        best[order[better]] = contribution[better]
        best_source[order[better]] = index
        return True

    personal_hits = [apply(source) for source in sources if source.kind in PERSONAL]
    for source in sources:
        if source.kind not in PERSONAL:
            apply(source)
    if (
        personal_hits
        and not any(personal_hits)
        and strategy.fallback_popularity
        and not any(s.kind == "popularity" for s in sources)
    ):
        apply(RecallSource(kind="popularity", weight=0.5))  # cold start

    ranked_positions = np.flatnonzero(best_source >= 0)
    if ranked_positions.size == 0:
        return []
    order = ranked_positions[np.argsort(-total[ranked_positions], kind="stable")]
    chosen = _diversify(order, catalog, n, strategy.max_per_category)
    picks: list[Pick] = []
    for pos in chosen:
        if not suitability.allowed(int(catalog.risk[pos]), customer.max_level):
            continue  # unreachable by construction; kept as the last line of defence
        ctx = contexts[int(best_source[pos])]
        picks.append(
            Pick(
                position=int(pos),
                score=round(float(total[pos]), 6),
                source=ctx.source.kind,
                reason=_reason(ctx, int(pos), catalog, model, history_idx, history_w),
            )
        )
    return picks


@dataclass
class _SourceContext:
    source: RecallSource
    #: What explanations need: item-to-item (targets, values, anchors) of the recalled
    #: similarities; ALS/BPR (history positions, normalised history factors).
    contributions: Any = None


def _recall(
    source: RecallSource,
    catalog: Catalog,
    model: ServingModel,
    customer: Customer,
    row: int | None,
    history_idx: IntArray,
    history_w: FloatArray,
    today: date,
    ctx: _SourceContext,
) -> FloatArray | None:
    """Raw scores of one source over the catalog (``-inf`` where it recalls nothing)."""
    size = len(catalog)
    kind = source.kind
    if kind in ("als", "bpr"):
        users = model.als_user if kind == "als" else model.bpr_user
        items = model.als_item if kind == "als" else model.bpr_item
        if row is None or users is None or items is None or history_idx.size == 0:
            return None
        scores = (items @ np.asarray(users[row], dtype=np.float32)).astype(np.float32)
        scores[~model.known_items] = -np.inf  # items the model never saw (cold items)
        return scores
    if kind == "item_to_item":
        if model.similarity is None or history_idx.size == 0:
            return None
        top = np.argsort(-history_w, kind="stable")[:HISTORY_CAP]
        rows = history_idx[top]
        sim = model.similarity
        starts, ends = sim.indptr[rows], sim.indptr[rows + 1]
        targets = np.concatenate([sim.indices[a:b] for a, b in zip(starts, ends, strict=True)])
        values = np.concatenate(
            [sim.data[a:b] * w for a, b, w in zip(starts, ends, history_w[top], strict=True)]
        ).astype(np.float32)
        anchors = np.repeat(rows, ends - starts)
        scores = np.bincount(targets, weights=values, minlength=size).astype(np.float32)
        ctx.contributions = (targets, values, anchors)
        out = np.full(size, -np.inf, np.float32)
        hit = scores > 0
        out[hit] = scores[hit]
        return out
    if kind == "popularity":
        out = np.full(size, -np.inf, np.float32)
        hit = model.popularity > 0
        out[hit] = model.popularity[hit]
        return out
    if kind == "new_items":
        cutoff = np.datetime64(today - timedelta(days=source.days), "D")
        fresh = catalog.launch_date >= cutoff  # NaT compares False
        if not fresh.any():
            return None
        out = np.full(size, -np.inf, np.float32)
        days = (catalog.launch_date[fresh] - cutoff).astype(np.float32)
        out[fresh] = days + 1.0
        return out
    if kind == "pin":
        out = np.full(size, -np.inf, np.float32)
        for i, ref in enumerate(source.items):
            pos = catalog.position.get((ref.item_type, ref.item_id))
            if pos is not None:
                out[pos] = np.float32(len(source.items) - i)
        return out
    # rule: items matching ``match`` for customers matching ``when``
    for prop, accepted in source.when.items():
        if not _matches(customer.profile.get(prop), accepted):
            return None
    mask = np.ones(size, np.bool_)
    for prop, accepted in source.match.items():
        column = catalog.item_types if prop == "item_type" else catalog.properties.get(prop)
        if column is None:
            return None
        mask &= np.array([_matches(v, accepted) for v in column], dtype=np.bool_)
    out = np.full(size, -np.inf, np.float32)
    out[mask] = 1.0 + model.popularity[mask] / (1.0 + float(model.popularity.max(initial=0.0)))
    return out


def _matches(value: Any, accepted: list[Any]) -> bool:
    if isinstance(value, list | tuple | np.ndarray):
        return any(v in accepted for v in value)
    return value in accepted


def _diversify(order: IntArray, catalog: Catalog, n: int, cap: int | None) -> list[int]:
    if cap is None:
        return [int(p) for p in order[:n]]
    chosen: list[int] = []
    skipped: list[int] = []
    per_category: dict[Any, int] = {}
    for pos in order:
        category = catalog.category[pos]
        if category is not None and per_category.get(category, 0) >= cap:
            skipped.append(int(pos))
            continue
        per_category[category] = per_category.get(category, 0) + 1
        chosen.append(int(pos))
        if len(chosen) == n:
            return chosen
    # not enough variety: fill with the best of what the cap held back
    return chosen + skipped[: n - len(chosen)]


def _reason(
    ctx: _SourceContext,
    pos: int,
    catalog: Catalog,
    model: ServingModel,
    history_idx: IntArray,
    history_w: FloatArray,
) -> str:
    source = ctx.source
    kind = source.kind
    if source.reason and kind in ("pin", "rule", "new_items", "popularity"):
        return source.reason
    if kind == "pin":
        return "精选推荐"
    if kind == "rule":
        return "为您精选"
    if kind == "new_items":
        return "新品上架"
    if kind == "popularity":
        rank = int(model.popularity_rank[pos])
        return f"热门：近{model.hot_days}天关注排名第{rank}"
    anchor: int | None = None
    if kind == "item_to_item" and ctx.contributions is not None:
        targets, values, anchors = ctx.contributions
        mine = np.flatnonzero(targets == pos)
        if mine.size:
            anchor = int(anchors[mine[int(np.argmax(values[mine]))]])
    elif kind in ("als", "bpr") and history_idx.size:
        items = model.als_item if kind == "als" else model.bpr_item
        if items is not None:
            if ctx.contributions is None:  # the customer's history, normalised, once
                top = history_idx[np.argsort(-history_w, kind="stable")[:HISTORY_CAP]]
                block = items[top]
                norms = np.linalg.norm(block, axis=1)
                ctx.contributions = (top, block / np.where(norms == 0, 1.0, norms)[:, None])
            top, normed = ctx.contributions
            anchor = int(top[int(np.argmax(normed @ items[pos]))])
    if anchor is not None and anchor != pos:
        label = catalog.name[anchor] or catalog.keys[anchor][1]
        return f"因为您关注了《{label}》"
    return "与您偏好相似的客户也在关注"


def _objects(values: list[Any]) -> npt.NDArray[np.object_]:
    """A 1-D object array, element by element (lists stay elements, never a second axis)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _as_day(value: Any) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT", "D")
    try:
        return np.datetime64(str(value)[:10], "D")
    except ValueError:
        return np.datetime64("NaT", "D")
