"""Helpers of the service tests: photos the red-box model reacts to, and waiting for the background writer."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from PIL import Image
from redbox import photo

from autoinspect.config import Settings
from autoinspect.store import PredictionLog, make_engine

KeyFactory = Callable[..., str]
"""``make_key(Scope.INSPECT, ...)`` (a fixture of ``tests/serving``) returns a new key's token."""


def jpeg(red: bool, *, size: tuple[int, int] = (200, 150), seed: int = 0) -> bytes:
    """A JPEG photo, with a red rectangle (damage for the red-box model) or without (a clean car)."""
    width, height = size
    pixels = photo(width, height, (40, 30, 120, 90) if red else None, seed=seed)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def wait_for_log(settings: Settings, count: int, timeout: float = 10.0) -> PredictionLog:
    """The prediction log once the background writer has stored ``count`` entries."""
    engine = make_engine(settings.store_url)
    log = PredictionLog(engine)
    deadline = time.monotonic() + timeout
    while log.count() < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"prediction log holds {log.count()} entries, expected {count}")
        time.sleep(0.05)
    return log
