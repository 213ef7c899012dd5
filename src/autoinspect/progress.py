"""Progress a person can read on long work: training epochs, evaluation, batch jobs.

Written to a terminal a bar redraws every second; written to a log file (a job started in the background) it adds
a whole line every :data:`LOG_INTERVAL_S` seconds instead of flooding the file with carriage returns.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

LOG_INTERVAL_S = 30.0


class _Lines(io.StringIO):
    """Where a bar writes when stderr is a file: each redraw becomes a line of its own instead of a ``\\r``."""

    def write(self, text: str) -> int:
        if line := text.replace("\r", "").strip():
            sys.stderr.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


def progress_bar(items: Iterable[T], description: str, *, unit: str = "batch", total: int | None = None) -> tqdm[T]:
    """A bar over ``items`` (rate, ETA), kept on screen when it ends."""
    if sys.stderr.isatty():
        return tqdm(items, desc=description, unit=unit, total=total, leave=True, dynamic_ncols=True)
    return tqdm(
        items,
        desc=description,
        unit=unit,
        total=total,
        leave=True,
        mininterval=LOG_INTERVAL_S,
        maxinterval=LOG_INTERVAL_S,
        file=_Lines(),
    )
