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


def figure(value: float | None, digits: int = 3) -> str:
    """A metric as a person reads it in a log line: rounded, and ``n/a`` when it was not measured.

    Example:
        >>> figure(0.9315068493150684), figure(None)
        ('0.932', 'n/a')
    """
    return "n/a" if value is None else f"{value:.{digits}f}"


def rounded_figures(values: dict[str, float]) -> str:
    """``{"scratch": 0.4998651146}`` as ``scratch 0.500, dent 0.348`` for a log line."""
    return ", ".join(f"{name} {figure(value)}" for name, value in values.items())
