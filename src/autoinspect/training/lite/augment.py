"""Augmentations that suit small scratches: zoom-in crops (never shrinking), flips and colour jitter.

Photos are never downscaled below the model input (the letterbox only shrinks what is larger), because a
scratch a few pixels wide disappears when shrunk; zooming in instead makes the thin ones easier to learn.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance

from autoinspect.training.base import LiteConfig

MIN_VISIBLE = 0.3
"""A box cut by a crop is kept when at least this share of its area stays visible."""

Boxes = npt.NDArray[np.float32]
"""``M x 4`` pixel boxes ``x1, y1, x2, y2``."""


def _zoom_crop(
    rgb: npt.NDArray[np.uint8], boxes: Boxes, labels: npt.NDArray[np.int64], zoom: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.uint8], Boxes, npt.NDArray[np.int64]]:
    height, width = rgb.shape[:2]
    factor = rng.uniform(1.0, zoom)
    crop_w, crop_h = max(1, int(width / factor)), max(1, int(height / factor))
    x0 = int(rng.integers(0, width - crop_w + 1))
    y0 = int(rng.integers(0, height - crop_h + 1))
    cropped = rgb[y0 : y0 + crop_h, x0 : x0 + crop_w]
    moved = boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
    clipped = np.clip(moved, 0, [crop_w, crop_h, crop_w, crop_h]).astype(np.float32)
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (visible >= MIN_VISIBLE * np.maximum(area, 1e-6)) & (clipped[:, 2] - clipped[:, 0] >= 1)
    keep &= clipped[:, 3] - clipped[:, 1] >= 1
    return np.ascontiguousarray(cropped), clipped[keep], labels[keep]


def _colour(rgb: npt.NDArray[np.uint8], jitter: float, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    image = Image.fromarray(rgb)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(float(rng.uniform(1 - jitter, 1 + jitter)))
    return np.asarray(image, dtype=np.uint8)


def augment(
    rgb: npt.NDArray[np.uint8],
    boxes: Boxes,
    labels: npt.NDArray[np.int64],
    config: LiteConfig,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.uint8], Boxes, npt.NDArray[np.int64]]:
    """One random view of a training photo and its boxes (pixels of the returned image)."""
    if rng.random() < config.zoom_probability and config.zoom > 1:
        rgb, boxes, labels = _zoom_crop(rgb, boxes, labels, config.zoom, rng)
    if rng.random() < 0.5:
        width = rgb.shape[1]
        rgb = np.ascontiguousarray(rgb[:, ::-1])
        boxes = (
            np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
            .astype(np.float32)
            .reshape(-1, 4)
        )
    if config.colour_jitter > 0:
        rgb = _colour(rgb, config.colour_jitter, rng)
    return rgb, boxes, labels
