"""`flywheel channels …` (being built)."""

from __future__ import annotations

import typer

channels_app = typer.Typer(no_args_is_help=True)


# -- provider accounts, test sends, delivery statistics (H1) ----------------------------------

from typing import Annotated  # noqa: E402 - appended section of a shared file

from rich.console import Console  # noqa: E402

from flywheel.cli.common import DataDir, cli_runtime  # noqa: E402

_accounts_out = Console(soft_wrap=True)
_AccountProject = Annotated[str, typer.Option("--project", help="Project name.")]


@channels_app.command("accounts")
def accounts_list(project: _AccountProject = "default", data_dir: DataDir = None) -> None:
    """Print the project's channel accounts as JSON (credentials masked)."""
    from flywheel.channels import accounts
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        found = accounts.list_accounts(session=session, project_id=project_id)
    _accounts_out.print_json(data=[a.model_dump(mode="json") for a in found])


@channels_app.command("test")
def accounts_test(
    account_id: Annotated[int, typer.Argument(help="Channel account id.")],
    address: Annotated[str, typer.Argument(help="Recipient (mobile, openid, userid …).")],
    text: Annotated[str, typer.Option("--text", help="Message text.")] = "Flywheel 测试消息",
    template: Annotated[
        str | None, typer.Option("--template", help="Account template name (SMS, WeChat).")
    ] = None,
    project: _AccountProject = "default",
    data_dir: DataDir = None,
) -> None:
    """Send one test message through an account (audited); exit 1 unless it was accepted."""
    from flywheel.channels import accounts
    from flywheel.projects import service as projects

    config = {"template": template} if template else {}
    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        outcome = accounts.send_test(
            session=session,
            project_id=project_id,
            account_id=account_id,
            test_in=accounts.TestIn(address=address, text=text, config=config),
            settings=runtime.settings,
            actor="cli:channels",
            now=runtime.clock(),
        )
    _accounts_out.print_json(data=outcome.model_dump(mode="json"))
    if outcome.kind not in ("sent", "delivered"):
        raise typer.Exit(1)


@channels_app.command("stats")
def channel_stats(
    channel: Annotated[str | None, typer.Option("--channel", help="One channel only.")] = None,
    project: _AccountProject = "default",
    data_dir: DataDir = None,
) -> None:
    """Print delivery statistics per channel as JSON."""
    from flywheel.channels import accounts
    from flywheel.projects import service as projects

    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        found = accounts.stats(session=session, project_id=project_id, channel=channel)
    _accounts_out.print_json(data=[s.model_dump(mode="json") for s in found])


# -- dispatcher and message log (H5) ------------------------------------------------------------

import json as _json  # noqa: E402 - appended section of a shared file

_dispatch_out = Console(soft_wrap=True)


@channels_app.command("dispatch")
def dispatch(
    once: Annotated[bool, typer.Option("--once", help="Drain what is due now, then exit.")] = True,
    data_dir: DataDir = None,
) -> None:
    """Deliver due outbox messages (``flywheel worker`` does this continuously)."""
    from flywheel.channels.dispatch import Dispatcher

    with cli_runtime(data_dir) as runtime:
        with Dispatcher(
            db=runtime.db,
            warehouse=runtime.warehouse,
            settings=runtime.settings,
            clock=runtime.clock,
        ) as dispatcher:
            handled = dispatcher.run_until_idle() if once else dispatcher.run_once()
        _dispatch_out.print(f"dispatched {handled} message(s)")


@channels_app.command("messages")
def messages(
    project: _AccountProject = "default",
    user: Annotated[int | None, typer.Option("--user", help="Customer user id.")] = None,
    journey: Annotated[int | None, typer.Option("--journey", help="Journey id.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Message status.")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    data_dir: DataDir = None,
) -> None:
    """Print the message log as JSON lines, newest first."""
    from flywheel.auth.permissions import ALL
    from flywheel.auth.schemas import Principal
    from flywheel.channels import service
    from flywheel.projects import service as projects

    system = Principal(user_id=0, username="cli", role="admin", permissions=ALL)
    with cli_runtime(data_dir) as runtime, runtime.db.unit_of_work() as session:
        project_id = projects.get_by_name(session=session, name=project).id
        page = service.list_messages(
            session=session,
            project_id=project_id,
            principal=system,
            user_id=user,
            journey_id=journey,
            status=status,
            limit=limit,
        )
        for item in page.items:
            _dispatch_out.print(_json.dumps(item.model_dump(mode="json"), ensure_ascii=False))
