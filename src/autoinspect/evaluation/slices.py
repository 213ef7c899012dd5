"""The operating point and verdict metrics per value of each photo attribute (source, severity, brightness...).

A model can gain mAP overall while losing the dark photos or one dealer's camera; promotion gates and the report
look at slices for that. Every slice with at least one photo is reported, with its size, so that a reader can
tell a real drop from noise on a handful of photos.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pydantic import BaseModel

from autoinspect.evaluation.image_level import ImageLevelMetrics
from autoinspect.evaluation.inputs import EvalImage
from autoinspect.evaluation.operating_point import ClassOperatingPoint
from autoinspect.evaluation.outcomes import ImageOutcomes


class SliceMetrics(BaseModel):
    """The figures of the photos whose attribute ``key`` equals ``value``."""

    key: str
    value: str
    images: int
    operating_point: dict[str, ClassOperatingPoint]
    image_level: ImageLevelMetrics


def slice_members(images: Sequence[EvalImage]) -> dict[tuple[str, str], list[int]]:
    """Positions of the photos in each ``(key, value)`` group, groups sorted by key then value."""
    groups: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for position, image in enumerate(images):
        for key, value in image.attributes.items():
            groups[key, value].append(position)
    return dict(sorted(groups.items()))


def slice_metrics(images: Sequence[EvalImage], outcomes: ImageOutcomes) -> list[SliceMetrics]:
    """One :class:`SliceMetrics` per attribute value present on at least one photo."""
    result = []
    for (key, value), members in slice_members(images).items():
        operating_point, image_level = outcomes.summarise(members)
        result.append(
            SliceMetrics(
                key=key, value=value, images=len(members), operating_point=operating_point, image_level=image_level
            )
        )
    return result
