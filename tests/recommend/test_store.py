"""Operational tables on SQLite and (when configured) PostgreSQL: upserts, config round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.projects import service as projects
from flywheel.recommend import service
from flywheel.recommend.schemas import RecallSource, SceneIn, StrategyConfig, StrategyIn

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_counters_and_configuration(database_url: str, tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path / "data", database_url=database_url)
    runtime = open_runtime(settings)
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name="default").id
            for action in ("show", "show", "click"):
                counts = service.record_feedback(
                    session=session,
                    project_id=project_id,
                    user_id=42,
                    item_type="fund",
                    item_id="F001",
                    action=action,
                    now=NOW,
                )
            assert (counts.shown, counts.clicked) == (2, 1)
            service.put_strategy(
                session=session,
                project_id=project_id,
                name="hot",
                strategy_in=StrategyIn(
                    config=StrategyConfig(recall=[RecallSource(kind="popularity", weight=2)])
                ),
            )
            service.put_scene(
                session=session,
                project_id=project_id,
                name="fund_list",
                scene_in=SceneIn(strategy="hot", strategy_b="als", split_b=0.2),
            )
        with runtime.db.unit_of_work() as session:
            scene = service.get_scene(session=session, project_id=project_id, name="fund_list")
            strategy = service.get_strategy(session=session, project_id=project_id, name="hot")
            trained = service.train(
                session=session,
                warehouse=runtime.warehouse,
                models_root=service.models_dir(settings.data_dir),
                project_id=project_id,
                now=NOW,
            )
        assert (scene.strategy, scene.strategy_b, scene.split_b) == ("hot", "als", 0.2)
        assert strategy.config.recall[0].weight == 2
        assert (trained.version, trained.n_interactions) == (1, 0)
    finally:
        runtime.close()
