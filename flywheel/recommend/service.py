"""Recommendations (推荐引擎): the module other domains import.

Serving: :func:`recommend` answers "which items for this customer in this scene", suitability
first (see :mod:`flywheel.recommend.suitability`), from an in-memory serving index. The journey
"recommend" node and content variables call the same function.

Configuration: strategies (recall → filters → mix) and scenes (a slot served by a strategy,
optionally A/B against a second one by a deterministic hash of the user id). ``home`` and a
few strategies exist out of the box and can be overridden.

Training: :func:`train` turns interaction events into a new model version (files under
``<data_dir>/models``, one row in ``recommend_model_versions``); the worker calls it on a
schedule. Feedback: :func:`record_feedback` and :func:`count_slot_events` keep the per-customer
impression counters behind the "already shown N times" filter.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flywheel.auth.schemas import Principal
from flywheel.auth.scope import in_scope, is_unrestricted
from flywheel.core.clock import utc_naive
from flywheel.core.errors import Conflict, InvalidInput, NotFound
from flywheel.identity import service as identity
from flywheel.profiles import service as profiles
from flywheel.recommend import engine, index, suitability, training
from flywheel.recommend.models import (
    RecommendImpression,
    RecommendModelVersion,
    RecommendScene,
    RecommendStrategy,
    RecommendSyncState,
    RecommendTrainingSettings,
)
from flywheel.recommend.schemas import (
    RESERVED_SCENES,
    FeedbackOut,
    ModelVersionOut,
    RecallSource,
    RecommendationOut,
    RecommendedItem,
    SceneIn,
    SceneOut,
    StrategyConfig,
    StrategyIn,
    StrategyOut,
    TrainingConfig,
)
from flywheel.segments import service as segments
from flywheel.tags import service as tags
from flywheel.warehouse import TableKind, Warehouse
from flywheel.warehouse.engine import table_name

#: Rule-source ``when`` keys that look beyond the profile: segment ids and tag values.
SEGMENT_KEY = "$segment"
TAG_PREFIX = "tag."

log = structlog.get_logger(__name__)

SERVED = Histogram(
    "flywheel_recommend_seconds",
    "Time to answer one recommendation request (service call).",
    ["scene"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
)
EMPTY = Counter(
    "flywheel_recommend_empty_total",
    "Recommendation answers without any item (e.g. no valid risk assessment).",
    ["scene"],
)

DEFAULT_KEY = "$identity_login_id"
#: Model versions kept on disk per project (older ones are pruned).
KEEP_VERSIONS = 3
SHOW_EVENT = "itemShow"
CLICK_EVENT = "itemClick"

BUILTIN_STRATEGIES: dict[str, tuple[str, StrategyConfig]] = {
    "hybrid": (
        "ALS + item-to-item + hot ranking + new items, diversified by category",
        StrategyConfig(
            recall=[
                RecallSource(kind="als", weight=1.0),
                RecallSource(kind="item_to_item", weight=1.0),
                RecallSource(kind="popularity", weight=0.3),
                RecallSource(kind="new_items", weight=0.2, size=20),
            ]
        ),
    ),
    "popular": (
        "Hot ranking (热门) only",
        StrategyConfig(recall=[RecallSource(kind="popularity")]),
    ),
    "als": ("Collaborative filtering (ALS)", StrategyConfig(recall=[RecallSource(kind="als")])),
    "bpr": ("Collaborative filtering (BPR)", StrategyConfig(recall=[RecallSource(kind="bpr")])),
    "item_to_item": (
        "Items similar to what the customer looked at or bought",
        StrategyConfig(recall=[RecallSource(kind="item_to_item")]),
    ),
}

BUILTIN_SCENES: dict[str, SceneIn] = {
    "home": SceneIn(title="首页推荐", strategy="hybrid", default_n=10),
}


def models_dir(data_dir: Path) -> Path:
    """Where model files live under a process's data folder."""
    return data_dir / "models"


