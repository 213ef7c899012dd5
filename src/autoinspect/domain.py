"""Domain types shared by every stage: boxes, annotations, detections, verdicts and dataset references.

Boxes are stored normalised to [0, 1] in ``x1, y1, x2, y2`` order, the one representation that survives
resizing and letterboxing; converters to YOLO ``cx, cy, w, h`` and to pixels live on the type so that no
stage re-implements them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

NONE_VERDICT = "None"
"""What AutoInspect answers for a vehicle with neither scratches nor dents."""
RETAKE_VERDICT = "Retake"
"""What the prediction log records for a photo the quality gate refused (too dark, blurred...): no verdict."""


class VehicleView(StrEnum):
    """Which side of the vehicle a photo of an inspection shows; ``detail`` is a close-up of one spot."""

    FRONT = "front"
    REAR = "rear"
    LEFT = "left"
    RIGHT = "right"
    ROOF = "roof"
    DETAIL = "detail"


class SizeClass(StrEnum):
    """A damage's coarse size, from its share of an overview photo (cut-offs in ``inspections.size_cutoffs``)."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class Split(StrEnum):
    """Dataset splits; ``test`` is the gold split that only an explicit command may change."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Box(BaseModel):
    """An axis-aligned box, normalised to the image size.

    Example:
        >>> Box.from_yolo(0.5, 0.5, 0.2, 0.4).x1
        0.4
    """

    model_config = ConfigDict(frozen=True)

    x1: float
    y1: float
    x2: float
    y2: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f"box corners out of order: ({self.x1}, {self.y1}, {self.x2}, {self.y2})")
        return self

    @classmethod
    def from_yolo(cls, cx: float, cy: float, w: float, h: float) -> Box:
        """Build from YOLO centre/size coordinates."""
        return cls(x1=cx - w / 2, y1=cy - h / 2, x2=cx + w / 2, y2=cy + h / 2)

    @classmethod
    def from_points(cls, xs: Sequence[float], ys: Sequence[float]) -> Box:
        """The bounding box of a polygon (what a detector learns from a polygon label)."""
        return cls(x1=min(xs), y1=min(ys), x2=max(xs), y2=max(ys))

    @classmethod
    def from_pixels(cls, x1: float, y1: float, x2: float, y2: float, width: int, height: int) -> Box:
        """Normalise a pixel box by the image size."""
        return cls(x1=x1 / width, y1=y1 / height, x2=x2 / width, y2=y2 / height)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    def to_yolo(self) -> tuple[float, float, float, float]:
        """``(cx, cy, w, h)`` as a YOLO label row wants them."""
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2, self.width, self.height)

    def to_pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        """``(x1, y1, x2, y2)`` in pixels of an image of that size."""
        return (self.x1 * width, self.y1 * height, self.x2 * width, self.y2 * height)

    def min_side_px(self, width: int, height: int) -> float:
        """The shorter side in pixels: what decides whether a detector at a given input size can see it."""
        return min(self.width * width, self.height * height)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        iw = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        ih = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = iw * ih
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


class Annotation(BaseModel):
    """One labelled region of an image (ground truth)."""

    model_config = ConfigDict(frozen=True)

    label: str
    box: Box


class Detection(Annotation):
    """One region found by a detector, with its confidence in [0, 1]."""

    confidence: float = Field(ge=0.0, le=1.0)


class Verdict(BaseModel):
    """The answer for one photo: the damage classes found, or ``"None"``.

    Example:
        >>> Verdict.from_labels([]).value
        'None'
        >>> Verdict.from_labels(["dent", "scratch", "dent"]).value
        ['dent', 'scratch']
    """

    model_config = ConfigDict(frozen=True)

    labels: tuple[str, ...] = ()

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> Verdict:
        return cls(labels=tuple(sorted(set(labels))))

    @property
    def is_none(self) -> bool:
        return not self.labels

    @property
    def value(self) -> str | list[str]:
        """The stored form (prediction log rows, old and new): the string ``"None"`` or the list of class names."""
        return NONE_VERDICT if self.is_none else list(self.labels)

    @property
    def names(self) -> list[str]:
        """The answer's form, one type whatever was found: ``["None"]`` or the class names, sorted.

        Example:
            >>> Verdict.from_labels([]).names, Verdict.from_labels(["scratch", "dent"]).names
            (['None'], ['dent', 'scratch'])
        """
        return [NONE_VERDICT] if self.is_none else list(self.labels)


class DatasetRef(BaseModel):
    """A pointer to one immutable dataset version: what a training run records to be reproducible."""

    model_config = ConfigDict(frozen=True)

    name: str
    digest: str
    """sha256 of the version's canonical manifest; equal content gives an equal digest."""

    @property
    def short(self) -> str:
        return f"{self.name}@{self.digest[:12]}"


ONNX_INPUT = "images"
"""Input of every exported detector: float32 ``[N, 3, S, S]``, RGB scaled to [0, 1], letterboxed (see below)."""
ONNX_OUTPUT = "detections"
"""Output of every exported detector: float32 ``[N, K, 6]`` rows ``x1, y1, x2, y2, score, class_id`` in input
pixels, best first, score in [0, 1], class id a whole number in [0, C); rows with score 0 are padding. Rows may
overlap: the Detector applies class-wise NMS, so a backend may export with or without NMS in the graph."""
ONNX_PRESENCE = "presence"
"""Optional second output: float32 ``[N, C]``, per photo and class the probability in [0, 1] that the photo shows
that damage at all. A model that has it answers the verdict from it (see ``ModelMetadata.presence_thresholds``);
its boxes then locate the damage the verdict names."""
ONNX_METADATA_KEY = "autoinspect"
"""Key of the ONNX ``metadata_props`` entry that holds :class:`ModelMetadata` as JSON."""
LETTERBOX_FILL = 114
"""Grey (0-255) of the letterbox padding; the photo is resized to fit ``S`` keeping its aspect and centred,
as Ultralytics does, so every backend sees the same input."""
DECODE_MAX_SIDE = 2048
"""Long side of the photos the prediction path decodes (see :mod:`autoinspect.images`): 3x the largest model
input in use (640), so the model's own letterbox still resizes from more pixels than it keeps."""


class ModelMetadata(BaseModel):
    """What a served model needs to know about itself; stored inside the ONNX file and in the registry."""

    model_config = ConfigDict(frozen=True)

    classes: list[str]
    input_size: int
    """``S``: the square side of the letterboxed input."""
    backend: str
    """Which training backend produced it (``lite``, ``yolo``)."""
    precision: Literal["float32", "int8"] = "float32"
    """``int8``: a statically quantized variant of a float model (``autoinspect quantize``), same contract."""
    score_thresholds: dict[str, float]
    """Operating threshold per class: a detection below it is dropped (calibrated on val when registered)."""
    iou_threshold: float = 0.6
    """Class-wise NMS overlap above which the lower-scoring box is dropped."""
    presence_thresholds: dict[str, float] | None = None
    """Per class, the presence probability at which the verdict names it (calibrated on val); set only for a
    model with the ``presence`` output, which then decides the verdict instead of the best box score."""
    review_band: tuple[float, float] = (0.25, 0.6)
    """A photo needs a human look when any candidate (post-NMS, any score above the floor) scores in ``[lo, hi)``:
    a finding on weak evidence, or one just under its threshold. Presence models use ``review_margin`` instead
    once it is calibrated."""
    review_margin: float | None = Field(None, ge=0.0)
    """For a presence model: a photo needs a human look when a class's presence lies within this many logits of
    its threshold (either side). Calibrated on val so that a chosen share of photos is sent for review."""
