"""Recommend API: serving, feedback, scenes, strategies, training settings and model versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects import service as projects
from flywheel.recommend import service
from flywheel.recommend.schemas import (
    NAME_PATTERN,
    FeedbackIn,
    FeedbackOut,
    ModelVersionOut,
    RecommendationOut,
    SceneIn,
    SceneOut,
    StrategyIn,
    StrategyOut,
    TrainingConfig,
)

router = APIRouter(prefix="/api/v1/recommend", tags=["recommend"])

ProjectQuery = Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Project name.")]
NamePath = Annotated[str, Path(pattern=NAME_PATTERN)]
Reader = Annotated[Principal, Depends(require("recommend:read"))]
Writer = Annotated[Principal, Depends(require("recommend:write"))]


def _project_id(session: Session, name: str) -> int:
    return projects.get_by_name(session=session, name=name).id


# -- configuration (declared before /{scene} so these paths win) -------------------------------
@router.get("/scenes", response_model=list[SceneOut])
def list_scenes(
    session: SessionDep, _: Reader, project: ProjectQuery = "default"
) -> list[SceneOut]:
    return service.list_scenes(session=session, project_id=_project_id(session, project))


@router.get("/scenes/{name}", response_model=SceneOut)
def get_scene(
    name: NamePath, session: SessionDep, _: Reader, project: ProjectQuery = "default"
) -> SceneOut:
    return service.get_scene(session=session, project_id=_project_id(session, project), name=name)


@router.put("/scenes/{name}", response_model=SceneOut)
def put_scene(
    name: NamePath,
    body: SceneIn,
    session: SessionDep,
    _: Writer,
    project: ProjectQuery = "default",
) -> SceneOut:
    return service.put_scene(
        session=session, project_id=_project_id(session, project), name=name, scene_in=body
    )


@router.delete("/scenes/{name}", status_code=204)
def delete_scene(
    name: NamePath, session: SessionDep, _: Writer, project: ProjectQuery = "default"
) -> Response:
    service.delete_scene(session=session, project_id=_project_id(session, project), name=name)
    return Response(status_code=204)


@router.get("/strategies", response_model=list[StrategyOut])
def list_strategies(
    session: SessionDep, _: Reader, project: ProjectQuery = "default"
) -> list[StrategyOut]:
    return service.list_strategies(session=session, project_id=_project_id(session, project))


@router.get("/strategies/{name}", response_model=StrategyOut)
def get_strategy(
    name: NamePath, session: SessionDep, _: Reader, project: ProjectQuery = "default"
) -> StrategyOut:
    return service.get_strategy(
        session=session, project_id=_project_id(session, project), name=name
    )


@router.put("/strategies/{name}", response_model=StrategyOut)
def put_strategy(
    name: NamePath,
    body: StrategyIn,
    session: SessionDep,
    _: Writer,
    project: ProjectQuery = "default",
) -> StrategyOut:
    return service.put_strategy(
        session=session, project_id=_project_id(session, project), name=name, strategy_in=body
    )


@router.delete("/strategies/{name}", status_code=204)
def delete_strategy(
    name: NamePath, session: SessionDep, _: Writer, project: ProjectQuery = "default"
) -> Response:
    service.delete_strategy(session=session, project_id=_project_id(session, project), name=name)
    return Response(status_code=204)


@router.get("/training", response_model=TrainingConfig)
def get_training(
    session: SessionDep, _: Reader, project: ProjectQuery = "default"
) -> TrainingConfig:
    return service.get_training_config(session=session, project_id=_project_id(session, project))


@router.put("/training", response_model=TrainingConfig)
def put_training(
    body: TrainingConfig,
    session: SessionDep,
    runtime: RuntimeDep,
    _: Writer,
    project: ProjectQuery = "default",
) -> TrainingConfig:
    return service.put_training_config(
        session=session,
        project_id=_project_id(session, project),
        config=body,
        now=runtime.clock(),
    )


@router.get("/models", response_model=list[ModelVersionOut])
def list_models(
    session: SessionDep, _: Reader, project: ProjectQuery = "default"
) -> list[ModelVersionOut]:
    return service.list_models(session=session, project_id=_project_id(session, project))


@router.post("/models", response_model=ModelVersionOut, status_code=201)
def train_model(
    session: SessionDep, runtime: RuntimeDep, _: Writer, project: ProjectQuery = "default"
) -> ModelVersionOut:
    """Train a new model version now (the worker also retrains on a schedule)."""
    return service.train(
        session=session,
        warehouse=runtime.warehouse,
        models_root=service.models_dir(runtime.settings.data_dir),
        project_id=_project_id(session, project),
        now=runtime.clock(),
    )


# -- serving -------------------------------------------------------------------------------------
@router.get("/{scene}", response_model=RecommendationOut)
def recommend(
    scene: NamePath,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Reader,
    user: Annotated[str, Query(min_length=1, max_length=255, description="Identity value.")],
    key: Annotated[str, Query(min_length=1, max_length=100)] = service.DEFAULT_KEY,
    n: Annotated[int | None, Query(ge=1, le=100)] = None,
    project: ProjectQuery = "default",
) -> RecommendationOut:
    """Recommendations for the customer holding identity ``key=user`` (suitability-safe)."""
    project_id = _project_id(session, project)
    user_id = service.resolve_user(session=session, project_id=project_id, key=key, value=user)
    return service.recommend(
        session=session,
        warehouse=runtime.warehouse,
        models_root=service.models_dir(runtime.settings.data_dir),
        project_id=project_id,
        scene=scene,
        user_id=user_id,
        n=n,
        now=runtime.clock(),
        principal=principal,
    )


@router.post("/{scene}/feedback", response_model=FeedbackOut)
def feedback(
    scene: NamePath,
    body: FeedbackIn,
    session: SessionDep,
    runtime: RuntimeDep,
    _: Reader,
    project: ProjectQuery = "default",
) -> FeedbackOut:
    """Count an impression or click (the same as an itemShow / itemClick slot event)."""
    project_id = _project_id(session, project)
    service.get_scene(session=session, project_id=project_id, name=scene)
    user_id = service.resolve_user(
        session=session, project_id=project_id, key=body.key, value=body.user
    )
    return service.record_feedback(
        session=session,
        project_id=project_id,
        user_id=user_id,
        item_type=body.item_type,
        item_id=body.item_id,
        action=body.action,
        now=runtime.clock(),
    )
