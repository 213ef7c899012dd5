"""What a person watching a training run reads: a bar per epoch (:func:`autoinspect.progress.progress_bar`),
and one line of val figures after it.

An epoch on a 2-core CPU takes minutes; a run that prints nothing for that long looks hung. The bar shows
batches, rate, ETA and the running mean of each loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from autoinspect.progress import rounded_figures

IMAGE_KEYS = ("image/damaged_caught", "image/clean_none_rate")
"""Headline val figures after ``map50``, every ``ap50/<class>`` and every presence F1 ``image/f1/<class>``; the
full row still goes to the tracker."""


@contextmanager
def quiet_loggers(names: Iterable[str]) -> Iterator[None]:
    """Raise these loggers to WARNING for the duration, so their INFO chatter stays out of the console."""
    saved = {name: logging.getLogger(name).level for name in names}
    for name in saved:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def val_summary(metrics: Mapping[str, float]) -> str:
    """``map50 0.071, ap50/scratch 0.040, ap50/dent 0.102, image/damaged_caught 0.80, ...`` (``-`` for none).

    Example:
        >>> val_summary({"map50": 0.1, "ap50/dent": 0.2, "map75": 0.05})
        'map50 0.100, ap50/dent 0.200'
    """
    if not metrics:
        return "no val scorer"
    ordered = [
        "map50",
        *(key for key in metrics if key.startswith("ap50/")),
        *(key for key in metrics if key.startswith("image/f1/")),
        *IMAGE_KEYS,
    ]
    return rounded_figures({key: metrics[key] for key in ordered if key in metrics})
