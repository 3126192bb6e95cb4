"""Background loops of the channels domain: the dispatcher and the SMS receipt poller."""

from __future__ import annotations

from flywheel.channels import accounts, catalog
from flywheel.channels.dispatch import DispatcherLoop
from flywheel.channels.receipts import ReceiptPoller
from flywheel.core.loops import LoopService
from flywheel.runtime import Runtime


def build_loops(runtime: Runtime) -> list[LoopService]:
    """The channels loops: one dispatcher using the projects' channel accounts (every
    adapter module registered first), and the receipt poller."""
    catalog.channel_names()
    return [DispatcherLoop(runtime, accounts=accounts.load_account), ReceiptPoller(runtime)]
