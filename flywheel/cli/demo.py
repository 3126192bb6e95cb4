"""`flywheel demo`: generate the demo brokerage and load it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flywheel.config import Settings
from flywheel.core.errors import FlywheelError

console = Console(stderr=True)


def demo_command(
    customers: Annotated[
        int, typer.Option(min=100, max=1_000_000, help="Number of customers.")
    ] = 10_000,
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of events, ending now.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    project: Annotated[str, typer.Option(help="Project to load into (must have no events).")] = (
        "default"
    ),
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data folder.")] = None,
) -> None:
    """Generate the demo brokerage 飞轮证券 (customers of 20 branches and their advisors,
    funds and other products, 90 days of app and web events) and load it through the ingest
    machinery."""
    from flywheel.bootstrap import open_runtime
    from flywheel.demo.service import load_with_progress
    from flywheel.logging import configure_logging
    from flywheel.projects import service as projects

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        runtime = open_runtime(settings)
    except FlywheelError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name=project).id
        load_with_progress(
            runtime,
            project_id=project_id,
            customers=customers,
            days=days,
            seed=seed,
            console=console,
        )
    except FlywheelError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    finally:
        runtime.close()
