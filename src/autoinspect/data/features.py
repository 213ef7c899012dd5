"""Per-image quality features and per-image box statistics, shared by profiling and monitoring.

Profiling computes these on a dataset version; monitoring computes the *same* numbers on live photos and
compares the two distributions for drift. Keeping one implementation here, with numpy as its only dependency,
is what makes that comparison meaningful: a feature that changed definition between the two would look like
drift. Everything is computed on the RGB array exactly as decoded (no resize), in well under 10 ms for a
640 x 640 photo.

Example:
    >>> import numpy as np
    >>> grey = np.full((8, 8, 3), 128, dtype=np.uint8)
    >>> f = image_features(grey)
    >>> round(f.brightness), f.saturation, f.sharpness
    (128, 0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autoinspect.domain import Box

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights, the luma that JPEG itself uses, so brightness matches what the encoder saw."""

Plane = npt.NDArray[np.float32]
"""One H x W channel as float32."""

FeatureValue = float | int | str | None
"""A cell of a feature table: numbers, or ``None`` where a statistic is undefined (no boxes)."""


@dataclass(frozen=True, slots=True)
class ImageFeatures:
    """Photometric and geometric features of one photo; all drift-comparable across datasets and traffic."""

    brightness: float
    """Mean luma, 0-255: dark garages and overexposed sunlight both hurt detection."""
    contrast: float
    """Standard deviation of luma: flat, hazy photos hide shallow dents."""
    sharpness: float
    """Variance of the 3 x 3 Laplacian of luma: low means blur or motion.

    Resolution dependent (downscaling a photo raises it, since edges get steeper per pixel), so compare it
    only between photos of similar size; it is computed on the image as given, never resized."""
    saturation: float
    """Mean HSV saturation, 0-1: near 0 for grey-scale or washed-out photos."""
    colorfulness: float
    """Hasler-Süsstrunk colourfulness (0 for grey, ~100+ for vivid scenes): catches colour casts and filters."""
    width: int
    height: int
    aspect: float
    """width / height."""


@dataclass(frozen=True, slots=True)
class BoxFeatures:
    """Statistics of the labelled (or detected) regions of one photo.

    The size statistics are ``None``, not NaN, when there are no boxes: ``None`` survives JSON (the
    prediction log, reports) and pandas still reads it as a missing value, while NaN would need special casing
    in every serialiser.
    """

    n_boxes: int
    class_counts: Mapping[str, int]
    """Boxes per class name, every class of the dataset present (0 when absent), in class-id order."""
    min_box_side_px: float | None
    """The shortest box side in pixels: small scratches are what a detector misses first."""
    median_box_side_px: float | None
    """Median over boxes of each box's shorter side in pixels."""
    mean_box_area_fraction: float | None
    """Mean box area as a fraction of the image area."""


def _check_rgb(rgb: npt.NDArray[np.uint8]) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB array, got shape {rgb.shape} dtype {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"image has no pixels: shape {rgb.shape}")


def laplacian_variance(luma: Plane) -> float:
    """Variance of the 4-neighbour Laplacian over the interior pixels (0 for images under 3 x 3)."""
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    centre = luma[1:-1, 1:-1]
    laplacian = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * centre
    return float(laplacian.var())


def _saturation(red: Plane, green: Plane, blue: Plane) -> float:
    """Mean of HSV saturation ``(max - min) / max``, with black pixels counted as unsaturated."""
    high = np.maximum(np.maximum(red, green), blue)
    chroma = high - np.minimum(np.minimum(red, green), blue)
    saturation = np.divide(chroma, high, out=np.zeros_like(chroma), where=high > 0)
    return float(saturation.mean())


def _colorfulness(red: Plane, green: Plane, blue: Plane) -> float:
    """Hasler & Süsstrunk (2003) colourfulness from the opponent channels rg and yb."""
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = np.hypot(rg.std(), yb.std())
    offset = np.hypot(rg.mean(), yb.mean())
    return float(spread + 0.3 * offset)


def image_features(rgb: npt.NDArray[np.uint8]) -> ImageFeatures:
    """Compute the quality features of one decoded photo (H x W x 3, uint8, RGB).

    Raises:
        ValueError: the array is not an RGB uint8 image with at least one pixel.
    """
    _check_rgb(rgb)
    # Contiguous float planes: the per-channel arithmetic below runs several times faster than on H x W x 3.
    red, green, blue = np.ascontiguousarray(np.moveaxis(rgb, 2, 0), dtype=np.float32)
    luma = LUMA_WEIGHTS[0] * red + LUMA_WEIGHTS[1] * green + LUMA_WEIGHTS[2] * blue
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    return ImageFeatures(
        brightness=float(luma.mean()),
        contrast=float(luma.std()),
        sharpness=laplacian_variance(luma),
        saturation=_saturation(red, green, blue),
        colorfulness=_colorfulness(red, green, blue),
        width=width,
        height=height,
        aspect=width / height,
    )


def box_features(boxes: Sequence[tuple[str, Box]], width: int, height: int, classes: Sequence[str]) -> BoxFeatures:
    """Summarise the regions of one photo of ``width`` x ``height`` pixels.

    ``classes`` names every class of the dataset so that each gets a count column, even at 0; the caller
    passes them (from ``data.yaml`` or settings) because no class name is hard-coded here.

    Raises:
        ValueError: a box names a class that is not in ``classes``.

    Example:
        >>> f = box_features([("dent", Box(x1=0, y1=0, x2=0.5, y2=0.25))], 100, 100, ["scratch", "dent"])
        >>> dict(f.class_counts), f.min_box_side_px, f.mean_box_area_fraction
        ({'scratch': 0, 'dent': 1}, 25.0, 0.125)
    """
    counts = dict.fromkeys(classes, 0)
    for name, _ in boxes:
        if name not in counts:
            raise ValueError(f"box class {name!r} is not one of {list(classes)}")
        counts[name] += 1
    if not boxes:
        return BoxFeatures(0, counts, None, None, None)
    sides = np.array([box.min_side_px(width, height) for _, box in boxes])
    areas = np.array([box.area for _, box in boxes])
    return BoxFeatures(
        n_boxes=len(boxes),
        class_counts=counts,
        min_box_side_px=float(sides.min()),
        median_box_side_px=float(np.median(sides)),
        mean_box_area_fraction=float(areas.mean()),
    )


def feature_row(image: ImageFeatures, boxes: BoxFeatures | None = None) -> dict[str, FeatureValue]:
    """Flatten the features into one table row (``n_<class>`` per class); live photos have no ``boxes``.

    Example:
        >>> row = feature_row(image_features(np.zeros((4, 6, 3), dtype=np.uint8)))
        >>> row["width"], row["aspect"]
        (6, 1.5)
    """
    row: dict[str, FeatureValue] = {
        "brightness": image.brightness,
        "contrast": image.contrast,
        "sharpness": image.sharpness,
        "saturation": image.saturation,
        "colorfulness": image.colorfulness,
        "width": image.width,
        "height": image.height,
        "aspect": image.aspect,
    }
    if boxes is not None:
        row["n_boxes"] = boxes.n_boxes
        row.update({f"n_{name}": count for name, count in boxes.class_counts.items()})
        row["min_box_side_px"] = boxes.min_box_side_px
        row["median_box_side_px"] = boxes.median_box_side_px
        row["mean_box_area_fraction"] = boxes.mean_box_area_fraction
    return row
