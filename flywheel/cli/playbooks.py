"""`flywheel playbooks list | show | apply`: the playbook library from the command line."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flywheel.cli.common import DataDir, cli_runtime, fail
from flywheel.core.errors import Forbidden, InvalidInput

playbooks_app = typer.Typer(no_args_is_help=True)
out = Console(soft_wrap=True)

ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]
APPLY_PERMISSIONS = ("journeys:write", "content:write")


@playbooks_app.command("list")
def list_playbooks() -> None:
    """The built-in playbooks and what each creates."""
    from flywheel.playbooks import service

    table = Table("name", "title", "creates")
    for playbook in service.list_playbooks():
        creates = ", ".join(f"{n} {what}" for what, n in playbook.creates.items())
        table.add_row(playbook.name, f"{playbook.title_zh}\n{playbook.title_en}", creates)
    out.print(table)


@playbooks_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Playbook name.")]) -> None:
    """A playbook's parameters (JSON schema with defaults)."""
    from flywheel.core.errors import FlywheelError
    from flywheel.playbooks import service

    try:
        out.print_json(data=service.get_playbook(name=name).model_dump(mode="json"))
    except FlywheelError as exc:
        fail(exc)


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that reads as JSON (number, true, list …) is taken as such."""
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {pair!r}: expected key=value")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        parameters[key.strip()] = value
    return parameters


@playbooks_app.command("apply")
def apply(
    name: Annotated[str, typer.Argument(help="Playbook name (see `flywheel playbooks list`).")],
    as_user: Annotated[
        str,
        typer.Option(
            "--as",
            help="Console user applying it (author of the drafts; needs journeys:write and "
            "content:write). Reviewing and publishing stay with other users.",
        ),
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Parameter as key=value (repeatable).")
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show what would be created; create nothing.")
    ] = False,
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Create the playbook's tags, segment, content and journey, all as drafts."""
    from flywheel.auth import service as auth
    from flywheel.auth.schemas import Principal
    from flywheel.playbooks import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        parameters = parse_params(param or [])
        user = next((u for u in auth.list_users(session=session) if u.username == as_user), None)
        if user is None or not user.is_active:
            raise InvalidInput(f"--as {as_user!r}: no active console user of that name")
        principal = Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            permissions=auth.role_permissions(session=session, role=user.role) or frozenset(),
            branch_scope=tuple(user.branch_scope) if user.branch_scope is not None else None,
            advisor_id=user.advisor_id,
        )
        missing = [p for p in APPLY_PERMISSIONS if not principal.can(p)]
        if missing:
            raise Forbidden(f"user {as_user!r} lacks {', '.join(missing)}")
        project_id = projects.get_by_name(session=session, name=project).id
        common: dict[str, Any] = {
            "session": session,
            "warehouse": runtime.warehouse,
            "project_id": project_id,
            "name": name,
            "parameters": parameters,
            "principal": principal,
            "now": runtime.clock(),
        }
        result = service.preview(**common) if preview else service.apply(**common)
        out.print_json(data=result.model_dump(mode="json"))
