"""Photos as the model's input batch, and the inverse that puts boxes back on the photos.

The letterbox itself is the core's :func:`autoinspect.images.letterbox`, the one training uses too, so the model
sees at serving time exactly the pixels it learned on; this module only lays its canvases out as the contract's
float32 ``[N, 3, S, S]`` in [0, 1] and keeps what is needed to map boxes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autoinspect.images import Letterbox, letterbox

RGBImage = npt.NDArray[np.uint8]
"""H x W x 3, as :func:`autoinspect.images.decode_image` returns it."""
FloatArray = npt.NDArray[np.float32]

_MAX_VALUE = np.float32(255)


@dataclass(frozen=True, slots=True)
class LetterboxTransform:
    """Where a photo landed in the square input (``input = original * scale + pad``) and the photo's size."""

    placement: Letterbox
    width: int
    """Of the original photo, in pixels."""
    height: int

    def to_original(self, boxes: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Map ``[K, 4]`` ``x1, y1, x2, y2`` rows from input pixels to original pixels, clipped to the photo.

        Clipping loses nothing: whatever lies outside the photo is letterbox padding.
        """
        scale, pad_x, pad_y = self.placement.scale, self.placement.pad_x, self.placement.pad_y
        pixels = np.empty(boxes.shape, dtype=np.float64)
        pixels[:, 0::2] = np.clip((boxes[:, 0::2] - pad_x) / scale, 0, self.width)
        pixels[:, 1::2] = np.clip((boxes[:, 1::2] - pad_y) / scale, 0, self.height)
        return pixels


def letterbox_batch(images: Sequence[RGBImage], size: int) -> tuple[FloatArray, list[LetterboxTransform]]:
    """Photos of any sizes as one ``[N, 3, S, S]`` float32 batch in [0, 1], written in place (no stacking copy).

    Example:
        >>> batch, (transform,) = letterbox_batch([np.zeros((300, 600, 3), np.uint8)], 64)
        >>> batch.shape, transform.placement.pad_y, round(float(batch[0, 0, 0, 0]) * 255)
        ((1, 3, 64, 64), 16, 114)
    """
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    transforms = []
    for index, rgb in enumerate(images):
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise ValueError(f"expected an H x W x 3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        canvas, placement = letterbox(rgb, size)
        np.divide(canvas.transpose(2, 0, 1), _MAX_VALUE, out=batch[index])
        transforms.append(LetterboxTransform(placement=placement, width=int(rgb.shape[1]), height=int(rgb.shape[0])))
    return batch, transforms
