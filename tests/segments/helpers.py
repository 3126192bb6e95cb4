"""What the segment refresh tests share: the project and a rule whose members change with time."""

from __future__ import annotations

from typing import Any

P = 1
#: Customers who logged in within the last three days.
RECENT_LOGIN: dict[str, Any] = {
    "rules": [
        {
            "type": "event_rule",
            "measure": {"event": "Login"},
            "window": {"relative_days": 3},
            "function": "did",
        }
    ]
}
