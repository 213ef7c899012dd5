"""The one way AutoInspect decodes a photo, so validation, features, training and serving see the same pixels.

Part of the core (no imports of other AutoInspect packages): the data stage and the inference stage both use it.

EXIF orientation is applied (as phone photos and Ultralytics expect: labels refer to the upright view), the
pixel count is checked from the header before decoding (decompression-bomb guard), and every failure becomes an
:class:`ImageDecodeError` whose message says what is wrong with the file.

Serving decodes at most :data:`~autoinspect.domain.DECODE_MAX_SIDE` pixels on the long side (``max_side``): a
model sees a few hundred, and a full-resolution frame costs memory for nothing (a 52 KB single-colour 6300 x 6300
PNG became 1.2 GB of frames and float planes in a server). JPEGs are then decoded at 1/2, 1/4 or 1/8 scale straight from
their DCT coefficients (libjpeg's draft mode), so the full frame never exists; other formats are decoded whole
and reduced at once. The pixel limit applies to the frame actually decoded.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from autoinspect.domain import LETTERBOX_FILL
from autoinspect.errors import ImageDecodeError, ImageTooLargeError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
EXIF_ORIENTATION_TAG = 0x0112
DEFAULT_MAX_PIXELS = 50_000_000
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> the transpose that makes the stored pixels upright (as ``ImageOps.exif_transpose``)."""
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
"""EXIF orientations that swap width and height."""


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image and what its file said about itself."""

    rgb: npt.NDArray[np.uint8]
    """H x W x 3, after EXIF orientation."""
    format: str
    """PIL's name of the encoding, e.g. ``JPEG``."""
    exif_orientation: int
    """1 means stored upright; 2-8 mean the pixels were flipped/rotated on load."""
    source_width: int
    """Of the photo in its file (upright): ``rgb`` is smaller when decoding was capped by ``max_side``."""
    source_height: int

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def decode_image(
    source: Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None
) -> DecodedImage:
    """Decode a file or an in-memory image, or raise :class:`ImageDecodeError` with the reason.

    With ``max_side`` the result's long side is at most that (smaller photos are untouched); without it the
    photo is decoded at full resolution (data checks, training and evaluation, whose photos are known).

    Example:
        >>> decode_image(b"not an image")
        Traceback (most recent call last):
        ...
        autoinspect.errors.ImageDecodeError: not a recognised image format
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    if isinstance(source, bytes) and not source:
        raise ImageDecodeError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                width, height = image.size
                if width == 0 or height == 0:
                    raise ImageDecodeError(f"image has no pixels ({width}x{height})")
                fmt = image.format or "unknown"
                orientation = int(image.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
                rgb = _decode_frame(image, orientation, max_pixels, max_side)
                if orientation in _QUARTER_TURNS:
                    width, height = height, width
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        raise ImageDecodeError("not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"decompression bomb: {exc}") from None
    except FileNotFoundError:
        raise ImageDecodeError("file not found") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from None
    return DecodedImage(rgb=rgb, format=fmt, exif_orientation=orientation, source_width=width, source_height=height)


def _decode_frame(image: Image.Image, orientation: int, max_pixels: int, max_side: int | None) -> npt.NDArray[np.uint8]:
    """The upright RGB pixels, at most ``max_side`` on the long side; the frame decoded is checked first."""
    width, height = image.size
    scale = max_side / max(width, height) if max_side else 1.0
    if scale < 1 and image.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale, never below the target size
        image.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
    frame_width, frame_height = image.size
    if frame_width * frame_height > max_pixels:
        raise ImageTooLargeError(
            f"{width}x{height} is {width * height:,} pixels, above the limit of {max_pixels:,}"
            + (f" (decoded at {frame_width}x{frame_height})" if image.size != (width, height) else "")
        )
    image.load()
    frame: Image.Image = image
    if scale < 1:
        if frame.mode not in ("RGB", "L", "RGBA", "LA"):  # palette and 16-bit frames resize only by nearest
            frame = frame.convert("RGB")
        fit = (max(1, round(width * scale)), max(1, round(height * scale)))
        frame = frame.resize(fit, Image.Resampling.BILINEAR)
    upright = frame.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else frame
    return np.asarray(upright.convert("RGB"), dtype=np.uint8)


@dataclass(frozen=True)
class Letterbox:
    """How a photo was placed into the square model input, to map boxes back to the photo."""

    scale: float
    pad_x: int
    pad_y: int


def letterbox(rgb: npt.NDArray[np.uint8], size: int) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Resize keeping the aspect ratio so the longer side is ``size``, centred on grey ``LETTERBOX_FILL``.

    Training, evaluation and serving all call this one function, so the model never sees pixels at serving
    time that were prepared differently from the ones it learned on.

    Example:
        >>> canvas, box = letterbox(np.zeros((50, 100, 3), dtype=np.uint8), 64)
        >>> canvas.shape, box
        ((64, 64, 3), Letterbox(scale=0.64, pad_x=0, pad_y=16))
    """
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BILINEAR) if scale != 1 else rgb
    canvas = np.full((size, size, 3), LETTERBOX_FILL, dtype=np.uint8)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = np.asarray(resized, dtype=np.uint8)
    return canvas, Letterbox(scale=scale, pad_x=pad_x, pad_y=pad_y)
