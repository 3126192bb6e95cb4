"""Recommend tables: scenes, strategies, training settings, model versions, impressions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from flywheel.store import Base, utcnow_column


class RecommendStrategy(Base):
    """A named pipeline (``StrategyConfig`` as JSON) of one project."""

    __tablename__ = "recommend_strategies"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = utcnow_column()


class RecommendScene(Base):
    """A slot served by a strategy, optionally split A/B with a second one."""

    __tablename__ = "recommend_scenes"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    strategy: Mapped[str] = mapped_column(String(64), nullable=False)
    strategy_b: Mapped[str | None] = mapped_column(String(64), nullable=True)
    split_b: Mapped[float] = mapped_column(Float, nullable=False, default=0.5)
    item_types: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    default_n: Mapped[int] = mapped_column(Integer, nullable=False, default=10)
    updated_at: Mapped[datetime] = utcnow_column()


class RecommendTrainingSettings(Base):
    """The project's ``TrainingConfig`` (event weights, decay, model sizes) as JSON."""

    __tablename__ = "recommend_training_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[datetime] = utcnow_column()


class RecommendModelVersion(Base):
    """One trained model: its files live in ``<data_dir>/models/p{project}/v{version}``."""

    __tablename__ = "recommend_model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    #: ``ready`` (servable) or ``pruned`` (files removed).
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ready")
    path: Mapped[str] = mapped_column(String(500), nullable=False)
    trained_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
    n_users: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_items: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_interactions: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    algorithms: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    duration_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)


class RecommendImpression(Base):
    """How often an item was shown to / clicked by a customer (the "shown N times" filter)."""

    __tablename__ = "recommend_impressions"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    shown: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    clicked: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False)


class RecommendSyncState(Base):
    """Watermark of the loop that counts itemShow/itemClick events from the warehouse."""

    __tablename__ = "recommend_sync_state"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    #: Last ``"$receive_time"`` (naive UTC) of the events already counted.
    watermark: Mapped[datetime] = mapped_column(DateTime(), nullable=False)
