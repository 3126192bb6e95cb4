"""`flywheel audit verify|show`: check the hash chain, read the trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from sqlalchemy.orm import Session

from flywheel.config import Settings

audit_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)
out = Console()

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default ./flywheel-data).")
]


@contextmanager
def _session(data_dir: Path | None, database_url: str | None) -> Iterator[Session]:
    """The operational store only (works while `flywheel serve` holds the warehouse)."""
    from flywheel.store import create_database

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    db = create_database(database_url or settings.resolved_database_url)
    try:
        with db.unit_of_work() as session:
            yield session
    finally:
        db.dispose()


@audit_app.command("verify")
def verify(
    data_dir: DataDir = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default $FLYWHEEL_DATABASE_URL.")
    ] = None,
) -> None:
    """Walk the hash chain; exit 1 naming the first edited or deleted row."""
    from flywheel.audit import service

    with _session(data_dir, database_url) as session:
        report = service.verify(session=session)
    if report.ok:
        out.print(f"audit log intact: {report.checked} rows verified")
        return
    console.print(f"[red]audit log TAMPERED[/red] at row {report.bad_seq}: {report.problem}")
    raise typer.Exit(1)


@audit_app.command("show")
def show(
    limit: Annotated[int, typer.Option(help="How many of the newest entries.")] = 20,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. auth.login.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor, e.g. user:alice.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print the newest audit entries as JSON lines."""
    from flywheel.audit import service
    from flywheel.audit.schemas import AuditFilter

    with _session(data_dir, None) as session:
        page = service.search(
            session=session, filters=AuditFilter(limit=limit, action=action, actor=actor)
        )
    for entry in page.entries:
        out.print(orjson.dumps(entry.model_dump(mode="json")).decode(), soft_wrap=True)
