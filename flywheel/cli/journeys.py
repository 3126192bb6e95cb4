"""`flywheel journeys …`: list, validate, create/import, publish, pause, resume, stop, export,
stats, and run the engine once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flywheel.cli.common import DataDir, cli_runtime

journeys_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)
out = Console(soft_wrap=True)

ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]
JourneyArg = Annotated[int, typer.Argument(help="Journey id.")]
CLI_ACTOR = "cli:journeys"


def _read(file: str) -> dict[str, Any]:
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{file} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{file} must hold one journey object")
    return data


@journeys_app.command("list")
def list_command(project: ProjectOpt = "default", data_dir: DataDir = None) -> None:
    """Journeys of a project with status, live version and customers in flight."""
    from flywheel.journeys import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        table = Table("id", "name", "status", "version", "in flight")
        for j in service.list_journeys(session=session, project_id=project_id):
            table.add_row(str(j.id), j.name, j.status, str(j.live_version or "-"), str(j.in_flight))
        out.print(table)


@journeys_app.command("validate")
def validate_command(
    file: Annotated[str, typer.Argument(help="Journey JSON file, or - for stdin.")],
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Print the problems of a definition as JSON; exit 1 when it cannot be published."""
    from flywheel.journeys import service
    from flywheel.journeys.validation import blocking
    from flywheel.projects import service as projects

    definition = service.parse_definition(_read(file))
    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        problems = service.check_definition(
            session=session, project_id=project_id, definition=definition, now=runtime.clock()
        )
    out.print_json(json.dumps([p.model_dump(exclude_none=True) for p in problems]))
    if blocking(problems):
        raise typer.Exit(1)


@journeys_app.command("import")
def import_command(
    file: Annotated[str, typer.Argument(help="Journey JSON file, or - for stdin.")],
    publish: Annotated[bool, typer.Option("--publish", help="Publish it at once.")] = False,
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Create a journey (draft) from an exported definition; print its id."""
    from flywheel.journeys import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime:
        definition = service.parse_definition(_read(file))
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name=project).id
            created = service.create_journey(
                session=session,
                project_id=project_id,
                definition=definition,
                principal=None,
                actor=CLI_ACTOR,
                now=runtime.clock(),
            )
            if publish:
                service.publish(
                    session=session,
                    project_id=project_id,
                    journey_id=created.id,
                    actor=CLI_ACTOR,
                    now=runtime.clock(),
                )
        typer.echo(created.id)


@journeys_app.command("export")
def export_command(
    journey: JourneyArg, project: ProjectOpt = "default", data_dir: DataDir = None
) -> None:
    """Print a journey's draft definition as JSON."""
    from flywheel.journeys import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        found = service.get_journey(session=session, project_id=project_id, journey_id=journey)
    typer.echo(json.dumps(found.definition, ensure_ascii=False, indent=2))


def _lifecycle(action: str, journey: int, project: str, data_dir: Path | None) -> None:
    from flywheel.journeys import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        step = {
            "publish": service.publish,
            "pause": service.pause,
            "resume": service.resume,
            "stop": service.stop,
        }[action]
        result = step(
            session=session,
            project_id=project_id,
            journey_id=journey,
            actor=CLI_ACTOR,
            now=runtime.clock(),
        )
    typer.echo(f"journey {result.id}: {result.status}")


@journeys_app.command("publish")
def publish_command(
    journey: JourneyArg, project: ProjectOpt = "default", data_dir: DataDir = None
) -> None:
    """Publish the draft as a new version (customers in flight drain on the old one)."""
    _lifecycle("publish", journey, project, data_dir)


@journeys_app.command("pause")
def pause_command(
    journey: JourneyArg, project: ProjectOpt = "default", data_dir: DataDir = None
) -> None:
    """Hold new entries and steps."""
    _lifecycle("pause", journey, project, data_dir)


@journeys_app.command("resume")
def resume_command(
    journey: JourneyArg, project: ProjectOpt = "default", data_dir: DataDir = None
) -> None:
    """Resume a paused journey."""
    _lifecycle("resume", journey, project, data_dir)


@journeys_app.command("stop")
def stop_command(
    journey: JourneyArg, project: ProjectOpt = "default", data_dir: DataDir = None
) -> None:
    """Stop: customers in flight exit, unsent messages are withdrawn."""
    _lifecycle("stop", journey, project, data_dir)


@journeys_app.command("stats")
def stats_command(
    journey: JourneyArg, project: ProjectOpt = "default", data_dir: DataDir = None
) -> None:
    """Per-node numbers of the live version as JSON."""
    from flywheel.journeys import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        result = service.stats(session=session, project_id=project_id, journey_id=journey)
    out.print_json(result.model_dump_json())


@journeys_app.command("run")
def run_command(
    rounds: Annotated[int, typer.Option(help="Engine rounds to run (until idle).")] = 100,
    data_dir: DataDir = None,
) -> None:
    """Run the journey engine until it is idle (or ``rounds`` rounds)."""
    from flywheel.journeys.engine import Engine

    with cli_runtime(data_dir) as runtime:
        engine = Engine(runtime)
        total = 0
        for _ in range(rounds):
            moved = engine.run_once()
            total += moved
            if moved == 0:
                break
    typer.echo(f"{total} customers moved")
