from __future__ import annotations

import pytest

from tests.security.helpers import cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_password_hashing(monkeypatch)
