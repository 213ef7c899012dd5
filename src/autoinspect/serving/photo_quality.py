"""The photo-quality gate: photos that cannot support an answer get "retake" with the reasons, not a verdict.

A blurred, dark or blown-out photo does not show a scratch, so the model would answer "None" for it: the most
expensive wrong answer (a missed damage that the next customer is charged for). So each photo is measured before
the model runs, and one that fails a check is answered ``retake`` with every reason, in words the sender can act
on. The measures are taken on the photo box-averaged to :data:`MEASURE_SIDE` on its long side, so they do not depend
on the camera's resolution (the Laplacian's variance, the sharpness measure, grows when a photo is downscaled).

The thresholds live in ``quality_gate`` settings; their defaults were set so that no photo of the real sample is
refused while degraded copies of those photos are (``benchmarks/photo_quality.py`` measures both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from autoinspect.config import QualityGateSettings
from autoinspect.data.features import LUMA_WEIGHTS, laplacian_variance
from autoinspect.images import DecodedImage

MEASURE_SIDE = 256
"""Long side the photo is box-averaged to before measuring: JPEG's block noise, which survives a blur and would
pass for detail at full size, averages out, while a blur of a hundredth of the photo still shows."""
CLIPPED = 254
"""A pixel whose three channels all reach this is clipped to white: its detail is gone."""
CENTRE = (0.2, 0.8)
"""Glare is looked for in the middle of the photo (this span of each side), where the vehicle is: a studio shot's
white backdrop around the car is clipped too, and is no reason to retake."""
SOFTEN_SIGMA = 1.0
"""The blur (px, at :data:`MEASURE_SIDE`) applied to measure how much detail a photo still has to lose."""


@dataclass(frozen=True)
class PhotoQuality:
    """What the gate measured on one photo."""

    brightness: float
    """Mean luma, 0-1."""
    contrast: float
    """Standard deviation of luma, 0-1: a washed-out photo has little."""
    glare: float
    """Share of the photo's middle clipped to white."""
    blur: float
    """How little detail softening takes away: the Laplacian's variance after a slight blur over before it. A
    sharp photo loses most of its fine detail (a few %), an already blurred one hardly any (near 1). Unlike the
    Laplacian's variance itself, this does not call a sharp photo of smooth paint blurred."""
    short_side: int
    """The photo's shorter side in its file, in pixels."""


def measure(photo: DecodedImage) -> PhotoQuality:
    """Every measure from one copy of the photo box-averaged to :data:`MEASURE_SIDE` on its long side: one
    resample, a few milliseconds, on the request path before the model."""
    small = Image.fromarray(photo.rgb)
    small.thumbnail((MEASURE_SIDE, MEASURE_SIDE), Image.Resampling.BOX)
    weights = np.asarray(LUMA_WEIGHTS, dtype=np.float32)
    rgb = np.asarray(small)
    luma = rgb.astype(np.float32) @ weights
    softened = np.asarray(small.filter(ImageFilter.GaussianBlur(SOFTEN_SIGMA)), dtype=np.float32) @ weights
    height, width = luma.shape
    low, high = CENTRE
    middle = rgb[int(height * low) : int(height * high), int(width * low) : int(width * high)]
    clipped = (middle[..., 0] >= CLIPPED) & (middle[..., 1] >= CLIPPED) & (middle[..., 2] >= CLIPPED)
    return PhotoQuality(
        brightness=float(luma.mean()) / 255,
        contrast=float(luma.std()) / 255,
        glare=float(clipped.mean()) if middle.size else 0.0,
        blur=laplacian_variance(softened) / max(laplacian_variance(luma), 1e-6),
        short_side=min(photo.source_width, photo.source_height),
    )


def retake_reasons(quality: PhotoQuality, settings: QualityGateSettings) -> list[str]:
    """Why the photo cannot be answered (empty: it can), one sentence per failed check.

    Example:
        >>> ok = PhotoQuality(brightness=0.5, contrast=0.2, glare=0.0, blur=0.05, short_side=1080)
        >>> retake_reasons(ok, QualityGateSettings())
        []
        >>> retake_reasons(PhotoQuality(0.03, 0.01, 0.0, 0.05, 1080), QualityGateSettings())
        ['too dark: mean brightness 3% (at least 12%); use more light or the flash']
    """
    if not settings.enabled:
        return []
    reasons = []
    if quality.short_side < settings.min_short_side:
        reasons.append(
            f"too small: {quality.short_side} px on the short side (at least {settings.min_short_side}); "
            "send the camera's original photo"
        )
    if quality.brightness < settings.min_brightness:
        reasons.append(
            f"too dark: mean brightness {quality.brightness:.0%} (at least {settings.min_brightness:.0%}); "
            "use more light or the flash"
        )
    elif quality.brightness > settings.max_brightness and quality.contrast < settings.min_contrast:
        reasons.append(
            f"overexposed: mean brightness {quality.brightness:.0%} with little contrast left; avoid direct "
            "sunlight or lower the exposure"
        )
    if quality.glare > settings.max_glare:
        reasons.append(
            f"heavy glare: {quality.glare:.0%} of the middle of the photo is blown out to white (at most "
            f"{settings.max_glare:.0%}); change the angle to the light"
        )
    if quality.blur > settings.max_blur:
        reasons.append(
            f"blurred: the photo has little fine detail (blur {quality.blur:.2f}, at most {settings.max_blur:.2f}); "
            "hold the camera still and focus on the vehicle"
        )
    return reasons
