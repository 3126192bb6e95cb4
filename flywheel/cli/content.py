"""`flywheel content …`: check a text for prohibited claims, import and export content."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flywheel.cli.common import DataDir, cli_runtime

content_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)
out = Console(soft_wrap=True)

ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]
CLI_ACTOR = "cli:content"


@content_app.command("check")
def check(
    file: Annotated[str, typer.Argument(help="Text file to check, or - for stdin.")],
    stored: Annotated[
        bool, typer.Option("--stored", help="Use the project's edited phrase list.")
    ] = False,
    product_card: Annotated[bool, typer.Option("--product-card")] = False,
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Print findings as JSON (positions in the original text); exit 1 when there are any."""
    from flywheel.content import checker

    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    book = checker.DEFAULT_BOOK
    if stored:
        from flywheel.content import service
        from flywheel.projects import service as projects

        with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name=project).id
            book = service.phrase_book(session=session, project_id=project_id, now=runtime.clock())
    findings = [f.as_dict() for f in checker.check(text, book=book, product_card=product_card)]
    out.print_json(data={"findings": findings})
    if findings:
        raise typer.Exit(1)


def _read_folder(folder: Path) -> tuple[list[Any], list[dict[str, str]]]:
    from pydantic import ValidationError

    from flywheel.content.schemas import ContentIn, ExportedContent

    items: list[ContentIn] = []
    unreadable: list[dict[str, str]] = []
    for path in sorted(folder.iterdir()):
        try:
            if path.suffix == ".json":
                loaded = json.loads(path.read_text(encoding="utf-8"))
                for entry in loaded if isinstance(loaded, list) else [loaded]:
                    exported = ExportedContent.model_validate(entry)
                    items.append(
                        ContentIn.model_validate(
                            exported.model_dump(exclude={"status", "approved"})
                        )
                    )
            elif path.suffix in {".txt", ".md"}:
                body = path.read_text(encoding="utf-8")
                items.append(ContentIn(name=path.stem, kind="text", body=body))
        except (ValueError, ValidationError, UnicodeDecodeError) as exc:
            unreadable.append({"file": path.name, "error": str(exc)[:500]})
    return items, unreadable


@content_app.command("import")
def import_folder(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder.")],
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Import *.json (export format) and *.txt/*.md (name = file stem) as drafts."""
    from flywheel.content import service
    from flywheel.projects import service as projects

    items, unreadable = _read_folder(folder)
    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        report = service.import_content(
            session=session,
            project_id=project_id,
            items=items,
            actor=CLI_ACTOR,
            author_user_id=None,
            now=runtime.clock(),
        )
    out.print_json(data={**report.model_dump(), "unreadable": unreadable})
    if report.rejected or unreadable:
        raise typer.Exit(1)


@content_app.command("export")
def export_folder(
    folder: Annotated[Path, typer.Argument(file_okay=False, help="Folder (created).")],
    project: ProjectOpt = "default",
    data_dir: DataDir = None,
) -> None:
    """Write one JSON file per item (importable again with `flywheel content import`)."""
    from flywheel.content import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        exported = service.export_content(
            session=session, project_id=project_id, actor=CLI_ACTOR, now=runtime.clock()
        )
    folder.mkdir(parents=True, exist_ok=True)
    for number, item in enumerate(exported, start=1):
        slug = re.sub(r"[^\w-]+", "_", item.name)[:60]
        path = folder / f"{number:04d}-{slug}.json"
        path.write_text(item.model_dump_json(indent=2), encoding="utf-8")
    console.print(f"exported {len(exported)} items to {folder}")
