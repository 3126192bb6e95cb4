"""Suitability (适当性): which products a customer may be recommended.

The rule, applied to every recommendation and never configurable by a strategy:

* a customer with a valid assessment of tolerance ``Ck`` (``C1`` lowest … ``C5``) may be shown
  products of risk level ``R1`` … ``Rk`` only;
* a customer without a tolerance, with an unreadable one, or whose assessment has expired
  (``risk_assessment_expiry`` before today in Asia/Shanghai) may be shown **no risk-bearing
  product at all**, not even ``R1``: only items that carry no risk level (articles, live
  streams…). This is the conservative reading of "nothing above R1";
* an item of a product type (anything but :data:`CONTENT_TYPES`) whose ``risk_level`` is missing
  or unreadable is *unrated* and is shown to nobody.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from flywheel.core.clock import SHANGHAI, to_utc

#: Item types that are content, not investment products: without a risk level they are safe.
CONTENT_TYPES: frozenset[str] = frozenset(
    {"article", "live", "live_stream", "video", "news", "course", "activity"}
)

#: Level of an item without risk (content). Every customer may see it.
NO_RISK = 0
#: Level of a product whose risk level is unknown: above every tolerance, shown to nobody.
UNRATED = 9
#: What a customer without a valid assessment may see: items without risk level only.
UNASSESSED_MAX = NO_RISK


def risk_level(item_type: str, value: Any) -> int:
    """The numeric risk level of an item (``R3`` → 3), :data:`NO_RISK` or :data:`UNRATED`."""
    level = _parse_level(value, "R")
    if level is not None:
        return level
    if value in (None, "") and item_type in CONTENT_TYPES:
        return NO_RISK
    return UNRATED


def tolerance_level(tolerance: Any, expiry: Any, *, today: date) -> int:
    """The highest item risk level a customer may be shown.

    ``today`` is the business date in Asia/Shanghai (see :func:`business_date`). A missing or
    unreadable tolerance, an expiry before ``today`` or an unreadable expiry yield
    :data:`UNASSESSED_MAX`. A *missing* expiry is accepted (not every firm records one).
    """
    level = _parse_level(tolerance, "C")
    if level is None:
        return UNASSESSED_MAX
    expiry_date = _as_date(expiry)
    if expiry_date is not None and expiry_date < today:
        return UNASSESSED_MAX
    if expiry is not None and expiry_date is None:
        return UNASSESSED_MAX  # an expiry we cannot read is treated as expired
    return level


def business_date(now: datetime) -> date:
    """The date in Asia/Shanghai at ``now`` (business rules use Shanghai time)."""
    return to_utc(now).astimezone(SHANGHAI).date()


def allowed(item_level: int, max_level: int) -> bool:
    """Whether an item of ``item_level`` may be shown to a customer allowed up to ``max_level``."""
    return item_level != UNRATED and item_level <= max_level


def allowed_mask(levels: npt.NDArray[np.int8], max_level: int) -> npt.NDArray[np.bool_]:
    """Vectorised :func:`allowed` over an array of item levels."""
    mask: npt.NDArray[np.bool_] = (levels <= max_level) & (levels != UNRATED)
    return mask


def level_name(level: int) -> str | None:
    """``3`` → ``"R3"``; None for items without risk level."""
    if level == NO_RISK:
        return None
    if level == UNRATED:
        return "unrated"
    return f"R{level}"


def _parse_level(value: Any, prefix: str) -> int | None:
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    if len(text) == 2 and text[0] == prefix and text[1] in "12345":
        return int(text[1])
    return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return to_utc(value).astimezone(SHANGHAI).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None
