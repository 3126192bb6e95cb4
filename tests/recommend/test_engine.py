"""The pure pipeline: rules on list properties, diversity, explanations, cold start."""

from __future__ import annotations

from datetime import date

import numpy as np
import scipy.sparse as sp

from flywheel.recommend import engine
from flywheel.recommend.schemas import RecallSource, StrategyConfig

TODAY = date(2026, 11, 2)


def _catalog() -> engine.Catalog:
    rows = [
        {
            "item_type": "fund",
            "item_id": f"F{i}",
            "name": f"基金{i}",
            "risk_level": "R2",
            "category": "债券" if i < 4 else "混合",
            "tags": ["ETF", "热门"] if i % 2 else ["主动"],
        }
        for i in range(6)
    ]
    return engine.Catalog.from_rows(rows)


def _model(catalog: engine.Catalog) -> engine.ServingModel:
    history = sp.csr_matrix(
        (np.array([3.0, 1.0], np.float32), (np.array([0, 0]), np.array([0, 4]))),
        shape=(1, len(catalog)),
    )
    similarity = np.zeros((len(catalog), len(catalog)), np.float32)
    similarity[0, 1] = 0.9  # F1 looks like F0
    similarity[4, 5] = 0.8  # F5 looks like F4
    similarity[4, 1] = 0.1
    return engine.ServingModel(
        version=1,
        user_ids=np.array([7], np.int64),
        user_items=history,
        held=sp.csr_matrix((1, len(catalog)), dtype=np.float32),
        popularity=np.arange(len(catalog), dtype=np.float32),
        similarity=sp.csr_matrix(similarity),
        known_items=np.ones(len(catalog), np.bool_),
    )


def _run(strategy: StrategyConfig, user_id: int = 7, n: int = 10) -> list[engine.Pick]:
    catalog = _catalog()
    return engine.recommend(
        catalog=catalog,
        model=_model(catalog),
        customer=engine.Customer(user_id=user_id, max_level=5),
        strategy=strategy,
        n=n,
        today=TODAY,
    )


def test_rule_matches_any_element_of_a_list_property() -> None:
    picks = _run(StrategyConfig(recall=[RecallSource(kind="rule", match={"tags": ["ETF"]})]))
    assert sorted(p.position for p in picks) == [1, 3, 5]
    assert [p.position for p in picks] == [5, 3, 1]  # popularity orders a rule's items
    assert {p.reason for p in picks} == {"为您精选"}


def test_item_to_item_explains_with_the_anchor_item() -> None:
    picks = _run(StrategyConfig(recall=[RecallSource(kind="item_to_item")]))
    by_position = {p.position: p for p in picks}
    assert by_position[1].reason == "因为您关注了《基金0》"  # 3 × 0.9 beats 1 × 0.1
    assert by_position[5].reason == "因为您关注了《基金4》"
    assert [p.position for p in picks] == [1, 5]  # 2.8 > 0.8


def test_diversity_caps_a_category_then_fills() -> None:
    popular = StrategyConfig(recall=[RecallSource(kind="popularity")], max_per_category=1)
    picks = _run(popular, n=2)
    assert [p.position for p in picks] == [5, 3]  # best 混合, then best 债券
    picks = _run(popular, n=4)
    assert [p.position for p in picks] == [5, 3, 4, 2]  # no third category: the cap relaxes


def test_unknown_customer_falls_back_to_the_hot_ranking() -> None:
    picks = _run(StrategyConfig(recall=[RecallSource(kind="item_to_item")]), user_id=99, n=3)
    assert [p.position for p in picks] == [5, 4, 3]
    assert all(p.source == "popularity" for p in picks)
    no_fallback = StrategyConfig(
        recall=[RecallSource(kind="item_to_item")], fallback_popularity=False
    )
    assert _run(no_fallback, user_id=99) == []
