"""A split of a dataset checkout as decoded photos with their truth and slice attributes, ready to evaluate.

Slices: ``source`` is the file-name prefix before the first ``_`` (``lensor_p12.jpg`` -> ``lensor``; the sample
and most exports name files by origin), ``brightness`` and ``damage_size`` come from the same feature code that
monitoring runs on live photos, bucketed by the evaluator's edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from autoinspect.data.features import image_features
from autoinspect.data.layout import DatasetLayout, LayoutItem
from autoinspect.domain import Annotation, Detection, Split
from autoinspect.evaluation import EvalImage, box_size_bucket, brightness_bucket
from autoinspect.images import decode_image

NO_DAMAGE = "no damage"


@dataclass(frozen=True)
class LabelledPhoto:
    image_id: str
    rgb: npt.NDArray[np.uint8]
    truth: list[Annotation]
    attributes: dict[str, str]

    def with_predictions(
        self, predictions: Sequence[Detection], presence: Mapping[str, float] | None = None
    ) -> EvalImage:
        height, width = self.rgb.shape[:2]
        return EvalImage(
            image_id=self.image_id,
            width=width,
            height=height,
            truth=self.truth,
            predictions=list(predictions),
            presence=dict(presence) if presence is not None else None,
            attributes=self.attributes,
        )


def _photo(item: LayoutItem, names: Sequence[str]) -> LabelledPhoto:
    rgb = decode_image(item.image).rgb
    height, width = rgb.shape[:2]
    truth = item.annotations(names)
    smallest = min((a.box.min_side_px(width, height) for a in truth), default=None)
    attributes = {
        "source": item.image.stem.split("_", 1)[0],
        "brightness": brightness_bucket(image_features(rgb).brightness),
        "damage_size": NO_DAMAGE if smallest is None else box_size_bucket(smallest),
    }
    return LabelledPhoto(image_id=item.key, rgb=rgb, truth=truth, attributes=attributes)


def load_split(layout: DatasetLayout, split: Split) -> list[LabelledPhoto]:
    """Every photo of one split, decoded once (a few hundred photos fit in memory easily)."""
    return load_items(layout, [item for item in layout.items() if item.split is split], desc=f"load {split.value}")


def load_items(layout: DatasetLayout, items: Sequence[LayoutItem], *, desc: str = "load") -> list[LabelledPhoto]:
    """These photos of ``layout``, decoded with their truth and slice attributes."""
    names = layout.names
    return [_photo(item, names) for item in tqdm(items, desc=desc, unit="img", disable=None)]
