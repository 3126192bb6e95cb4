"""`flywheel tags …`: run tags now, list them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from flywheel.cli.common import DataDir, cli_runtime

tags_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)

ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]


@tags_app.command("run")
def run(
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag name (repeat).")] = None,
    due: Annotated[
        bool, typer.Option("--due", help="Only the scheduled tags that are due.")
    ] = False,
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Compute tags now (all computed tags of the project unless --tag or --due)."""
    from flywheel.projects import service as projects
    from flywheel.tags import service

    failed = False
    with cli_runtime(data_dir) as runtime:
        with runtime.db.unit_of_work() as session:
            now = runtime.clock()
            if due:
                runs = service.run_due_tags(session=session, warehouse=runtime.warehouse, now=now)
            else:
                project_id = projects.get_by_name(session=session, name=project).id
                chosen = [
                    t
                    for t in service.list_tags(session=session, project_id=project_id)
                    if (tag and t.name in tag) or (not tag and t.kind not in {"imported"})
                ]
                missing = set(tag or []) - {t.name for t in chosen}
                if missing:
                    raise typer.BadParameter(f"unknown tags: {', '.join(sorted(missing))}")
                runs = [
                    service.run_tag(
                        session=session,
                        warehouse=runtime.warehouse,
                        project_id=project_id,
                        tag_id=t.id,
                        now=now,
                        trigger="manual",
                    )
                    for t in chosen
                ]
        for run_out in runs:
            failed = failed or run_out.status != "ok"
            console.print(
                f"tag {run_out.tag_id}: {run_out.status} {run_out.users} users "
                f"in {run_out.seconds:.2f}s {run_out.error}"
            )
        console.print(f"{len(runs)} tag run(s)")
    if failed:
        raise typer.Exit(1)


@tags_app.command("list")
def list_tags(project: ProjectOpt = "default", data_dir: DataDir = None) -> None:
    """List the project's tags."""
    from flywheel.projects import service as projects
    from flywheel.tags import service

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        for tag in service.list_tags(session=session, project_id=project_id):
            typer.echo(f"{tag.id}\t{tag.name}\t{tag.kind}\t{tag.schedule}\t{tag.last_run_day}")
