"""Boxes drawn on a photo with their label and confidence, as the inspector sees them: in the UI and in the
inspection report the API hands over, alike.

Detections arrive normalised to the photo's size, so they are scaled to the pixels of the image being drawn.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from autoinspect.domain import Annotation, Detection

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4")
"""One colour per class, in the order classes are first seen."""


def jpeg_data_url(image: Image.Image, side: int, quality: int) -> str:
    """``image`` shrunk to at most ``side`` on its longest side, as a JPEG ``data:`` URL: a photo embedded in a
    page or a report, with nothing to fetch from elsewhere."""
    image = image.convert("RGB")
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def class_colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per class name, by its place in ``names`` (the same on the photo drawn here and in the editor)."""
    return {name: COLOURS[index % len(COLOURS)] for index, name in enumerate(names)}


def draw_regions(photo: bytes, regions: Sequence[Annotation], classes: Sequence[str] = ()) -> Image.Image:
    """``photo`` (encoded bytes) as RGB with every region outlined and captioned ``label`` or ``label 0.87``."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    canvas = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, image.height // 30))
    width = max(2, min(image.size) // 150)
    palette = list(classes)
    placed: list[tuple[float, float, float, float]] = []
    for region in regions:
        if region.label not in palette:
            palette.append(region.label)
        colour = class_colours(palette)[region.label]
        box = region.box
        corners = (box.x1 * image.width, box.y1 * image.height, box.x2 * image.width, box.y2 * image.height)
        canvas.rectangle(corners, outline=colour, width=width)
        caption = f"{region.label} {region.confidence:.2f}" if isinstance(region, Detection) else region.label
        left, top, right, bottom = canvas.textbbox((corners[0], corners[1]), caption, font=font)
        lift = bottom - top + 2 * width
        anchor_y = corners[1] - lift if corners[1] >= lift else corners[1]
        label = _free_spot((left, anchor_y, right + 2 * width, anchor_y + lift), placed, image.height)
        placed.append(label)
        canvas.rectangle(label, fill=colour)
        canvas.text((corners[0] + width, label[1] + width), caption, fill="white", font=font)
    return image


def _free_spot(
    label: tuple[float, float, float, float], placed: Sequence[tuple[float, float, float, float]], height: int
) -> tuple[float, float, float, float]:
    """``label`` moved down, a caption's height at a time, until it covers no caption already drawn (two boxes of
    one class that overlap would otherwise print their captions on top of each other)."""
    left, top, right, bottom = label
    step = bottom - top

    def covers(other: tuple[float, float, float, float]) -> bool:
        return left < other[2] and other[0] < right and top < other[3] and other[1] < bottom

    while any(covers(other) for other in placed) and bottom + step <= height:
        top, bottom = top + step, bottom + step
    return left, top, right, bottom
