"""A contact sheet: one PNG of labelled thumbnails, to eyeball a dataset before training on it.

Statistics miss what a glance catches: boxes shifted by a wrong coordinate convention, rotated photos, a class
swapped for another, clean cars that are not clean. The sheet draws each label box in its class colour with a
legend, captions every photo with its split, file name and verdict, and picks its sample so that clean photos
and every class appear even when one dominates the dataset.
"""

from __future__ import annotations

import logging
import math
import random
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from autoinspect.data.labels import ParsedLabels
from autoinspect.data.layout import DatasetLayout, LayoutItem
from autoinspect.domain import NONE_VERDICT, Box
from autoinspect.errors import ImageDecodeError
from autoinspect.images import decode_image

logger = logging.getLogger(__name__)

Colour = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

GAP = 6
"""Pixels between cells and around the sheet."""
CAPTION_HEIGHT = 30
"""Two caption lines under each thumbnail: ``split/file`` and the verdict."""
LEGEND_HEIGHT = 28
COLUMNS = 8
MIN_DRAWN_SIDE = 6
"""Boxes are drawn at least this many pixels wide: a third of the real scratches would shrink to a dot."""
FONT_SIZE = 11
BACKGROUND: Colour = (24, 24, 28)
TEXT: Colour = (230, 230, 230)
CLASS_COLOURS: tuple[Colour, ...] = (
    (255, 59, 48),
    (0, 199, 255),
    (255, 204, 0),
    (52, 199, 89),
    (255, 45, 200),
    (255, 149, 0),
)
"""Saturated, mutually distinct colours that stay visible on both pale and dark paint; reused cyclically."""


@dataclass(frozen=True)
class LabelledItem:
    """An image of a layout with its parsed label file."""

    item: LayoutItem
    labels: ParsedLabels


def class_colour(class_id: int) -> Colour:
    return CLASS_COLOURS[class_id % len(CLASS_COLOURS)]


def _grid_columns(n_images: int, columns: int) -> int:
    return max(1, min(columns, n_images))


def sheet_size(n_images: int, thumb: int, columns: int = COLUMNS) -> tuple[int, int]:
    """``(width, height)`` in pixels of a sheet of ``n_images`` cells."""
    cols = _grid_columns(n_images, columns)
    rows = math.ceil(n_images / cols)
    return (GAP + cols * (thumb + GAP), LEGEND_HEIGHT + GAP + rows * (thumb + CAPTION_HEIGHT + GAP))


def sample_items(entries: Sequence[LabelledItem], n_classes: int, max_images: int, seed: int) -> list[LabelledItem]:
    """Take images in turn from the clean bucket and from each class's bucket, each shuffled by ``seed``.

    Round-robin guarantees that clean photos and every class present are represented, however skewed the
    dataset; the result keeps the input order so that the sheet reads like the folder.
    """
    rng = random.Random(seed)
    present = [{row.class_id for row in entry.labels.rows} for entry in entries]
    buckets = [[i for i, ids in enumerate(present) if not ids]]
    buckets += [[i for i, ids in enumerate(present) if c in ids] for c in range(n_classes)]
    for bucket in buckets:
        rng.shuffle(bucket)
    chosen: set[int] = set()
    while len(chosen) < max_images and any(buckets):
        for bucket in buckets:
            while bucket and bucket[-1] in chosen:
                bucket.pop()
            if bucket and len(chosen) < max_images:
                chosen.add(bucket.pop())
    return [entries[i] for i in sorted(chosen)]


def _fit(text: str, draw: ImageDraw.ImageDraw, font: Font, width: int) -> str:
    """Shorten ``text`` from the left with an ellipsis until it fits (file names differ at their end)."""
    while text and draw.textlength(text, font=font) > width:
        text = "…" + text[2:]
    return text


def _verdict_text(labels: ParsedLabels, names: Sequence[str]) -> str:
    counts = [(name, sum(r.class_id == i for r in labels.rows)) for i, name in enumerate(names)]
    return ", ".join(f"{count} {name}" for name, count in counts if count) or NONE_VERDICT