# -- strategies ---------------------------------------------------------------------------------
def list_strategies(*, session: Session, project_id: int) -> list[StrategyOut]:
    """Stored strategies and the built-ins they do not override, by name."""
    stored = {
        s.name: _strategy_out(s)
        for s in session.scalars(
            select(RecommendStrategy).where(RecommendStrategy.project_id == project_id)
        )
    }
    builtins = {
        name: StrategyOut(name=name, description=desc, config=cfg, builtin=True)
        for name, (desc, cfg) in BUILTIN_STRATEGIES.items()
    }
    merged = {**builtins, **stored}
    return [merged[name] for name in sorted(merged)]


def get_strategy(*, session: Session, project_id: int, name: str) -> StrategyOut:
    """One strategy (stored, else built-in); :class:`NotFound` when neither exists."""
    row = _stored_strategy(session, project_id, name)
    if row is not None:
        return _strategy_out(row)
    if name in BUILTIN_STRATEGIES:
        desc, cfg = BUILTIN_STRATEGIES[name]
        return StrategyOut(name=name, description=desc, config=cfg, builtin=True)
    raise NotFound(f"unknown strategy {name!r}")


def put_strategy(
    *, session: Session, project_id: int, name: str, strategy_in: StrategyIn
) -> StrategyOut:
    """Create or replace a strategy (a stored strategy may override a built-in name)."""
    row = _stored_strategy(session, project_id, name)
    config = strategy_in.config.model_dump(mode="json")
    if row is None:
        row = RecommendStrategy(project_id=project_id, name=name)
        session.add(row)
    row.description = strategy_in.description
    row.config = config
    session.flush()
    log.info("recommend_strategy_saved", project_id=project_id, strategy=name)
    return _strategy_out(row)


def delete_strategy(*, session: Session, project_id: int, name: str) -> None:
    """Delete a stored strategy; :class:`Conflict` while a stored scene still uses it."""
    row = _stored_strategy(session, project_id, name)
    if row is None:
        raise NotFound(f"no stored strategy {name!r}")
    users = session.scalars(
        select(RecommendScene.name).where(
            RecommendScene.project_id == project_id,
            (RecommendScene.strategy == name) | (RecommendScene.strategy_b == name),
        )
    ).all()
    if users and name not in BUILTIN_STRATEGIES:
        raise Conflict(f"strategy {name!r} is used by scenes {sorted(users)}")
    session.delete(row)
    session.flush()


def _stored_strategy(session: Session, project_id: int, name: str) -> RecommendStrategy | None:
    return session.scalar(
        select(RecommendStrategy).where(
            RecommendStrategy.project_id == project_id, RecommendStrategy.name == name
        )
    )


def _strategy_out(row: RecommendStrategy) -> StrategyOut:
    return StrategyOut(
        name=row.name,
        description=row.description,
        config=StrategyConfig.model_validate(row.config),
        builtin=False,
    )


# -- scenes -------------------------------------------------------------------------------------
def list_scenes(*, session: Session, project_id: int) -> list[SceneOut]:
    """Stored scenes and the built-in ones (``home``) they do not override."""
    stored = {
        s.name: _scene_out(s)
        for s in session.scalars(
            select(RecommendScene).where(RecommendScene.project_id == project_id)
        )
    }
    builtins = {
        name: SceneOut(name=name, builtin=True, **scene.model_dump())
        for name, scene in BUILTIN_SCENES.items()
    }
    merged = {**builtins, **stored}
    return [merged[name] for name in sorted(merged)]


def get_scene(*, session: Session, project_id: int, name: str) -> SceneOut:
    """One scene; :class:`NotFound` when it does not exist."""
    row = _stored_scene(session, project_id, name)
    if row is not None:
        return _scene_out(row)
    if name in BUILTIN_SCENES:
        return SceneOut(name=name, builtin=True, **BUILTIN_SCENES[name].model_dump())
    raise NotFound(f"unknown scene {name!r}")


