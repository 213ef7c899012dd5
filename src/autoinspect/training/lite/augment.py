"""Augmentations that suit small scratches: crops at the serving scale, flips and colour jitter.

Training on whole photos letterboxed to a small side shrinks a hairline scratch out of sight, and training on
whole photos at the serving side costs four times as much per photo on a CPU. So each training view is a
``crop`` x ``crop`` window cut from the photo *at the scale the Detector will serve it at* (the letterbox scale
``imgsz / longer side``, jittered a little): the model learns scratches at the size it will meet them, and the
fully convolutional detector then runs on the whole letterboxed photo. Most windows are placed over a random
damage box (anywhere inside the window, not always centred), the rest anywhere, so clean paint is seen too.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance

from autoinspect.domain import LETTERBOX_FILL
from autoinspect.training.base import LiteConfig

MIN_VISIBLE = 0.3
"""A box cut by a crop is kept when at least this share of its area stays visible."""

Boxes = npt.NDArray[np.float32]
"""``M x 4`` pixel boxes ``x1, y1, x2, y2``."""
Labels = npt.NDArray[np.int64]


def _window_start(extent: int, window: int, centre: float | None, rng: np.random.Generator) -> int:
    """Where a window of ``window`` px starts along an axis of ``extent`` px; over ``centre`` when given (anywhere
    in the window's middle 80 %, so damage is not always in the middle)."""
    if extent <= window:
        return 0
    if centre is None:
        return int(rng.integers(0, extent - window + 1))
    start = centre - rng.uniform(0.1, 0.9) * window
    return int(np.clip(round(start), 0, extent - window))


def crop_at_serving_scale(
    rgb: npt.NDArray[np.uint8],
    boxes: Boxes,
    labels: Labels,
    imgsz: int,
    config: LiteConfig,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.uint8], Boxes, Labels]:
    """A ``crop`` x ``crop`` view at the Detector's scale for an ``imgsz`` model (grey padding where the photo is
    smaller than the window), with the boxes that stay at least :data:`MIN_VISIBLE` visible."""
    crop = config.crop or imgsz
    height, width = rgb.shape[:2]
    jitter = math.log1p(config.scale_jitter)
    scale = imgsz / max(height, width) * math.exp(rng.uniform(-jitter, jitter))
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR), dtype=np.uint8)
    scaled = (boxes * np.array([new_w / width, new_h / height] * 2, dtype=np.float32)).astype(np.float32)
    focus = scaled[int(rng.integers(len(scaled)))] if len(scaled) and rng.random() < config.focus_probability else None
    x0 = _window_start(new_w, crop, None if focus is None else float(focus[0] + focus[2]) / 2, rng)
    y0 = _window_start(new_h, crop, None if focus is None else float(focus[1] + focus[3]) / 2, rng)
    window = resized[y0 : y0 + crop, x0 : x0 + crop]
    canvas = np.full((crop, crop, 3), LETTERBOX_FILL, dtype=np.uint8)
    canvas[: window.shape[0], : window.shape[1]] = window
    moved = scaled - np.array([x0, y0, x0, y0], dtype=np.float32)
    limits = np.array([window.shape[1], window.shape[0]] * 2, dtype=np.float32)
    clipped = np.clip(moved, 0, limits).astype(np.float32)
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (visible >= MIN_VISIBLE * np.maximum(area, 1e-6)) & (clipped[:, 2] - clipped[:, 0] >= 1)
    keep &= clipped[:, 3] - clipped[:, 1] >= 1
    return canvas, clipped[keep], labels[keep]


def _colour(rgb: npt.NDArray[np.uint8], jitter: float, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    image = Image.fromarray(rgb)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(float(rng.uniform(1 - jitter, 1 + jitter)))
    return np.asarray(image, dtype=np.uint8)


def hflip(rgb: npt.NDArray[np.uint8], boxes: Boxes) -> tuple[npt.NDArray[np.uint8], Boxes]:
    """Mirror a photo and its boxes left to right."""
    width = rgb.shape[1]
    mirrored = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    return np.ascontiguousarray(rgb[:, ::-1]), mirrored.astype(np.float32).reshape(-1, 4)


def augment(
    rgb: npt.NDArray[np.uint8],
    boxes: Boxes,
    labels: Labels,
    imgsz: int,
    config: LiteConfig,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.uint8], Boxes, Labels]:
    """One random training view of a photo and its boxes (pixels of the returned image)."""
    rgb, boxes, labels = crop_at_serving_scale(rgb, boxes, labels, imgsz, config, rng)
    if rng.random() < 0.5:
        rgb, boxes = hflip(rgb, boxes)
    if config.colour_jitter > 0:
        rgb = _colour(rgb, config.colour_jitter, rng)
    return rgb, boxes, labels