def _outline(box: Box, width: int, height: int, left: int, top: int) -> tuple[float, float, float, float]:
    """Where to draw a box on a thumbnail, at least :data:`MIN_DRAWN_SIDE` wide so that tiny scratches show."""
    x1, y1, x2, y2 = box.to_pixels(width, height)
    half_w, half_h = max(x2 - x1, MIN_DRAWN_SIDE) / 2, max(y2 - y1, MIN_DRAWN_SIDE) / 2
    cx, cy = left + (x1 + x2) / 2, top + (y1 + y2) / 2
    return (cx - half_w, cy - half_h, cx + half_w - 1, cy + half_h - 1)  # PIL's end corner is inclusive


def _thumbnail(entry: LabelledItem, thumb: int, font: Font) -> Image.Image:
    """The photo fitted into a ``thumb`` square with its boxes drawn, or a tile saying why it is unreadable."""
    tile = Image.new("RGB", (thumb, thumb), BACKGROUND)
    draw = ImageDraw.Draw(tile)
    try:
        photo = Image.fromarray(decode_image(entry.item.image).rgb)
    except ImageDecodeError as exc:
        logger.warning("contact sheet: %s is unreadable: %s", entry.item.key, exc)
        reason = textwrap.fill(f"unreadable: {exc}", width=max(10, thumb // 7), max_lines=8)
        draw.multiline_text((4, 4), reason, fill=CLASS_COLOURS[0], font=font)
        return tile
    photo.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
    left, top = (thumb - photo.width) // 2, (thumb - photo.height) // 2
    tile.paste(photo, (left, top))
    for row in entry.labels.rows:
        draw.rectangle(
            _outline(row.box, photo.width, photo.height, left, top), outline=class_colour(row.class_id), width=2
        )
    return tile


def _legend(sheet: Image.Image, names: Sequence[str], caption: str, font: Font) -> None:
    draw = ImageDraw.Draw(sheet)
    x = GAP
    for class_id, name in enumerate(names):
        draw.rectangle((x, 9, x + 12, 21), fill=class_colour(class_id))
        draw.text((x + 17, 9), name, fill=TEXT, font=font)
        x += 17 + int(draw.textlength(name, font=font)) + 14
    draw.text((x + 10, 9), caption, fill=TEXT, font=font)


def contact_sheet(
    layout: DatasetLayout,
    out_png: Path,
    *,
    max_images: int = 48,
    thumb: int = 192,
    seed: int = 0,
    columns: int = COLUMNS,
    items: Sequence[LayoutItem] | None = None,
) -> Path:
    """Write a PNG grid of up to ``max_images`` labelled thumbnails of ``layout`` and return its path.

    The sample is deterministic for a given ``seed``; see :func:`sheet_size` for the grid geometry. Given
    ``items`` (e.g. the photos suspected of label errors, worst first), the sheet shows the first ``max_images``
    of them in that order instead of a sample.
    """
    names = layout.names
    pool = layout.items() if items is None else list(items)
    entries = [LabelledItem(item, item.read_labels(len(names))) for item in pool]
    chosen = sample_items(entries, len(names), max_images, seed) if items is None else entries[:max_images]
    sheet = Image.new("RGB", sheet_size(len(chosen), thumb, columns), BACKGROUND)
    font: Font = ImageFont.load_default(size=FONT_SIZE)
    _legend(sheet, names, f"{len(chosen)} of {len(pool)} images", font)
    draw = ImageDraw.Draw(sheet)
    cols = _grid_columns(len(chosen), columns)
    for index, entry in enumerate(chosen):
        x = GAP + (index % cols) * (thumb + GAP)
        y = LEGEND_HEIGHT + GAP + (index // cols) * (thumb + CAPTION_HEIGHT + GAP)
        sheet.paste(_thumbnail(entry, thumb, font), (x, y))
        draw.text((x, y + thumb + 2), _fit(entry.item.key, draw, font, thumb), fill=TEXT, font=font)
        verdict = _fit(_verdict_text(entry.labels, names), draw, font, thumb)
        draw.text((x, y + thumb + 15), verdict, fill=TEXT, font=font)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png, "PNG")
    logger.info("contact sheet of %d images written to %s", len(chosen), out_png)
    return out_png
