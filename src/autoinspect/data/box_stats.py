"""Box size statistics per class: how small the damage is, in the pixels of the photos as stored.

Scratches are thin: on the real sample half of the scratch boxes are under 13 px on their shorter side, which
decides the detector's input size and whether downscaling augmentations are safe. The figures appear in every
validation report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

if TYPE_CHECKING:
    from autoinspect.data.scan import ScannedImage

SMALL_SIDE_THRESHOLDS_PX = (8, 13, 16, 32)
"""32 px is COCO's "small"; 8 and 16 px are one cell of a stride-8 and stride-16 feature map; 13 px is the
figure the real sample's notes quote."""


class ClassBoxStats(BaseModel):
    label: str
    boxes: int
    images: int
    """Images with at least one box of this class."""
    min_side_px_p10: float | None
    min_side_px_median: float | None
    min_side_px_p90: float | None
    share_below_px: dict[int, float]
    """Share of boxes whose shorter side is below each threshold (keys in pixels)."""
    median_area_fraction: float | None
    """Median box area as a share of the image area."""


def _percentile(values: npt.NDArray[np.float64], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values.size else None


def box_size_stats(scans: Sequence[ScannedImage], names: Sequence[str]) -> list[ClassBoxStats]:
    """Statistics per class over the images that decoded and have labels."""
    sides: dict[int, list[float]] = {i: [] for i in range(len(names))}
    areas: dict[int, list[float]] = {i: [] for i in range(len(names))}
    images: dict[int, int] = dict.fromkeys(range(len(names)), 0)
    for scan in scans:
        if scan.decoded is None or scan.labels is None:
            continue
        width, height = scan.decoded.width, scan.decoded.height
        for class_id in {row.class_id for row in scan.labels.rows}:
            images[class_id] += 1
        for row in scan.labels.rows:
            sides[row.class_id].append(row.box.min_side_px(width, height))
            areas[row.class_id].append(row.box.area)
    stats = []
    for class_id, label in enumerate(names):
        side = np.asarray(sides[class_id], dtype=np.float64)
        area = np.asarray(areas[class_id], dtype=np.float64)
        stats.append(
            ClassBoxStats(
                label=label,
                boxes=int(side.size),
                images=images[class_id],
                min_side_px_p10=_percentile(side, 10),
                min_side_px_median=_percentile(side, 50),
                min_side_px_p90=_percentile(side, 90),
                share_below_px={
                    t: round(float((side < t).mean()), 4) if side.size else 0.0 for t in SMALL_SIDE_THRESHOLDS_PX
                },
                median_area_fraction=round(float(np.median(area)), 5) if area.size else None,
            )
        )
    return stats
