"""Figures of an evaluation, logged with the run: PR curves and the error gallery.

Drawn with matplotlib's non-interactive Agg canvas and Pillow, so they render on a server with no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from autoinspect.evaluation.error_cases import ErrorCase, ErrorKind
from autoinspect.evaluation.result import EvaluationResult

TILE = 320
COLUMNS = 4
COLOURS = {ErrorKind.MISSED: (255, 200, 0), ErrorKind.FALSE: (230, 40, 40), ErrorKind.FALSE_ON_CLEAN: (230, 40, 200)}


class Photo(Protocol):
    """Anything with the decoded photo (the pipeline's labelled photos)."""

    @property
    def rgb(self) -> npt.NDArray[np.uint8]: ...


def pr_curve_figure(result: EvaluationResult, out: Path) -> Path:
    """Precision-recall at IoU 0.5 per class, with each class's operating point marked."""
    figure = Figure(figsize=(6, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, curve in result.pr_curves.items():
        ap = result.detection.per_class[label].ap50
        axes.step(curve.recall, curve.precision, where="post", label=f"{label} (AP50 {ap or 0:.3f})")
        point = result.operating_point[label]
        if point.precision is not None and point.recall is not None:
            axes.plot(point.recall, point.precision, "o", color=axes.lines[-1].get_color())
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="PR at IoU 0.5 (dot: threshold)")
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    return out


def _tile(case: ErrorCase, photo: Photo) -> Image.Image:
    image = Image.fromarray(photo.rgb)
    width, height = image.size
    draw = ImageDraw.Draw(image)
    line = max(2, round(max(width, height) / 200))
    for error in case.boxes:
        x1, y1, x2, y2 = error.box.to_pixels(width, height)
        draw.rectangle((x1, y1, max(x2, x1 + line), max(y2, y1 + line)), outline=COLOURS[error.kind], width=line)
    image.thumbnail((TILE, TILE - 40))
    tile = Image.new("RGB", (TILE, TILE), (24, 24, 24))
    tile.paste(image, ((TILE - image.width) // 2, 0))
    caption = ImageDraw.Draw(tile)
    caption.text((6, TILE - 38), case.image_id[:48], fill=(230, 230, 230))
    caption.text((6, TILE - 22), ", ".join(case.kinds)[:52], fill=(255, 210, 120))
    return tile


def error_gallery(cases: Sequence[ErrorCase], photos: Mapping[str, Photo], out: Path, limit: int = 16) -> Path:
    """The worst photos with their missed (yellow) and false (red; magenta on clean cars) boxes."""
    shown = [case for case in cases if case.image_id in photos][:limit]
    rows = max(1, -(-len(shown) // COLUMNS))
    sheet = Image.new("RGB", (COLUMNS * TILE, rows * TILE), (24, 24, 24))
    for index, case in enumerate(shown):
        sheet.paste(_tile(case, photos[case.image_id]), ((index % COLUMNS) * TILE, (index // COLUMNS) * TILE))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
