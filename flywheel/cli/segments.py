"""`flywheel segments …`: count a rule or a segment, refresh segments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flywheel.cli.common import DataDir, cli_runtime

segments_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)

ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]


def _load_rule(rule: str | None, rule_file: Path | None) -> dict[str, Any] | None:
    if rule is not None and rule_file is not None:
        raise typer.BadParameter("give --rule or --rule-file, not both")
    text = rule if rule is not None else (rule_file.read_text() if rule_file else None)
    if text is None:
        return None
    try:
        loaded: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"the rule is not JSON: {exc}") from exc
    return loaded


@segments_app.command("count")
def count(
    rule: Annotated[str | None, typer.Option("--rule", help="Rule DSL as JSON.")] = None,
    rule_file: Annotated[
        Path | None, typer.Option("--rule-file", help="File with the rule.")
    ] = None,
    segment: Annotated[int | None, typer.Option("--segment", help="Segment id.")] = None,
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Print how many customers a rule (or a segment, recomputed now) selects."""
    from flywheel.projects import service as projects
    from flywheel.segments import service

    parsed = _load_rule(rule, rule_file)
    if (parsed is None) == (segment is None):
        raise typer.BadParameter("give a rule (--rule/--rule-file) or --segment")
    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        if parsed is not None:
            result = service.preview(
                session=session,
                warehouse=runtime.warehouse,
                project_id=project_id,
                rule=parsed,
                now=runtime.clock(),
                sample=0,
            )
            for warning in result.warnings:
                console.print(f"[yellow]warning:[/yellow] {warning}")
            typer.echo(result.count)
            console.print(f"counted in {result.elapsed_ms:.0f} ms")
        else:
            assert segment is not None
            out = service.count_segment(
                session=session,
                warehouse=runtime.warehouse,
                project_id=project_id,
                segment_id=segment,
                now=runtime.clock(),
                live=True,
            )
            typer.echo(out.count)


@segments_app.command("refresh")
def refresh(
    segment: Annotated[int | None, typer.Option("--segment", help="Segment id.")] = None,
    due: Annotated[bool, typer.Option("--due", help="Every dynamic segment that is due.")] = False,
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Recompute dynamic segments (membership diff events included)."""
    from flywheel.profiles import mirror
    from flywheel.projects import service as projects
    from flywheel.segments import service

    if (segment is None) == (not due):
        raise typer.BadParameter("give --segment or --due")
    with cli_runtime(data_dir) as runtime:
        with runtime.db.unit_of_work() as session:
            if due:
                done = service.refresh_due(
                    session=session, warehouse=runtime.warehouse, now=runtime.clock()
                )
            else:
                assert segment is not None
                project_id = projects.get_by_name(session=session, name=project).id
                done = [
                    service.refresh_segment(
                        session=session,
                        warehouse=runtime.warehouse,
                        project_id=project_id,
                        segment_id=segment,
                        now=runtime.clock(),
                    )
                ]
        # The membership events were staged in the warehouse outbox with the run: bring them to
        # the event store now rather than at the next worker's drain.
        for _ in range(1000):  # a drain moves up to 100 staged batches; a replay may insert none
            mirror.drain(db=runtime.db, warehouse=runtime.warehouse, limit=100)
            with runtime.db.unit_of_work() as session:
                if not mirror.pending_count(session=session):
                    break
        for out in done:
            typer.echo(
                f"segment {out.segment_id}: {out.size} members, +{out.entered} -{out.left} "
                f"({out.seconds:.2f}s)"
            )
