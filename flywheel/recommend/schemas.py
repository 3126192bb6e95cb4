"""Recommendation inputs and outputs: strategies, scenes, training settings, answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
#: Path segments of the recommend API that cannot be scene names.
RESERVED_SCENES = frozenset({"scenes", "strategies", "models", "training", "feedback"})

SourceKind = Literal["als", "bpr", "item_to_item", "popularity", "new_items", "pin", "rule"]
FilterValue = str | float | bool
EventWeight = Annotated[float, Field(ge=-1000, le=1000)]


class ItemRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_type: str = Field(min_length=1, max_length=64)
    item_id: str = Field(min_length=1, max_length=255)


class RecallSource(BaseModel):
    """One recall source of a strategy and its weight in the mix.

    * ``als`` / ``bpr``: collaborative filtering (``implicit``), personal;
    * ``item_to_item``: items similar to what the customer interacted with;
    * ``popularity``: hot ranking (热门) over the training's ``hot_days`` window;
    * ``new_items``: items whose ``launch_date`` is within ``days``;
    * ``pin``: the operator's ``items``, in that order;
    * ``rule``: items whose properties match ``match`` (property → accepted values), only for
      customers whose profile matches ``when`` (property → accepted values); ``when`` may also
      name ``$segment`` (accepted segment ids: the customer is in one of them) and
      ``tag.<name>`` (accepted values of that tag).
    """

    model_config = ConfigDict(extra="forbid")

    kind: SourceKind
    weight: float = Field(default=1.0, ge=0, le=1000)
    size: int = Field(default=200, ge=1, le=5000)
    items: list[ItemRef] = Field(default_factory=list, max_length=200)
    match: dict[str, list[FilterValue]] = Field(default_factory=dict)
    when: dict[str, list[FilterValue]] = Field(default_factory=dict)
    days: int = Field(default=30, ge=1, le=3650)
    reason: str | None = Field(default=None, max_length=200)


class StrategyConfig(BaseModel):
    """A pipeline: recall sources → filters → ranking and mixing → top-N.

    The suitability filter is not a setting: it always applies (see ``suitability``).
    Unknown keys are refused, so a config cannot even *say* it disables it.
    """

    model_config = ConfigDict(extra="forbid")

    recall: list[RecallSource] = Field(min_length=1, max_length=20)
    exclude_held: bool = True
    exclude_interacted: bool = False
    exclude_off_sale: bool = True
    #: Drop items already shown this many times to the customer (None: never).
    max_impressions: int | None = Field(default=5, ge=1, le=1_000_000)
    #: At most this many items of one category in the answer while others are available.
    max_per_category: int | None = Field(default=3, ge=1, le=1000)
    #: When no personal source knows the customer (cold start), mix in popularity.
    fallback_popularity: bool = True


class StrategyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=500)
    config: StrategyConfig


class StrategyOut(BaseModel):
    name: str
    description: str
    config: StrategyConfig
    builtin: bool


class SceneIn(BaseModel):
    """A slot (home banner, fund list…) served by a strategy, optionally A/B against another."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="", max_length=200)
    strategy: str = Field(pattern=NAME_PATTERN)
    strategy_b: str | None = Field(default=None, pattern=NAME_PATTERN)
    #: Share of customers (deterministic hash of the user id) served by ``strategy_b``.
    split_b: float = Field(default=0.5, ge=0, le=1)
    #: Item types this slot shows (empty: every type).
    item_types: list[str] = Field(default_factory=list, max_length=20)
    default_n: int = Field(default=10, ge=1, le=100)


class SceneOut(SceneIn):
    name: str
    builtin: bool


class TrainingConfig(BaseModel):
    """How interactions become a model. Events carrying ``item_id`` and ``item_type``."""

    model_config = ConfigDict(extra="forbid")

    event_weights: dict[str, EventWeight] = Field(
        max_length=200,
        default_factory=lambda: {
            "ViewFundDetail": 1.0,
            "itemClick": 1.0,
            "BuyFund": 5.0,
            "CreateAutoInvestPlan": 5.0,
            "TradeStock": 2.0,
        },
    )
    #: Interactions lose half their weight every this many days (None: no decay).
    half_life_days: float | None = Field(default=90.0, gt=0, le=36500)
    lookback_days: int = Field(default=365, ge=1, le=36500)
    #: Window of the popularity (hot) ranking.
    hot_days: int = Field(default=30, ge=1, le=3650)
    #: Events that start (+) or end (−) a holding, for the "already held" filter.
    hold_start_events: list[str] = Field(
        default_factory=lambda: ["BuyFund", "CreateAutoInvestPlan"]
    )
    hold_end_events: list[str] = Field(
        default_factory=lambda: ["RedeemFund", "TerminateAutoInvestPlan"]
    )
    #: None: chosen from the data (see ``training.auto_factors``): sparse histories support
    #: few factors (4 on the demo brokerage), rich ones more (32 on MovieLens).
    als_factors: int | None = Field(default=None, ge=2, le=512)
    als_iterations: int = Field(default=15, ge=1, le=200)
    als_regularization: float = Field(default=0.05, ge=0, le=1e6)
    bpr_factors: int = Field(default=32, ge=2, le=512)
    bpr_iterations: int = Field(default=30, ge=1, le=1000)
    bpr_learning_rate: float = Field(default=0.02, gt=0, le=10)
    bpr_regularization: float = Field(default=0.01, ge=0, le=1e6)
    #: Sample budget of BPR: epochs are cut so that epochs × interactions stays below it
    #: (SGD cost grows with the data; big data needs fewer epochs).
    bpr_max_samples: int = Field(default=100_000_000, ge=1, le=10**12)
    neighbours: int = Field(default=50, ge=1, le=1000)
    train_bpr: bool = True
    train_item_to_item: bool = True
    #: The worker retrains a project when its newest model is older than this.
    retrain_hours: float = Field(default=6.0, gt=0, le=24 * 366)


class RecommendedItem(BaseModel):
    item_id: str
    item_type: str
    score: float
    reason: str
    risk_level: str | None
    source: str
    name: str | None = None
    category: str | None = None


class RecommendationOut(BaseModel):
    items: list[RecommendedItem]
    strategy: str
    scene: str
    model_version: int | None = None


class FeedbackIn(BaseModel):
    """An impression (``show``) or click of a recommended item, for one customer."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=255)
    key: str = Field(default="$identity_login_id", min_length=1, max_length=100)
    item_type: str = Field(min_length=1, max_length=64)
    item_id: str = Field(min_length=1, max_length=255)
    action: Literal["show", "click"]
    strategy: str | None = Field(default=None, max_length=64)


class FeedbackOut(BaseModel):
    shown: int
    clicked: int


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    trained_at: datetime
    status: str
    n_users: int
    n_items: int
    n_interactions: int
    algorithms: list[str]
    duration_seconds: float


class EvaluationRow(BaseModel):
    dataset: str
    strategy: str
    users: int
    precision: float
    recall: float
    ndcg: float
    coverage: float
    seconds: float
