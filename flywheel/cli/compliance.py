"""`flywheel compliance …`: settings, opt-outs and black/white lists from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from flywheel.cli.common import DataDir, cli_runtime

compliance_app = typer.Typer(no_args_is_help=True)
out = Console(soft_wrap=True)
ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]
ACTOR = "cli"


@compliance_app.command("settings")
def show_settings(
    project: ProjectOpt = "default",
    set_file: Annotated[
        Path | None, typer.Option("--set", help="Replace the settings with this JSON file.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Print the project's compliance settings (or replace them with ``--set file.json``)."""
    from flywheel.compliance import service
    from flywheel.compliance.schemas import ComplianceSettingsIn
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        if set_file is not None:
            values = ComplianceSettingsIn.model_validate_json(set_file.read_text())
            found = service.put_settings(
                session=session,
                project_id=project_id,
                settings_in=values,
                actor=ACTOR,
                now=runtime.clock(),
            )
        else:
            found = service.get_settings(session=session, project_id=project_id)
        out.print(json.dumps(found.model_dump(mode="json"), ensure_ascii=False, indent=2))


@compliance_app.command("opt-out")
def opt_out(
    user_id: Annotated[int, typer.Argument(help="Customer user id.")],
    channel: Annotated[str, typer.Option("--channel")] = "*",
    purpose: Annotated[str, typer.Option("--purpose")] = "marketing",
    source: Annotated[str, typer.Option("--source")] = "cli",
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Record a customer's opt-out (audited)."""
    from flywheel.compliance import service
    from flywheel.compliance.schemas import OptOutIn
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        done = service.opt_out(
            session=session,
            project_id=project_id,
            user_id=user_id,
            opt_out_in=OptOutIn.model_validate(
                {"channel": channel, "purpose": purpose, "source": source}
            ),
            actor=ACTOR,
            now=runtime.clock(),
        )
        out.print(json.dumps(done.model_dump(mode="json"), ensure_ascii=False))


@compliance_app.command("list-add")
def list_add(
    kind: Annotated[Literal["black", "white"], typer.Argument()],
    value: Annotated[str, typer.Argument(help="User id or identity value.")],
    key: Annotated[str, typer.Option("--key", help="user_id or an identity key.")] = "user_id",
    channel: Annotated[str, typer.Option("--channel")] = "*",
    note: Annotated[str, typer.Option("--note")] = "",
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Add a black- or whitelist entry (audited)."""
    from flywheel.compliance import service
    from flywheel.compliance.schemas import ListEntryIn
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        entry = service.add_entry(
            session=session,
            project_id=project_id,
            entry_in=ListEntryIn(kind=kind, key=key, value=value, channel=channel, note=note),
            actor=ACTOR,
            now=runtime.clock(),
        )
        out.print(json.dumps(entry.model_dump(mode="json"), ensure_ascii=False))


@compliance_app.command("lists")
def lists(project: ProjectOpt = "default", data_dir: DataDir = None) -> None:
    """Print the black and white list entries as JSON lines."""
    from flywheel.compliance import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        for entry in service.list_entries(session=session, project_id=project_id):
            out.print(json.dumps(entry.model_dump(mode="json"), ensure_ascii=False))