def put_scene(*, session: Session, project_id: int, name: str, scene_in: SceneIn) -> SceneOut:
    """Create or replace a scene. Its strategies must exist; reserved names are refused."""
    if name in RESERVED_SCENES:
        raise InvalidInput(f"{name!r} is reserved and cannot name a scene")
    for strategy in (scene_in.strategy, scene_in.strategy_b):
        if strategy is not None:
            get_strategy(session=session, project_id=project_id, name=strategy)
    row = _stored_scene(session, project_id, name)
    if row is None:
        row = RecommendScene(project_id=project_id, name=name)
        session.add(row)
    row.title = scene_in.title
    row.strategy = scene_in.strategy
    row.strategy_b = scene_in.strategy_b
    row.split_b = scene_in.split_b
    row.item_types = list(scene_in.item_types)
    row.default_n = scene_in.default_n
    session.flush()
    log.info("recommend_scene_saved", project_id=project_id, scene=name)
    return _scene_out(row)


def delete_scene(*, session: Session, project_id: int, name: str) -> None:
    """Delete a stored scene (a built-in one falls back to its default)."""
    row = _stored_scene(session, project_id, name)
    if row is None:
        raise NotFound(f"no stored scene {name!r}")
    session.delete(row)
    session.flush()


def _stored_scene(session: Session, project_id: int, name: str) -> RecommendScene | None:
    return session.scalar(
        select(RecommendScene).where(
            RecommendScene.project_id == project_id, RecommendScene.name == name
        )
    )


def _scene_out(row: RecommendScene) -> SceneOut:
    return SceneOut(
        name=row.name,
        builtin=False,
        title=row.title,
        strategy=row.strategy,
        strategy_b=row.strategy_b,
        split_b=row.split_b,
        item_types=list(row.item_types or []),
        default_n=row.default_n,
    )


