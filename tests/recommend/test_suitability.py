"""Suitability: no recommendation ever exceeds the customer's tolerance, whatever the strategy."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.recommend import engine, service, suitability
from flywheel.recommend.schemas import (
    ItemRef,
    RecallSource,
    StrategyConfig,
    StrategyIn,
)
from flywheel.runtime import Runtime
from tests.recommend.conftest import FAST, Brokerage

TODAY = date(2026, 11, 2)


@pytest.mark.parametrize(
    ("tolerance", "expiry", "expected"),
    [
        ("C1", date(2027, 1, 1), 1),
        ("C5", date(2027, 1, 1), 5),
        ("c3", None, 3),
        ("C3", TODAY, 3),  # expires today: still valid today
        ("C3", TODAY - timedelta(days=1), suitability.UNASSESSED_MAX),
        ("C3", "not a date", suitability.UNASSESSED_MAX),
        (None, date(2027, 1, 1), suitability.UNASSESSED_MAX),
        ("C6", None, suitability.UNASSESSED_MAX),
        ("", None, suitability.UNASSESSED_MAX),
        (3, None, suitability.UNASSESSED_MAX),
    ],
)
def test_tolerance_level(tolerance: object, expiry: object, expected: int) -> None:
    assert suitability.tolerance_level(tolerance, expiry, today=TODAY) == expected


def test_unassessed_customers_get_no_risk_bearing_product_not_even_r1() -> None:
    assert not suitability.allowed(1, suitability.UNASSESSED_MAX)
    assert suitability.allowed(suitability.NO_RISK, suitability.UNASSESSED_MAX)


@pytest.mark.parametrize(
    ("item_type", "value", "expected"),
    [
        ("fund", "R4", 4),
        ("fund", " r2 ", 2),
        ("fund", None, suitability.UNRATED),
        ("fund", "R9", suitability.UNRATED),
        ("service", None, suitability.UNRATED),
        ("article", None, suitability.NO_RISK),
        ("article", "R3", 3),
    ],
)
def test_risk_level(item_type: str, value: object, expected: int) -> None:
    assert suitability.risk_level(item_type, value) == expected


def test_unrated_products_are_shown_to_nobody() -> None:
    assert not suitability.allowed(suitability.UNRATED, 5)


def test_business_date_is_shanghai() -> None:
    # 2026-11-01 17:00 UTC is already 2 November in Shanghai
    assert suitability.business_date(datetime(2026, 11, 1, 17, 0)) == date(2026, 11, 2)


def test_a_strategy_cannot_even_mention_suitability() -> None:
    with pytest.raises(ValueError, match="suitability"):
        StrategyConfig.model_validate({"recall": [{"kind": "als"}], "suitability": False})


# -- property: the pure pipeline ----------------------------------------------------------------
LEVELS = [suitability.NO_RISK, 1, 2, 3, 4, 5, suitability.UNRATED]

sources = st.builds(
    RecallSource,
    kind=st.sampled_from(["als", "bpr", "item_to_item", "popularity", "new_items", "pin", "rule"]),
    weight=st.floats(0, 1000),
    size=st.integers(1, 60),
    items=st.lists(
        st.builds(
            ItemRef,
            item_type=st.just("fund"),
            item_id=st.sampled_from([f"I{i}" for i in range(40)]),
        ),
        max_size=10,
    ),
    match=st.sampled_from([{}, {"category": ["a"]}, {"item_type": ["fund", "article"]}]),
    days=st.integers(1, 400),
)
strategies = st.builds(
    StrategyConfig,
    recall=st.lists(sources, min_size=1, max_size=6),
    exclude_held=st.booleans(),
    exclude_interacted=st.booleans(),
    exclude_off_sale=st.booleans(),
    max_impressions=st.none() | st.integers(1, 5),
    max_per_category=st.none() | st.integers(1, 5),
    fallback_popularity=st.booleans(),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[engine.Catalog, engine.ServingModel]:
    n_items = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    levels = draw(st.lists(st.sampled_from(LEVELS), min_size=n_items, max_size=n_items))
    catalog = engine.Catalog.from_rows(
        [
            {
                "item_type": "fund" if i % 4 else "article",
                "item_id": f"I{i}",
                "category": "ab"[i % 2],
                "on_sale": bool(rng.random() > 0.2),
                "launch_date": date(2026, 10, 1) if i % 3 == 0 else None,
            }
            for i in range(n_items)
        ]
    )
    catalog.risk[:] = np.asarray(levels, np.int8)
    n_users = 5
    dense = (rng.random((n_users, n_items)) > 0.6).astype(np.float32)
    similarity = rng.random((n_items, n_items)).astype(np.float32)
    model = engine.ServingModel(
        version=1,
        user_ids=np.arange(n_users, dtype=np.int64),
        user_items=sp.csr_matrix(dense),
        held=sp.csr_matrix((rng.random((n_users, n_items)) > 0.8).astype(np.float32)),
        popularity=rng.random(n_items).astype(np.float32),
        als_user=rng.normal(size=(n_users, 4)).astype(np.float32),
        als_item=rng.normal(size=(n_items, 4)).astype(np.float32),
        bpr_user=rng.normal(size=(n_users, 4)).astype(np.float32),
        bpr_item=rng.normal(size=(n_items, 4)).astype(np.float32),
        similarity=sp.csr_matrix(similarity),
        known_items=rng.random(n_items) > 0.1,
    )
    return catalog, model


@settings(max_examples=300, deadline=None)
@given(
    world=worlds(),
    strategy=strategies,
    user_id=st.integers(0, 7),
    tolerance=st.sampled_from(["C1", "C2", "C3", "C4", "C5", None, "X"]),
    expiry=st.none() | st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    n=st.integers(1, 50),
    item_types=st.sampled_from([[], ["fund"], ["article"]]),
)
def test_no_pick_ever_exceeds_tolerance(
    world: tuple[engine.Catalog, engine.ServingModel],
    strategy: StrategyConfig,
    user_id: int,
    tolerance: str | None,
    expiry: date | None,
    n: int,
    item_types: list[str],
) -> None:
    catalog, model = world
    max_level = suitability.tolerance_level(tolerance, expiry, today=TODAY)
    picks = engine.recommend(
        catalog=catalog,
        model=model,
        customer=engine.Customer(user_id=user_id, max_level=max_level),
        strategy=strategy,
        n=n,
        item_types=item_types,
        today=TODAY,
    )
    assert len(picks) <= n
    assert len({p.position for p in picks}) == len(picks)
    for pick in picks:
        level = int(catalog.risk[pick.position])
        assert level != suitability.UNRATED
        assert level <= max_level
        valid = tolerance in ("C1", "C2", "C3", "C4", "C5")
        if (expiry is not None and expiry < TODAY) or not valid:
            assert level == suitability.NO_RISK
        if item_types:
            assert catalog.keys[pick.position][0] in item_types


# -- property: the whole service, real warehouse and trained model ------------------------------
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(strategy=strategies, data=st.data())
def test_served_recommendations_respect_tolerance(
    trained: tuple[Runtime, Brokerage], strategy: StrategyConfig, data: st.DataObject
) -> None:
    runtime, shop = trained
    login = data.draw(st.sampled_from(sorted(shop.users)))
    with runtime.db.unit_of_work() as session:
        service.put_strategy(
            session=session,
            project_id=shop.project_id,
            name="random",
            strategy_in=StrategyIn(config=strategy),
        )
        answer = service.recommend(
            session=session,
            warehouse=runtime.warehouse,
            models_root=service.models_dir(runtime.settings.data_dir),
            project_id=shop.project_id,
            scene="home",
            user_id=shop.users[login],
            now=shop.now,
            n=data.draw(st.integers(1, 30)),
            strategy="random",
        )
    tolerance = shop.tolerance[login]
    ceiling = int(tolerance[1]) if tolerance else 0
    for item in answer.items:
        assert item.risk_level != "unrated"
        level = 0 if item.risk_level is None else int(item.risk_level[1])
        assert level <= ceiling, (login, tolerance, item)
        if item.item_type == "fund" and item.item_id in shop.funds:
            assert item.risk_level == shop.funds[item.item_id]


@pytest.fixture
def trained(runtime: Runtime, brokerage: Brokerage) -> tuple[Runtime, Brokerage]:
    with runtime.db.unit_of_work() as session:
        service.train(
            session=session,
            warehouse=runtime.warehouse,
            models_root=service.models_dir(runtime.settings.data_dir),
            project_id=brokerage.project_id,
            now=brokerage.now,
            config=FAST,
        )
    return runtime, brokerage
