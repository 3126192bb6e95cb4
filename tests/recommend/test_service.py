"""The recommend service end to end on a real SQLite + DuckDB runtime."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from flywheel.auth.schemas import Principal
from flywheel.core.clock import FrozenClock
from flywheel.core.errors import InvalidInput, NotFound
from flywheel.recommend import service
from flywheel.recommend.schemas import (
    ItemRef,
    RecallSource,
    RecommendationOut,
    SceneIn,
    StrategyConfig,
    StrategyIn,
)
from flywheel.runtime import Runtime
from tests.recommend.conftest import FAST, Brokerage, put_events, put_items, put_users


def _train(runtime: Runtime, shop: Brokerage) -> int:
    with runtime.db.unit_of_work() as session:
        out = service.train(
            session=session,
            warehouse=runtime.warehouse,
            models_root=service.models_dir(runtime.settings.data_dir),
            project_id=shop.project_id,
            now=shop.now,
            config=FAST,
        )
    return out.version


def _ask(
    runtime: Runtime,
    shop: Brokerage,
    login: str,
    *,
    scene: str = "home",
    n: int | None = 10,
    strategy: str | None = None,
    principal: Principal | None = None,
) -> RecommendationOut:
    with runtime.db.unit_of_work() as session:
        return service.recommend(
            session=session,
            warehouse=runtime.warehouse,
            models_root=service.models_dir(runtime.settings.data_dir),
            project_id=shop.project_id,
            scene=scene,
            user_id=shop.users[login],
            now=shop.now,
            n=n,
            strategy=strategy,
            principal=principal,
        )


def _put_strategy(runtime: Runtime, shop: Brokerage, name: str, config: StrategyConfig) -> None:
    with runtime.db.unit_of_work() as session:
        service.put_strategy(
            session=session,
            project_id=shop.project_id,
            name=name,
            strategy_in=StrategyIn(config=config),
        )


def _level(risk: str | None) -> int:
    return 0 if risk is None else int(risk[1])


@pytest.fixture
def shop(runtime: Runtime, brokerage: Brokerage) -> Brokerage:
    _train(runtime, brokerage)
    return brokerage


def test_home_exists_out_of_the_box(runtime: Runtime, brokerage: Brokerage) -> None:
    with runtime.db.unit_of_work() as session:
        scenes = service.list_scenes(session=session, project_id=brokerage.project_id)
    assert [s.name for s in scenes] == ["home"]
    assert scenes[0].builtin and scenes[0].strategy == "hybrid"


def test_recommend_without_any_model_falls_back_to_items(
    runtime: Runtime, brokerage: Brokerage
) -> None:
    answer = _ask(runtime, brokerage, "cust-4")  # C5, no model trained yet
    assert answer.model_version is None
    assert answer.strategy == "hybrid"
    # no model: only new items have a signal, and they are suitable
    assert all(_level(i.risk_level) <= 5 for i in answer.items)


def test_trained_model_serves_personal_suitable_items(runtime: Runtime, shop: Brokerage) -> None:
    login = "cust-4"  # C5, likes R5 funds
    answer = _ask(runtime, shop, login)
    assert answer.model_version == 1
    assert len(answer.items) == 10
    assert len({(i.item_type, i.item_id) for i in answer.items}) == 10
    assert all(i.reason for i in answer.items)
    assert [i.score for i in answer.items] == sorted((i.score for i in answer.items), reverse=True)
    personal = [i for i in answer.items if i.source in ("als", "item_to_item")]
    assert personal, answer
    assert any(i.reason.startswith("因为您关注了《") for i in personal)
    assert all(i.item_id not in ("FOFF", "FUNRATED") for i in answer.items)


def test_tastes_are_learned(runtime: Runtime, shop: Brokerage) -> None:
    """C3 customers looked at R3 funds: ALS puts R3 funds first for them."""
    hits = 0
    logins = [f"cust-{n}" for n in range(2, 60, 5) if shop.tolerance[f"cust-{n}"] == "C3"]
    for login in logins:
        answer = _ask(runtime, shop, login, strategy="als", n=3)
        hits += sum(1 for i in answer.items if i.risk_level == "R3")
    assert hits >= 2 * len(logins)


@pytest.mark.parametrize("login", ["cust-0", "cust-1", "cust-3", "cust-5", "cust-20"])
def test_ceiling_per_customer(runtime: Runtime, shop: Brokerage, login: str) -> None:
    tolerance = shop.tolerance[login]
    ceiling = int(tolerance[1]) if tolerance else 0
    for strategy in ("hybrid", "als", "bpr", "item_to_item", "popular"):
        answer = _ask(runtime, shop, login, strategy=strategy, n=30)
        assert all(_level(i.risk_level) <= ceiling for i in answer.items), (strategy, answer)
        if strategy in ("hybrid", "popular"):
            assert answer.items, strategy  # something suitable is always there to show
    if tolerance is None:  # unassessed (cust-3) or expired (cust-5): articles only
        assert all(i.item_type == "article" for i in answer.items)


def test_held_items_are_not_recommended(runtime: Runtime, shop: Brokerage) -> None:
    login = "cust-9"  # C5
    bought = runtime.warehouse.fetch(
        f'SELECT item_id FROM "p{shop.project_id}_events" WHERE user_id = ? AND event = ?',
        [shop.users[login], "BuyFund"],
    )[0][0]
    answer = _ask(runtime, shop, login, strategy="item_to_item", n=40)
    assert bought not in {i.item_id for i in answer.items}
    _put_strategy(
        runtime,
        shop,
        "keep_held",
        StrategyConfig(recall=[RecallSource(kind="item_to_item")], exclude_held=False),
    )
    answer = _ask(runtime, shop, login, strategy="keep_held", n=40)
    assert bought in {i.item_id for i in answer.items}


def test_new_customer_gets_hot_items(runtime: Runtime, shop: Brokerage) -> None:
    with runtime.db.unit_of_work() as session:
        from flywheel.identity import service as identity

        ids = identity.resolve_many(
            session=session,
            project_id=shop.project_id,
            key="$identity_login_id",
            values=["newbie"],
            now=shop.now,
        )
    put_users(
        runtime,
        shop.project_id,
        [{"user_id": ids["newbie"], "risk_tolerance": "C4", "risk_assessment_expiry": None}],
        shop.now,
    )
    shop.users["newbie"] = ids["newbie"]
    answer = _ask(runtime, shop, "newbie", strategy="als")
    assert answer.items, "cold start must fall back to the hot ranking"
    assert {i.source for i in answer.items} == {"popularity"}
    assert answer.items[0].reason.startswith("热门：近30天关注排名第")
    assert all(_level(i.risk_level) <= 4 for i in answer.items)


def test_new_items_source(runtime: Runtime, shop: Brokerage) -> None:
    _put_strategy(
        runtime, shop, "fresh", StrategyConfig(recall=[RecallSource(kind="new_items", days=30)])
    )
    answer = _ask(runtime, shop, "cust-4", strategy="fresh")
    assert [(i.item_id, i.reason) for i in answer.items] == [("FNEW", "新品上架")]


def test_a_lower_tolerance_applies_at_once(runtime: Runtime, shop: Brokerage) -> None:
    login = "cust-4"
    assert any(_level(i.risk_level) > 1 for i in _ask(runtime, shop, login, n=30).items)
    put_users(
        runtime,
        shop.project_id,
        [{"user_id": shop.users[login], "risk_tolerance": "C1", "risk_assessment_expiry": None}],
        shop.now,
    )
    assert all(_level(i.risk_level) <= 1 for i in _ask(runtime, shop, login, n=30).items)


def test_a_raised_item_risk_applies_after_refresh(runtime: Runtime, shop: Brokerage) -> None:
    login = "cust-1"  # C2
    answer = _ask(runtime, shop, login, strategy="popular", n=40)
    r2 = next(i for i in answer.items if i.risk_level == "R2")
    row = {"item_type": "fund", "item_id": r2.item_id, "risk_level": "R4", "name": "x"}
    put_items(runtime, shop.project_id, [row], shop.now)
    with runtime.db.unit_of_work() as session:
        service.refresh_index(
            session=session,
            warehouse=runtime.warehouse,
            models_root=service.models_dir(runtime.settings.data_dir),
            project_id=shop.project_id,
        )
    answer = _ask(runtime, shop, login, strategy="popular", n=40)
    assert r2.item_id not in {i.item_id for i in answer.items}


def test_impressions_hide_items_shown_too_often(runtime: Runtime, shop: Brokerage) -> None:
    login = "cust-4"
    first = _ask(runtime, shop, login).items[0]
    with runtime.db.unit_of_work() as session:
        for expected in range(1, 6):
            counts = service.record_feedback(
                session=session,
                project_id=shop.project_id,
                user_id=shop.users[login],
                item_type=first.item_type,
                item_id=first.item_id,
                action="show",
                now=shop.now,
            )
            assert counts.shown == expected
        counts = service.record_feedback(
            session=session,
            project_id=shop.project_id,
            user_id=shop.users[login],
            item_type=first.item_type,
            item_id=first.item_id,
            action="click",
            now=shop.now,
        )
        assert (counts.shown, counts.clicked) == (5, 1)
    assert first.item_id not in {i.item_id for i in _ask(runtime, shop, login).items}


def test_slot_events_feed_the_impression_counters(runtime: Runtime, shop: Brokerage) -> None:
    login = "cust-4"
    first = _ask(runtime, shop, login).items[0]
    events = [
        {
            "user_id": shop.users[login],
            "event": "itemShow",
            "time": shop.now.replace(tzinfo=None) - timedelta(minutes=k),
            "item_type": first.item_type,
            "item_id": first.item_id,
        }
        for k in range(5)
    ]
    put_events(runtime, shop.project_id, events)
    with runtime.db.unit_of_work() as session:
        counted = service.count_slot_events(
            session=session,
            warehouse=runtime.warehouse,
            project_id=shop.project_id,
            now=shop.now,
        )
    assert counted == 5
    with runtime.db.unit_of_work() as session:
        again = service.count_slot_events(
            session=session,
            warehouse=runtime.warehouse,
            project_id=shop.project_id,
            now=shop.now,
        )
    assert again == 0
    assert first.item_id not in {i.item_id for i in _ask(runtime, shop, login).items}


def test_ab_split_is_deterministic_and_balanced(runtime: Runtime, shop: Brokerage) -> None:
    with runtime.db.unit_of_work() as session:
        service.put_scene(
            session=session,
            project_id=shop.project_id,
            name="fund_list",
            scene_in=SceneIn(
                strategy="hybrid", strategy_b="popular", split_b=0.5, item_types=["fund"]
            ),
        )
    arms = Counter()
    for login in shop.users:
        answer = _ask(runtime, shop, login, scene="fund_list", n=5)
        assert all(i.item_type == "fund" for i in answer.items)
        again = _ask(runtime, shop, login, scene="fund_list", n=5)
        assert again.strategy == answer.strategy
        arms[answer.strategy] += 1
    assert set(arms) == {"hybrid", "popular"}
    assert 0.3 < arms["popular"] / sum(arms.values()) < 0.7


def test_pins_and_rules_never_bypass_suitability(runtime: Runtime, shop: Brokerage) -> None:
    config = StrategyConfig(
        recall=[
            RecallSource(
                kind="pin",
                weight=100,
                items=[ItemRef(item_type="fund", item_id="F004")],  # R5
                reason="本周精选",
            ),
            RecallSource(
                kind="rule",
                weight=10,
                match={"category": ["货币"]},
                when={"risk_tolerance": ["C1"]},
                reason="稳健之选",
            ),
        ],
        max_per_category=None,
    )
    _put_strategy(runtime, shop, "ops", config)
    bold = _ask(runtime, shop, "cust-4", strategy="ops")  # C5
    assert (bold.items[0].item_id, bold.items[0].reason) == ("F004", "本周精选")
    assert all(i.reason != "稳健之选" for i in bold.items)  # rule is for C1 only
    careful = _ask(runtime, shop, "cust-0", strategy="ops")  # C1
    assert "F004" not in {i.item_id for i in careful.items}
    assert careful.items and all(i.reason == "稳健之选" for i in careful.items)
    assert all(i.risk_level == "R1" for i in careful.items)


def test_diversity_by_category(runtime: Runtime, shop: Brokerage) -> None:
    _put_strategy(
        runtime,
        shop,
        "diverse",
        StrategyConfig(recall=[RecallSource(kind="popularity")], max_per_category=1),
    )
    answer = _ask(runtime, shop, "cust-4", strategy="diverse", n=6)
    categories = [i.category for i in answer.items]
    assert len(set(categories)) == len(categories) == 6


def test_scene_validation(runtime: Runtime, brokerage: Brokerage) -> None:
    with runtime.db.unit_of_work() as session:
        with pytest.raises(InvalidInput):
            service.put_scene(
                session=session,
                project_id=brokerage.project_id,
                name="models",
                scene_in=SceneIn(strategy="hybrid"),
            )
        with pytest.raises(NotFound):
            service.put_scene(
                session=session,
                project_id=brokerage.project_id,
                name="banner",
                scene_in=SceneIn(strategy="nope"),
            )
        with pytest.raises(NotFound):
            service.get_scene(session=session, project_id=brokerage.project_id, name="banner")


def test_data_scope_hides_other_advisors_customers(runtime: Runtime, shop: Brokerage) -> None:
    advisor = Principal(
        user_id=1,
        username="adv",
        role="advisor",
        permissions=frozenset({"recommend:read"}),
        advisor_id="ADV1",
    )
    assert _ask(runtime, shop, "cust-4", principal=advisor).items  # 4 % 3 == 1
    with pytest.raises(NotFound):
        _ask(runtime, shop, "cust-5", principal=advisor)


def test_versions_are_kept_and_pruned(
    runtime: Runtime, shop: Brokerage, clock: FrozenClock
) -> None:
    for _ in range(4):
        _train(runtime, shop)
    with runtime.db.unit_of_work() as session:
        models = service.list_models(session=session, project_id=shop.project_id)
    assert [m.version for m in models] == [5, 4, 3, 2, 1]
    assert [m.status for m in models] == ["ready"] * 3 + ["pruned"] * 2
    assert models[0].algorithms == ["popularity", "als", "bpr", "item_to_item"]
    root = Path(service.models_dir(runtime.settings.data_dir)) / f"p{shop.project_id}"
    assert sorted(p.name for p in root.iterdir()) == ["v000003", "v000004", "v000005"]
    assert _ask(runtime, shop, "cust-4").model_version == 5


@pytest.mark.parametrize(("stored", "ceiling"), [("C1", 1), ("C5", 2), (None, 0)])
def test_the_stricter_of_both_profile_stores_wins(
    runtime: Runtime, shop: Brokerage, stored: str | None, ceiling: int
) -> None:
    """The operational profile is the truth, the warehouse its lagging mirror: min of both."""
    from flywheel.profiles import service as profiles

    login = "cust-1"  # C2 in the warehouse
    with runtime.db.unit_of_work() as session:
        profiles.save_profiles(
            session=session,
            project_id=shop.project_id,
            profiles={shop.users[login]: {"risk_tolerance": stored} if stored else {"city": "x"}},
            now=shop.now,
        )
    answer = _ask(runtime, shop, login, strategy="popular", n=40)
    assert answer.items
    assert max(_level(i.risk_level) for i in answer.items) == ceiling


def test_rule_source_for_a_segment(runtime: Runtime, shop: Brokerage) -> None:
    """A rule list can target a segment's members (``when: {"$segment": [id]}``)."""
    from flywheel.segments import service as segments

    members = [shop.users["cust-4"]]  # C5
    with runtime.db.unit_of_work() as session:
        segment = segments.create_from_upload(
            session=session,
            warehouse=runtime.warehouse,
            project_id=shop.project_id,
            name="vip",
            content=("user_id\n" + "\n".join(str(u) for u in members) + "\n").encode(),
            actor="test",
            now=shop.now,
        )
    config = StrategyConfig(
        recall=[
            RecallSource(kind="popularity", weight=1),
            RecallSource(
                kind="rule",
                weight=100,
                match={"category": ["货币"]},
                when={"$segment": [segment.id]},
                reason="会员专享",
            ),
        ],
        max_per_category=None,
    )
    _put_strategy(runtime, shop, "vip", config)
    member = _ask(runtime, shop, "cust-4", strategy="vip")
    assert member.items[0].reason == "会员专享"
    outsider = _ask(runtime, shop, "cust-3", strategy="vip")
    assert all(i.reason != "会员专享" for i in outsider.items)