def assign_strategy(scene: SceneOut, *, project_id: int, user_id: int) -> str:
    """The strategy serving ``user_id`` in ``scene``: B for a stable ``split_b`` share of users.

    The split is a hash of (project, scene, user), so a customer always sees the same arm.
    """
    if scene.strategy_b is None or scene.split_b <= 0:
        return scene.strategy
    digest = hashlib.sha256(f"{project_id}:{scene.name}:{user_id}".encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return scene.strategy_b if share < scene.split_b else scene.strategy


# -- serving ------------------------------------------------------------------------------------
def resolve_user(*, session: Session, project_id: int, key: str, value: str) -> int:
    """The user id behind identity ``key=value``; :class:`NotFound` when nobody holds it."""
    user_id = identity.find_user_id(session=session, project_id=project_id, key=key, value=value)
    if user_id is None:
        raise NotFound("unknown customer")
    return user_id


def _rule_profile(
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    user_id: int,
    profile: dict[str, Any],
    config: StrategyConfig,
) -> dict[str, Any]:
    """The profile as rule sources see it: plus ``$segment`` (ids of the customer's segments)
    and ``tag.<name>`` (current tag values), read only when a rule source asks for them."""
    wanted = {key for source in config.recall for key in source.when}
    if not any(key == SEGMENT_KEY or key.startswith(TAG_PREFIX) for key in wanted):
        return profile
    enriched = dict(profile)
    if SEGMENT_KEY in wanted:
        enriched[SEGMENT_KEY] = segments.memberships(
            session=session, project_id=project_id, user_id=user_id
        )
    if any(key.startswith(TAG_PREFIX) for key in wanted):
        current = tags.user_tags(warehouse=warehouse, project_id=project_id, user_id=user_id)
        enriched.update({f"{TAG_PREFIX}{name}": value for name, value in current.items()})
    return enriched


def recommend(
    *,
    session: Session,
    warehouse: Warehouse,
    models_root: Path,
    project_id: int,
    scene: str,
    user_id: int,
    now: datetime,
    n: int | None = None,
    principal: Principal | None = None,
    strategy: str | None = None,
) -> RecommendationOut:
    """Top-``n`` items for one customer in ``scene``, each with a reason.

    Never returns an item above the customer's risk tolerance (or any risk-bearing item when
    the tolerance is missing or the assessment has expired, see ``suitability``). The profile
    is read at each call (primary-key lookups in both stores, the stricter ceiling wins).
    ``principal``, when given, must have the customer in its data scope (else
    :class:`NotFound`). ``strategy`` forces one strategy instead of the scene's A/B assignment.
    Raises :class:`NotFound` for an unknown scene or strategy.
    """
    started = time.perf_counter()
    scene_out = get_scene(session=session, project_id=project_id, name=scene)
    chosen = strategy or assign_strategy(scene_out, project_id=project_id, user_id=user_id)
    config = get_strategy(session=session, project_id=project_id, name=chosen).config
    today = suitability.business_date(now)
    profile, max_level = _suitability_profile(session, warehouse, project_id, user_id, today)
    if (
        principal is not None
        and not is_unrestricted(principal)
        and not in_scope(principal, profile)
    ):
        raise NotFound("unknown customer")
    snap = _serving_index(session, warehouse, models_root, project_id)
    overexposed: list[int] = []
    if config.max_impressions is not None:
        overexposed = _overexposed(
            session, project_id, user_id, config.max_impressions, snap.catalog
        )
    picks = engine.recommend(
        catalog=snap.catalog,
        model=snap.model,
        customer=engine.Customer(
            user_id=user_id,
            max_level=max_level,
            profile=_rule_profile(session, warehouse, project_id, user_id, profile, config),
            overexposed=overexposed,
        ),
        strategy=config,
        n=n or scene_out.default_n,
        item_types=scene_out.item_types,
        today=today,
    )
    catalog = snap.catalog
    items = [
        RecommendedItem(
            item_type=catalog.keys[p.position][0],
            item_id=catalog.keys[p.position][1],
            score=p.score,
            reason=p.reason,
            risk_level=suitability.level_name(int(catalog.risk[p.position])),
            source=p.source,
            name=_text(catalog.name[p.position]),
            category=_text(catalog.category[p.position]),
        )
        for p in picks
    ]
    SERVED.labels(scene=scene).observe(time.perf_counter() - started)
    if not items:
        EMPTY.labels(scene=scene).inc()
    return RecommendationOut(
        items=items, strategy=chosen, scene=scene, model_version=snap.model.version
    )


def _suitability_profile(
    session: Session, warehouse: Warehouse, project_id: int, user_id: int, today: date
) -> tuple[dict[str, Any], int]:
    """The customer's profile and suitability ceiling, the stricter of both stores.

    The operational profile is the source of truth and the warehouse row its mirror, updated
    moments later: while they differ, the lower ceiling wins (a lowered tolerance or an
    expired assessment counts at once; a raised one once both agree). A customer known to
    neither store has no assessment.
    """
    mirrored = customer_profile(warehouse, project_id, user_id)
    stored = profiles.get_profile(session=session, project_id=project_id, user_id=user_id)
    ceilings = [
        suitability.tolerance_level(
            found.get("risk_tolerance"), found.get("risk_assessment_expiry"), today=today
        )
        for found in (mirrored or None, stored)
        if found is not None
    ]
    max_level = min(ceilings) if ceilings else suitability.UNASSESSED_MAX
    return {**mirrored, **(stored or {})}, max_level


def customer_profile(warehouse: Warehouse, project_id: int, user_id: int) -> dict[str, Any]:
    """The customer's latest profile row from the warehouse ({} when there is none)."""
    table = table_name(project_id, TableKind.USERS)
    warehouse.ensure_project(project_id)
    rows = warehouse.fetch_dicts(f'SELECT * FROM "{table}" WHERE user_id = ?', [user_id])
    return rows[0] if rows else {}


def refresh_index(
    *, session: Session, warehouse: Warehouse, models_root: Path, project_id: int
) -> int | None:
    """Reload the project's serving index now (catalog and newest model); its model version."""
    idx = index.serving_index(warehouse, models_root, project_id)
    snap = idx.refresh(lambda: _latest_model(session, project_id))
    return snap.model.version


def _serving_index(
    session: Session, warehouse: Warehouse, models_root: Path, project_id: int
) -> index.Snapshot:
    idx = index.serving_index(warehouse, models_root, project_id)
    return idx.snapshot(lambda: _latest_model(session, project_id))


def _latest_model(session: Session, project_id: int) -> index.LatestModel:
    row = session.execute(
        select(RecommendModelVersion.version, RecommendModelVersion.path)
        .where(
            RecommendModelVersion.project_id == project_id,
            RecommendModelVersion.status == "ready",
        )
        .order_by(RecommendModelVersion.version.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), Path(row[1]))


def _overexposed(
    session: Session, project_id: int, user_id: int, limit: int, catalog: engine.Catalog
) -> list[int]:
    rows = session.execute(
        select(RecommendImpression.item_type, RecommendImpression.item_id).where(
            RecommendImpression.project_id == project_id,
            RecommendImpression.user_id == user_id,
            RecommendImpression.shown >= limit,
        )
    ).all()
    found = (catalog.position.get((str(t), str(i))) for t, i in rows)
    return [p for p in found if p is not None]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# -- feedback -----------------------------------------------------------------------------------
def record_feedback(
    *,
    session: Session,
    project_id: int,
    user_id: int,
    item_type: str,
    item_id: str,
    action: str,
    now: datetime,
    count: int = 1,
) -> FeedbackOut:
    """Count an impression (``show``) or a click of an item for a customer (an upsert)."""
    if action not in ("show", "click"):
        raise InvalidInput("action must be 'show' or 'click'")
    shown, clicked = (count, 0) if action == "show" else (0, count)
    values = {
        "project_id": project_id,
        "user_id": user_id,
        "item_type": item_type,
        "item_id": item_id,
        "shown": shown,
        "clicked": clicked,
        "last_at": utc_naive(now),
    }
    table = RecommendImpression.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(RecommendImpression).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["project_id", "user_id", "item_type", "item_id"],
        set_={
            "shown": table.c.shown + shown,
            "clicked": table.c.clicked + clicked,
            "last_at": stmt.excluded.last_at,
        },
    )
    session.execute(stmt)
    row = session.execute(
        select(RecommendImpression.shown, RecommendImpression.clicked).where(
            RecommendImpression.project_id == project_id,
            RecommendImpression.user_id == user_id,
            RecommendImpression.item_type == item_type,
            RecommendImpression.item_id == item_id,
        )
    ).one()
    return FeedbackOut(shown=int(row[0]), clicked=int(row[1]))


