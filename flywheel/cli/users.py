"""`flywheel users create-admin|create|list`: console users from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from flywheel.auth import service
from flywheel.config import Settings
from flywheel.core.errors import FlywheelError

users_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)
out = Console()

DataDir = Annotated[Path | None, typer.Option("--data-dir")]
CLI_ACTOR = "cli"


@contextmanager
def _session(data_dir: Path | None) -> Iterator[Session]:
    """A unit of work on the operational store, migrated first (no warehouse needed)."""
    from flywheel.migrations import upgrade
    from flywheel.store import create_database

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = create_database(settings.resolved_database_url)
    try:
        upgrade(db.engine)
        with db.unit_of_work() as session:
            yield session
    except FlywheelError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    finally:
        db.dispose()


@users_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="Login name.")],
    password: Annotated[str, typer.Option(help="Password (≥10 chars, letters and digits).")],
    data_dir: DataDir = None,
) -> None:
    """Create a console user with the admin role."""
    create(username=username, password=password, role="admin", data_dir=data_dir)


@users_app.command("create")
def create(
    username: Annotated[str, typer.Option(help="Login name.")],
    password: Annotated[str, typer.Option(help="Password (≥10 chars, letters and digits).")],
    role: Annotated[
        str, typer.Option(help="admin, marketer, analyst, compliance, advisor, auditor or custom.")
    ],
    branch: Annotated[list[str] | None, typer.Option(help="Limit to this branch (repeat).")] = None,
    advisor_id: Annotated[str | None, typer.Option(help="Advisor id, for role advisor.")] = None,
    email: Annotated[str | None, typer.Option(help="Email (matches OIDC identities).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a console user (audited as done by ``cli``)."""
    with _session(data_dir) as session:
        user_id = service.create_user(
            session=session,
            username=username,
            password=password,
            role=role,
            branch_scope=list(branch) if branch else None,
            advisor_id=advisor_id,
            email=email,
            actor=CLI_ACTOR,
        )
    console.print(f"created user {username!r} (id {user_id}, role {role})")


@users_app.command("list")
def list_users(data_dir: DataDir = None) -> None:
    """List console users."""
    with _session(data_dir) as session:
        users = service.list_users(session=session)
    table = Table("id", "username", "role", "branches", "advisor", "active")
    for user in users:
        table.add_row(
            str(user.id),
            user.username,
            user.role,
            ",".join(user.branch_scope) if user.branch_scope is not None else "*",
            user.advisor_id or "",
            "yes" if user.is_active else "no",
        )
    out.print(table)
