"""The ``flywheel`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flywheel.config import Settings
from flywheel.logging import configure_logging

app = typer.Typer(help="Flywheel: marketing cloud for securities firms.", no_args_is_help=True)
console = Console(stderr=True)


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data folder (default $FLYWHEEL_DATA_DIR).")
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo brokerage if empty.")] = False,
    no_workers: Annotated[
        bool, typer.Option("--no-workers", help="API only; run `flywheel worker` elsewhere.")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Serve the API and console (and, unless --no-workers, every background worker)."""
    import uvicorn

    from flywheel.app import create_app
    from flywheel.bootstrap import open_runtime

    settings = _settings(data_dir)
    runtime = open_runtime(settings)
    if demo:
        from flywheel.demo.service import load_demo_if_empty

        load_demo_if_empty(runtime, console=console)
    application = create_app(settings, runtime=runtime, workers=not no_workers)
    console.print(f"Flywheel is serving at http://{host}:{port}  (data: {settings.data_dir})")
    try:
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    finally:
        runtime.close()


@app.command()
def worker(data_dir: DataDirOpt = None) -> None:
    """Run every background worker loop (no HTTP)."""
    import signal
    import threading

    from flywheel.bootstrap import open_runtime
    from flywheel.core.loops import LoopRunner
    from flywheel.workers import build_loops

    runtime = open_runtime(_settings(data_dir))
    runner = LoopRunner(build_loops(runtime))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runner.start()
    console.print("Flywheel worker running; Ctrl-C to stop.")
    stop.wait()
    runner.stop()
    runtime.close()


@app.command()
def migrate(data_dir: DataDirOpt = None) -> None:
    """Apply pending schema migrations (done automatically on start too)."""
    from flywheel.bootstrap import open_runtime

    open_runtime(_settings(data_dir)).close()
    console.print("schema up to date")


def _register_subcommands() -> None:
    from flywheel.cli.audit import audit_app
    from flywheel.cli.channels import channels_app
    from flywheel.cli.compliance import compliance_app
    from flywheel.cli.content import content_app
    from flywheel.cli.demo import demo_command
    from flywheel.cli.imports import import_app
    from flywheel.cli.journeys import journeys_app
    from flywheel.cli.keys import keys_app
    from flywheel.cli.playbooks import playbooks_app
    from flywheel.cli.recommend import recommend_app
    from flywheel.cli.segments import segments_app
    from flywheel.cli.tags import tags_app
    from flywheel.cli.users import users_app

    app.add_typer(users_app, name="users", help="Console users.")
    app.add_typer(keys_app, name="keys", help="Ingest keys.")
    app.add_typer(import_app, name="import", help="Bulk import of events, profiles and items.")
    app.add_typer(tags_app, name="tags", help="Tags: run, list.")
    app.add_typer(segments_app, name="segments", help="Segments: count, refresh, export.")
    app.add_typer(recommend_app, name="recommend", help="Recommendations: train, evaluate.")
    app.add_typer(audit_app, name="audit", help="Audit trail: verify, show.")
    app.add_typer(content_app, name="content", help="Content: check, import, export.")
    app.add_typer(journeys_app, name="journeys", help="Journeys: list, validate, publish, export.")
    app.add_typer(channels_app, name="channels", help="Channels: settings, test sends, stats.")
    app.add_typer(compliance_app, name="compliance", help="Compliance: opt-outs, lists, caps.")
    app.add_typer(playbooks_app, name="playbooks", help="Playbooks: list, apply.")
    app.command(name="demo")(demo_command)


_register_subcommands()
