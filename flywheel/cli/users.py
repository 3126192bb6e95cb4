from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flywheel.auth import service
from flywheel.config import Settings
from flywheel.core.errors import FlywheelError

users_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


@users_app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Option(help="Login name.")],
    password: Annotated[str, typer.Option(help="Password (≥10 chars, letters and digits).")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir")] = None,
) -> None:
    """Create a console user with the admin role."""
    create(username=username, password=password, role="admin", data_dir=data_dir)


@users_app.command("create")
def create(
    username: Annotated[str, typer.Option(help="Login name.")],
    password: Annotated[str, typer.Option(help="Password (≥10 chars, letters and digits).")],
    role: Annotated[
        str, typer.Option(help="admin, marketer, analyst, compliance, advisor, auditor.")
    ],
    branch: Annotated[list[str] | None, typer.Option(help="Limit to this branch (repeat).")] = None,
    advisor_id: Annotated[str | None, typer.Option(help="Advisor id, for role advisor.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir")] = None,
) -> None:
    """Create a console user."""
    from flywheel.bootstrap import open_runtime

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    runtime = open_runtime(settings)
    try:
        with runtime.db.unit_of_work() as session:
            user_id = service.create_user(
                session=session,
                username=username,
                password=password,
                role=role,
                branch_scope=list(branch) if branch else None,
                advisor_id=advisor_id,
            )
    except FlywheelError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    finally:
        runtime.close()
    console.print(f"created user {username!r} (id {user_id}, role {role})")
