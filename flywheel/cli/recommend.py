"""`flywheel recommend …`: train, evaluate, show, scenes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from flywheel.recommend.schemas import EvaluationRow

recommend_app = typer.Typer(no_args_is_help=True)
# wide enough for the evaluation table when piped (Rich assumes 80 columns off a terminal)
out = Console(width=None if sys.stdout.isatty() else 140)

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default $FLYWHEEL_DATA_DIR).")
]
ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"


@recommend_app.command()
def train(project: ProjectOpt = "default", data_dir: DataDirOpt = None) -> None:
    """Train a new model version of a project now."""
    from flywheel.bootstrap import open_runtime
    from flywheel.cli import _settings
    from flywheel.projects import service as projects
    from flywheel.recommend import service

    settings = _settings(data_dir)
    runtime = open_runtime(settings)
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name=project).id
            version = service.train(
                session=session,
                warehouse=runtime.warehouse,
                models_root=service.models_dir(settings.data_dir),
                project_id=project_id,
                now=runtime.clock(),
            )
    finally:
        runtime.close()
    out.print(
        f"model v{version.version}: {version.n_users} customers × {version.n_items} items, "
        f"{version.n_interactions} interactions, {', '.join(version.algorithms)} "
        f"in {version.duration_seconds:.1f} s"
    )


@recommend_app.command()
def evaluate(
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="movielens-100k, ml-latest-small, project or all (repeatable).",
        ),
    ] = None,
    data_root: Annotated[
        Path, typer.Option("--data-root", help="Folder of the MovieLens datasets.")
    ] = DEFAULT_DATA_ROOT,
    project: ProjectOpt = "default",
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Cut-off of the metrics.")] = 10,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Also print a Markdown table (for docs).")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Offline evaluation (time-based split): precision, recall, NDCG@k and coverage."""
    from flywheel.cli import _settings
    from flywheel.recommend import evaluation

    names = dataset or ["movielens-100k"]
    if "all" in names:
        names = list(evaluation.DATASETS)
    rows: list[EvaluationRow] = []
    for name in names:
        if name == "project":
            rows.extend(_evaluate_project(project, k, data_dir))
        else:
            _settings(data_dir)
            log = evaluation.load_dataset(name, data_root=data_root)
            rows.extend(evaluation.evaluate(log, dataset=name, k=k))
    table = Table(title=f"Offline evaluation @{k} (per-user last 20 % by time held out)")
    for column in ("dataset", "strategy", "users", f"precision@{k}", f"recall@{k}"):
        table.add_column(column)
    table.add_column(f"NDCG@{k}")
    table.add_column("coverage")
    table.add_column("seconds (with training)")
    for row in rows:
        table.add_row(
            row.dataset,
            row.strategy,
            str(row.users),
            f"{row.precision:.4f}",
            f"{row.recall:.4f}",
            f"{row.ndcg:.4f}",
            f"{row.coverage:.4f}",
            f"{row.seconds:.1f}",
        )
    out.print(table)
    if markdown:
        out.print(
            f"| dataset | strategy | users | precision@{k} | recall@{k} | NDCG@{k} | coverage |"
        )
        out.print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for row in rows:
            out.print(
                f"| {row.dataset} | {row.strategy} | {row.users} | {row.precision:.4f} | "
                f"{row.recall:.4f} | {row.ndcg:.4f} | {row.coverage:.4f} |",
                markup=False,
            )


def _evaluate_project(project: str, k: int, data_dir: Path | None) -> list[EvaluationRow]:
    from flywheel.bootstrap import open_runtime
    from flywheel.cli import _settings
    from flywheel.projects import service as projects
    from flywheel.recommend import evaluation, service

    runtime = open_runtime(_settings(data_dir))
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name=project).id
            config = service.get_training_config(session=session, project_id=project_id)
        log = evaluation.load_project(runtime.warehouse, project_id, config)
        return evaluation.evaluate(
            log,
            dataset=f"project:{project}",
            k=k,
            config=config.model_copy(update={"half_life_days": None}),
        )
    finally:
        runtime.close()


@recommend_app.command()
def show(
    user: Annotated[str, typer.Argument(help="Identity value of the customer.")],
    key: Annotated[str, typer.Option("--key", help="Identity key.")] = "$identity_login_id",
    scene: Annotated[str, typer.Option("--scene")] = "home",
    n: Annotated[int, typer.Option("--n", min=1, max=100)] = 10,
    project: ProjectOpt = "default",
    data_dir: DataDirOpt = None,
) -> None:
    """Print what a customer would be recommended in a scene."""
    from flywheel.bootstrap import open_runtime
    from flywheel.cli import _settings
    from flywheel.projects import service as projects
    from flywheel.recommend import service

    settings = _settings(data_dir)
    runtime = open_runtime(settings)
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name=project).id
            user_id = service.resolve_user(
                session=session, project_id=project_id, key=key, value=user
            )
            answer = service.recommend(
                session=session,
                warehouse=runtime.warehouse,
                models_root=service.models_dir(settings.data_dir),
                project_id=project_id,
                scene=scene,
                user_id=user_id,
                n=n,
                now=runtime.clock(),
            )
    finally:
        runtime.close()
    table = Table(title=f"{scene} · strategy {answer.strategy} · model v{answer.model_version}")
    for column in ("#", "item", "name", "risk", "score", "reason"):
        table.add_column(column)
    for i, item in enumerate(answer.items, start=1):
        table.add_row(
            str(i),
            f"{item.item_type}:{item.item_id}",
            item.name or "",
            item.risk_level or "-",
            f"{item.score:.3f}",
            item.reason,
        )
    out.print(table)
