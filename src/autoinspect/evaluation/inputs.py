"""What the evaluator reads: one record per photo with its truth, its predictions and its slice tags.

Predictions are everything the model returned, not pre-filtered by the operating thresholds: average precision
sweeps every score, and the operating-point and verdict metrics apply the thresholds themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from autoinspect.domain import Annotation, Detection


class EvalImage(BaseModel):
    """One photo as the evaluator sees it.

    Example:
        >>> from autoinspect.domain import Box
        >>> EvalImage(image_id="a", width=640, height=480,
        ...           truth=[Annotation(label="dent", box=Box(x1=0.1, y1=0.1, x2=0.3, y2=0.2))]).damaged
        True
    """

    model_config = ConfigDict(frozen=True)

    image_id: str
    width: int = Field(gt=0)
    """Pixels: boxes are matched in pixels, as pycocotools matches them, so that the figures agree with it."""
    height: int = Field(gt=0)
    truth: list[Annotation] = Field(default_factory=list)
    """Ground-truth boxes; empty for an undamaged car, whose right answer is "None"."""
    predictions: list[Detection] = Field(default_factory=list)
    """Every detection the model returned, in its own order (ties in score keep this order)."""
    presence: dict[str, float] | None = None
    """Per class, the model's probability that the photo shows it (models with a presence output only)."""
    attributes: dict[str, str] = Field(default_factory=dict)
    """Slice tags filled by the caller, e.g. ``{"source": "lensor", "brightness": brightness_bucket(121.5)}``."""

    @property
    def damaged(self) -> bool:
        """Whether the photo has any ground-truth damage."""
        return bool(self.truth)


def check_inputs(
    images: Sequence[EvalImage], classes: Sequence[str], thresholds: Mapping[str, float] | None = None
) -> None:
    """Refuse inputs that would make a metric silently wrong, naming what is wrong.

    Unknown labels would otherwise vanish from every per-class figure, duplicate ids would merge two photos in
    the error gallery, and a missing threshold would leave a class without an operating point.
    """
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be a non-empty list of unique names, got {list(classes)}")
    duplicates = sorted(name for name, count in Counter(image.image_id for image in images).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate image ids: {duplicates[:5]}")
    known = set(classes)
    unknown = {box.label for image in images for box in (*image.truth, *image.predictions)} - known
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not among the classes {list(classes)}")
    if thresholds is not None and (missing := known - set(thresholds)):
        raise ValueError(f"no score threshold for classes {sorted(missing)}")
