"""Shared bucket edges for slice attributes, so that every caller tags photos the same way.

A slice is only comparable between two evaluations (champion vs challenger, last month vs this month) when both
put a photo in the same bucket; these functions are the one definition of the edges.

Example:
    >>> brightness_bucket(60.0), brightness_bucket(121.5), box_size_bucket(12.0)
    ('dark', 'normal', 'small')
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Final

BRIGHTNESS_EDGES: Final = (85.0, 170.0)
"""Mean luma (0-255, as ``data.features.image_features`` computes it) where ``dark`` ends and ``bright`` starts.
On the real sample these sit near the 10th and 95th percentiles (87.8 and 169.0), so ``normal`` holds the bulk
and the two tails are the garage shots and the sunlit ones."""
BRIGHTNESS_BUCKETS: Final = ("dark", "normal", "bright")

BOX_SIZE_EDGES_PX: Final = (8.0, 16.0, 32.0)
"""Shorter box side in pixels of the photo as stored: one cell of a stride-8 and of a stride-16 feature map, and
COCO's "small" limit. A third of the scratch boxes on the real sample are under 13 px."""
BOX_SIZE_BUCKETS: Final = ("tiny", "small", "medium", "large")


def _bucket(value: float, edges: Sequence[float], names: Sequence[str]) -> str:
    if math.isnan(value):
        raise ValueError("cannot bucket NaN")
    return names[bisect_right(edges, value)]


def brightness_bucket(value: float) -> str:
    """``dark`` below 85, ``normal`` from 85 up to 170, ``bright`` from 170 (each edge belongs to the upper bucket)."""
    return _bucket(value, BRIGHTNESS_EDGES, BRIGHTNESS_BUCKETS)


def box_size_bucket(min_side_px: float) -> str:
    """``tiny`` below 8 px, ``small`` 8-16, ``medium`` 16-32, ``large`` from 32 (edges belong to the upper bucket).

    Callers usually pass the smallest ground-truth box of a photo (``Box.min_side_px``): the hardest target.
    """
    return _bucket(min_side_px, BOX_SIZE_EDGES_PX, BOX_SIZE_BUCKETS)