def count_slot_events(
    *, session: Session, warehouse: Warehouse, project_id: int, now: datetime, limit: int = 50_000
) -> int:
    """Count ``itemShow`` / ``itemClick`` events that arrived since the last call.

    Slot events reach the warehouse through ingest like any event; this folds them into the
    impression counters. Returns how many events were counted (0: nothing new).
    """
    columns = warehouse.columns(project_id, TableKind.EVENTS)
    if "item_id" not in columns or "item_type" not in columns:
        return 0
    state = session.get(RecommendSyncState, project_id)
    since = state.watermark if state is not None else datetime(1970, 1, 1)
    table = table_name(project_id, TableKind.EVENTS)
    rows = warehouse.fetch(
        f"""SELECT user_id, CAST(item_type AS VARCHAR), CAST(item_id AS VARCHAR),
                   SUM(CASE WHEN event = ? THEN 1 ELSE 0 END),
                   SUM(CASE WHEN event = ? THEN 1 ELSE 0 END),
                   MAX("$receive_time"), COUNT(*)
            FROM "{table}"
            WHERE event IN (?, ?) AND "$receive_time" > ? AND item_id IS NOT NULL
              AND "$receive_time" <= (
                  SELECT max("$receive_time") FROM (
                      SELECT "$receive_time" FROM "{table}"
                      WHERE event IN (?, ?) AND "$receive_time" > ?
                      ORDER BY "$receive_time" LIMIT ?))
            GROUP BY 1, 2, 3""",
        [
            SHOW_EVENT,
            CLICK_EVENT,
            SHOW_EVENT,
            CLICK_EVENT,
            since,
            SHOW_EVENT,
            CLICK_EVENT,
            since,
            limit,
        ],
    )
    if not rows:
        return 0
    total = 0
    watermark = since
    for user_id, item_type, item_id, shows, clicks, last, events in rows:
        for action, count in (("show", int(shows)), ("click", int(clicks))):
            if count:
                record_feedback(
                    session=session,
                    project_id=project_id,
                    user_id=int(user_id),
                    item_type=str(item_type),
                    item_id=str(item_id),
                    action=action,
                    now=now,
                    count=count,
                )
        total += int(events)
        watermark = max(watermark, last)
    if state is None:
        session.add(RecommendSyncState(project_id=project_id, watermark=watermark))
    else:
        state.watermark = watermark
    session.flush()
    log.info("recommend_slot_events_counted", project_id=project_id, events=total)
    return total


