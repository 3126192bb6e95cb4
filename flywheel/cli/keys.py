"""`flywheel keys create|list|revoke|require-token`: project-scoped ingest keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flywheel.cli.common import DataDir, cli_runtime

keys_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)
out = Console()
CLI_ACTOR = "cli"


@keys_app.command("create")
def create(
    project: Annotated[str, typer.Option(help="Project name.")] = "default",
    label: Annotated[str, typer.Option(help="What the key is for (e.g. 'ios app').")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create an ingest key; the clear key is printed once, on the last line."""
    from flywheel.ingest import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        created = service.create_key(
            session=session,
            project_id=project_id,
            label=label,
            now=runtime.clock(),
            actor=CLI_ACTOR,
        )
    console.print(
        f"created ingest key {created.prefix}… for project {project!r}; "
        "store it now, it is not shown again:"
    )
    typer.echo(created.key)


@keys_app.command("list")
def list_keys(
    project: Annotated[str | None, typer.Option(help="Only this project.")] = None,
    data_dir: DataDir = None,
) -> None:
    """List ingest keys (prefix, project, label, created, revoked)."""
    from flywheel.ingest import service
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id if project else None
        keys = service.list_keys(session=session, project_id=project_id)
    table = Table("prefix", "project", "label", "created", "revoked")
    for key in keys:
        table.add_row(
            key.prefix,
            key.project,
            key.label,
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (as listed) or the key.")],
    data_dir: DataDir = None,
) -> None:
    """Revoke an ingest key: data sent with it is refused from now on."""
    from flywheel.ingest import service

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        revoked = service.revoke_key(
            session=session, prefix=prefix, now=runtime.clock(), actor=CLI_ACTOR
        )
    console.print(f"revoked ingest key {revoked.prefix}… of project {revoked.project!r}")


@keys_app.command("require-token")
def require_token(
    project: Annotated[str, typer.Option(help="Project name.")] = "default",
    off: Annotated[bool, typer.Option("--off", help="Accept Sensors data without a key.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Make the Sensors endpoint refuse records of PROJECT without a valid ``$token`` key."""
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        updated = projects.set_require_token(session=session, name=project, require=not off)
    state = "requires" if updated.require_token else "does not require"
    console.print(f"project {updated.name!r} now {state} a token on /sa")


@keys_app.command("rotate-pii")
def rotate_pii(data_dir: DataDir = None) -> None:
    """Re-encrypt every encrypted column under the newest key of FLYWHEEL_ENCRYPTION_KEYS.

    Prepend the new key to FLYWHEEL_ENCRYPTION_KEYS (keep the old ones after it), run this,
    then drop the old keys. See docs/security.md.
    """
    import flywheel.models  # noqa: F401  (every encrypted column must be on the metadata)
    from flywheel.auth import crypto
    from flywheel.store import Base

    with cli_runtime(data_dir) as runtime:
        settings = runtime.settings
        keys = crypto.install_keys(settings.secret_key, settings.encryption_keys)
        with runtime.db.unit_of_work() as session:
            rotated = crypto.rotate_encrypted_columns(
                session=session,
                metadata=Base.metadata,
                keys=keys,
                actor=CLI_ACTOR,
                now=runtime.clock(),
            )
    console.print(f"re-encrypted {rotated} value(s) under the newest key")
