"""`flywheel import events|profiles|items FILE`: bulk import of CSV / JSON lines / Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from flywheel.config import Settings
from flywheel.core.errors import FlywheelError, InvalidInput

import_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)

FileArg = Annotated[
    Path, typer.Argument(help="CSV (header row), JSON lines or Parquet file.", show_default=False)
]
ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="csv, jsonl or parquet (default: by extension).")
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Rename a column: 'source_col=target' (repeat); 'source_col=' drops the column.",
    ),
]
DistinctIdOpt = Annotated[
    str, typer.Option("--distinct-id-col", help="Column with the customer's id.")
]
IdentityKeyOpt = Annotated[
    str, typer.Option("--identity-key", help="Identity key the distinct ids are values of.")
]
TimezoneOpt = Annotated[
    str, typer.Option("--timezone", help="Zone of times written without an offset.")
]
BatchOpt = Annotated[int, typer.Option("--batch-rows", min=1, help="Rows per batch.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data folder.")]


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        source, sep, target = pair.partition("=")
        if not sep or not source:
            raise InvalidInput(f"--map {pair!r}: write it as source_col=target")
        mapping[source] = target.strip()
    return mapping


def _run(
    path: Path, project: str, data_dir: Path | None, mapping: list[str] | None, **fields: object
) -> None:
    from flywheel.bootstrap import open_runtime
    from flywheel.ingest.bulk import ImportOptions, import_file
    from flywheel.logging import configure_logging
    from flywheel.projects import service as projects

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        options = ImportOptions(mapping=_mapping(mapping), **fields)  # type: ignore[arg-type]
        runtime = open_runtime(settings)
    except FlywheelError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name=project).id
        with Progress(
            TextColumn(f"importing {options.kind} from {path.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("import", total=None)
            result = import_file(
                runtime,
                project_id=project_id,
                path=path,
                options=options,
                total=lambda n: progress.update(task, total=n),
                progress=lambda n: progress.advance(task, n),
            )
    except FlywheelError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    finally:
        runtime.close()
    summary = Table(title=f"{options.kind} import of {path.name}", show_header=False)
    summary.add_row("rows read", f"{result.rows:,}")
    summary.add_row("accepted", f"[green]{result.accepted:,}[/green]")
    summary.add_row("rejected", f"[red]{result.rejected:,}[/red]" if result.rejected else "0")
    if options.kind != "items":
        summary.add_row("customers", f"{result.users:,}")
    summary.add_row("time", f"{result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)")
    console.print(summary)
    if result.rejected:
        reasons = Table("rejected because", "rows", title="rejections (kept in ingest_rejections)")
        for reason, count in result.reasons.most_common(10):
            reasons.add_row(reason, f"{count:,}")
        console.print(reasons)


@import_app.command("events")
def import_events(
    file: FileArg,
    project: ProjectOpt = "default",
    file_format: FormatOpt = None,
    mapping: MapOpt = None,
    distinct_id_col: DistinctIdOpt = "distinct_id",
    event_col: Annotated[str, typer.Option("--event-col", help="Column with the event name.")] = (
        "event"
    ),
    event: Annotated[
        str | None, typer.Option("--event", help="One event name for every row (no event col).")
    ] = None,
    time_col: Annotated[
        str,
        typer.Option("--time-col", help="Column with the time (date-time or epoch s/ms)."),
    ] = "time",
    identity_key: IdentityKeyOpt = "$identity_login_id",
    timezone: TimezoneOpt = "UTC",
    batch_rows: BatchOpt = 100_000,
    data_dir: DataDirOpt = None,
) -> None:
    """Import events: one row per event; other columns become event properties."""
    _run(
        file,
        project,
        data_dir,
        mapping,
        kind="events",
        file_format=file_format,
        distinct_id_col=distinct_id_col,
        event_col=event_col,
        event_name=event,
        time_col=time_col,
        identity_key=identity_key,
        timezone=timezone,
        batch_rows=batch_rows,
    )


@import_app.command("profiles")
def import_profiles(
    file: FileArg,
    project: ProjectOpt = "default",
    file_format: FormatOpt = None,
    mapping: MapOpt = None,
    distinct_id_col: DistinctIdOpt = "distinct_id",
    identity_key: IdentityKeyOpt = "$identity_login_id",
    timezone: TimezoneOpt = "UTC",
    batch_rows: BatchOpt = 100_000,
    data_dir: DataDirOpt = None,
) -> None:
    """Import profiles (profile_set per row; empty cells leave a property unchanged)."""
    _run(
        file,
        project,
        data_dir,
        mapping,
        kind="profiles",
        file_format=file_format,
        distinct_id_col=distinct_id_col,
        identity_key=identity_key,
        timezone=timezone,
        batch_rows=batch_rows,
    )


@import_app.command("items")
def import_items(
    file: FileArg,
    project: ProjectOpt = "default",
    file_format: FormatOpt = None,
    mapping: MapOpt = None,
    item_type_col: Annotated[
        str, typer.Option("--item-type-col", help="Column with the item type.")
    ] = "item_type",
    item_type: Annotated[
        str | None, typer.Option("--item-type", help="One item type for every row.")
    ] = None,
    item_id_col: Annotated[str, typer.Option("--item-id-col", help="Column with the item id.")] = (
        "item_id"
    ),
    timezone: TimezoneOpt = "UTC",
    batch_rows: BatchOpt = 100_000,
    data_dir: DataDirOpt = None,
) -> None:
    """Import items such as funds (item_set per row: the item's properties are replaced)."""
    _run(
        file,
        project,
        data_dir,
        mapping,
        kind="items",
        file_format=file_format,
        item_type_col=item_type_col,
        item_type=item_type,
        item_id_col=item_id_col,
        timezone=timezone,
        batch_rows=batch_rows,
    )