# -- training -----------------------------------------------------------------------------------
def get_training_config(*, session: Session, project_id: int) -> TrainingConfig:
    """The project's training settings (defaults until set)."""
    row = session.get(RecommendTrainingSettings, project_id)
    return TrainingConfig() if row is None else TrainingConfig.model_validate(row.config)


def put_training_config(
    *, session: Session, project_id: int, config: TrainingConfig, now: datetime
) -> TrainingConfig:
    """Replace the project's training settings (event weights, decay, model sizes)."""
    row = session.get(RecommendTrainingSettings, project_id)
    if row is None:
        row = RecommendTrainingSettings(project_id=project_id, config={})
        session.add(row)
    row.config = config.model_dump(mode="json")
    row.updated_at = utc_naive(now)
    session.flush()
    return config


def train(
    *,
    session: Session,
    warehouse: Warehouse,
    models_root: Path,
    project_id: int,
    now: datetime,
    config: TrainingConfig | None = None,
) -> ModelVersionOut:
    """Train a new model version from the project's interactions and register it.

    Files are written first (atomically), then the version row is added: a version row always
    names complete files. Old versions beyond :data:`KEEP_VERSIONS` are pruned. The serving
    index of this process switches to the new version at once; other processes within
    ``index.MODEL_CHECK_SECONDS``.
    """
    config = config or get_training_config(session=session, project_id=project_id)
    started = time.perf_counter()
    interactions = training.load_interactions(warehouse, project_id, config, now=now)
    artifacts = training.fit(interactions, config)
    latest = session.scalar(
        select(func.max(RecommendModelVersion.version)).where(
            RecommendModelVersion.project_id == project_id
        )
    )
    version = int(latest or 0) + 1
    folder = models_root / f"p{project_id}" / f"v{version:06d}"
    duration = time.perf_counter() - started
    training.save(artifacts, folder, meta={"version": version, "project_id": project_id})
    row = RecommendModelVersion(
        project_id=project_id,
        version=version,
        status="ready",
        path=str(folder),
        trained_at=utc_naive(now),
        n_users=len(interactions.user_ids),
        n_items=len(interactions.item_keys),
        n_interactions=interactions.n_interactions,
        algorithms=artifacts.algorithms,
        duration_seconds=round(duration, 3),
    )
    session.add(row)
    session.flush()
    _prune(session, project_id)
    log.info(
        "recommend_model_trained",
        project_id=project_id,
        version=version,
        users=row.n_users,
        items=row.n_items,
        interactions=row.n_interactions,
        seconds=round(duration, 2),
    )
    idx = index.serving_index(warehouse, models_root, project_id)
    idx.refresh(lambda: (version, folder))
    return ModelVersionOut.model_validate(row)


def list_models(*, session: Session, project_id: int) -> list[ModelVersionOut]:
    """Model versions of the project, newest first."""
    rows = session.scalars(
        select(RecommendModelVersion)
        .where(RecommendModelVersion.project_id == project_id)
        .order_by(RecommendModelVersion.version.desc())
    )
    return [ModelVersionOut.model_validate(r) for r in rows]


def latest_trained_at(*, session: Session, project_id: int) -> datetime | None:
    """When the project's newest model was trained (naive UTC), None if never."""
    return session.scalar(
        select(func.max(RecommendModelVersion.trained_at)).where(
            RecommendModelVersion.project_id == project_id
        )
    )


def _prune(session: Session, project_id: int) -> None:
    ready = session.scalars(
        select(RecommendModelVersion)
        .where(
            RecommendModelVersion.project_id == project_id,
            RecommendModelVersion.status == "ready",
        )
        .order_by(RecommendModelVersion.version.desc())
    ).all()
    for row in ready[KEEP_VERSIONS:]:
        shutil.rmtree(row.path, ignore_errors=True)
        row.status = "pruned"
    session.flush()
