"""The one rule for something a test needs from the machine (the real sample, PostgreSQL, Chromium): CI provides
it, so its absence fails there; elsewhere the test is skipped with the reason."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
