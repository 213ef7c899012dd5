"""Deterministic synthetic "painted car panel" photos with scratches and dents, and their YOLO labels.

Real photos cannot be committed (licences, size), yet tests, smoke runs and the embedded demo need a dataset
that exercises every stage in seconds. These panels have what matters to a damage detector: a paint colour with
a smooth gradient, a specular highlight band, sensor noise, sometimes a panel seam (an unlabelled line a
detector must learn to ignore); scratches are thin jagged strokes, dents are elliptical concavities shaded by a
directional light. Labels are the tight boxes of the pixels each drawing actually changed, so they are
exact by construction. The :class:`SyntheticStyle` knobs (brightness, blur, noise) shift the photo statistics
on purpose, for drift tests.

The same seed gives byte-identical files: every image draws from its own generator seeded by
``(seed, index)``, so one image does not depend on how many others were drawn before it.

Example:
    >>> rgb, regions = generate_image(np.random.default_rng(1), size=(64, 48), damaged=False)
    >>> rgb.shape, regions
    ((48, 64, 3), [])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from autoinspect.data.features import LUMA_WEIGHTS
from autoinspect.data.labels import format_yolo_labels
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Box, Split
from autoinspect.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

Canvas = npt.NDArray[np.float32]
"""H x W x 3 float image in grey levels, drawn on in place before the final rounding to uint8."""
Point = tuple[float, float]

DEFAULT_CLASSES = ("scratch", "dent")
DEFAULT_SPLITS: Mapping[Split, float] = MappingProxyType({Split.TRAIN: 0.6, Split.VAL: 0.2, Split.TEST: 0.2})
JPEG_QUALITY = 92
SUPERSAMPLE = 4
"""Strokes are drawn at this multiple of the resolution and box-filtered down: PIL lines are not anti-aliased."""
VISIBLE_CHANGE = 4.0
"""Grey levels a drawing must change a pixel by for that pixel to count as damage in the label box."""

PAINT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (236, 237, 239),  # white
    (192, 195, 199),  # silver
    (112, 116, 121),  # gunmetal grey
    (30, 31, 34),  # black
    (158, 22, 30),  # red
    (28, 58, 122),  # blue
    (32, 72, 52),  # dark green
    (201, 186, 152),  # beige
)
"""The common car colours; each panel jitters one of them."""


class SyntheticStyle(BaseModel):
    """Photo-level knobs; the defaults look like a clean, well-lit close-up."""

    model_config = ConfigDict(frozen=True)

    brightness_shift: float = Field(0.0, ge=-255.0, le=255.0)
    """Grey levels added to every pixel: an exposure change for brightness drift."""
    blur_radius: float = Field(0.0, ge=0.0)
    """Gaussian blur radius in pixels over the finished photo: focus or motion blur for sharpness drift."""
    noise_level: float = Field(2.0, ge=0.0)
    """Standard deviation of the Gaussian sensor noise, in grey levels."""
    seam_probability: float = Field(0.5, ge=0.0, le=1.0)
    """Chance of a panel seam, an unlabelled line that must not be mistaken for a scratch."""
    max_regions: int = Field(3, ge=1)
    """A damaged photo gets between 1 and this many scratches and dents."""


def _luma(rgb: npt.NDArray[np.float32]) -> float:
    return float(np.dot(rgb, LUMA_WEIGHTS))


def _paint(rng: np.random.Generator, width: int, height: int) -> Canvas:
    """A panel: jittered paint colour, a directional gradient, curvature falloff and a highlight band."""
    base = np.array(PAINT_COLOURS[rng.integers(len(PAINT_COLOURS))], dtype=np.float32)
    base = np.clip(base + rng.normal(0.0, 6.0, 3).astype(np.float32), 0, 255)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    xx /= max(width - 1, 1)
    yy /= max(height - 1, 1)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = math.cos(angle) * (xx - 0.5) + math.sin(angle) * (yy - 0.5)
    curve = (yy - rng.uniform(0.2, 0.8)) ** 2
    shade = 1.0 + rng.uniform(0.15, 0.35) * ramp - rng.uniform(0.1, 0.3) * curve
    canvas: Canvas = (base * shade[..., None]).astype(np.float32)
    tilt = rng.uniform(-0.45, 0.45)
    distance = (yy - rng.uniform(0.15, 0.85)) * math.cos(tilt) - (xx - 0.5) * math.sin(tilt)
    band = np.exp(-((distance / rng.uniform(0.03, 0.1)) ** 2)) * rng.uniform(0.25, 0.6)
    canvas += (255.0 - canvas) * band[..., None]
    return canvas


def _stroke_alpha(points: Sequence[Point], line_width: float, width: int, height: int) -> tuple[Canvas, int, int]:
    """Anti-aliased coverage (0-1) of a polyline, over the window of the image it touches.

    Returns the alpha plane and the window's top-left corner; the window is empty when the line lies outside.
    """
    margin = line_width + 2
    x0 = max(0, math.floor(min(p[0] for p in points) - margin))
    y0 = max(0, math.floor(min(p[1] for p in points) - margin))
    x1 = min(width, math.ceil(max(p[0] for p in points) + margin))
    y1 = min(height, math.ceil(max(p[1] for p in points) + margin))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), dtype=np.float32), 0, 0
    mask = Image.new("L", ((x1 - x0) * SUPERSAMPLE, (y1 - y0) * SUPERSAMPLE), 0)
    scaled = [((x - x0) * SUPERSAMPLE, (y - y0) * SUPERSAMPLE) for x, y in points]
    ImageDraw.Draw(mask).line(scaled, fill=255, width=round(line_width * SUPERSAMPLE), joint="curve")
    small = mask.resize((x1 - x0, y1 - y0), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0, x0, y0


def _blend(canvas: Canvas, alpha: Canvas, x0: int, y0: int, colour: npt.NDArray[np.float32]) -> None:
    window = canvas[y0 : y0 + alpha.shape[0], x0 : x0 + alpha.shape[1]]
    window += (colour - window) * alpha[..., None]


def _draw_seam(rng: np.random.Generator, canvas: Canvas) -> None:
    """A panel gap: a dark line with a light lip beside it, edge to edge, nearly horizontal or vertical."""
    height, width = canvas.shape[:2]
    start, end = rng.uniform(0.1, 0.9, 2)
    wobble = rng.uniform(-0.05, 0.05)
    if rng.random() < 0.5:
        line = [
            (-2.0, start * height),
            (width / 2, (start + end) / 2 * height + wobble * height),
            (width + 2.0, end * height),
        ]
        lip = [(x, y + 2.0) for x, y in line]
    else:
        line = [
            (start * width, -2.0),
            ((start + end) / 2 * width + wobble * width, height / 2),
            (end * width, height + 2.0),
        ]
        lip = [(x + 2.0, y) for x, y in line]
    for points, colour, strength in ((lip, 255.0, 0.35), (line, 10.0, 0.8)):
        alpha, x0, y0 = _stroke_alpha(points, 1.5, width, height)
        _blend(canvas, alpha * strength, x0, y0, np.full(3, colour, dtype=np.float32))


def _draw_scratch(rng: np.random.Generator, canvas: Canvas) -> None:
    """A jagged stroke 20-120 px long and 1-3 px wide, sometimes with parallel companions (a key or a brush
    scores several lines at once): light where the clear coat is scored, dark where primer shows through."""
    height, width = canvas.shape[:2]
    length = rng.uniform(20, 120)
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    heading = rng.uniform(0, 2 * math.pi)
    n_segments = max(4, round(length / 6))
    step = length / n_segments
    points = [(x, y)]
    for _ in range(n_segments):
        heading += rng.normal(0, 0.12)
        x += step * math.cos(heading) + rng.normal(0, 1.0)
        y += step * math.sin(heading) + rng.normal(0, 1.0)
        points.append((x, y))
    paint_luma = _luma(canvas[min(int(points[0][1]), height - 1), min(int(points[0][0]), width - 1)])
    grey = rng.uniform(205, 250) if paint_luma < rng.uniform(90, 180) else rng.uniform(30, 75)
    normal = (-math.sin(heading), math.cos(heading))
    companions = rng.choice(3, p=[0.7, 0.2, 0.1])
    for offset in np.cumsum(np.r_[0.0, rng.uniform(2.5, 6.0, companions)]):
        shifted = [(px + offset * normal[0], py + offset * normal[1]) for px, py in points]
        alpha, x0, y0 = _stroke_alpha(shifted, rng.uniform(1, 3), width, height)
        strength = rng.uniform(0.6, 0.95) * rng.uniform(0.75, 1.0, alpha.shape).astype(np.float32)
        _blend(canvas, alpha * strength, x0, y0, np.full(3, grey, dtype=np.float32))


def _draw_dent(rng: np.random.Generator, canvas: Canvas) -> None:
    """An elliptical concavity: the depth ``(1 - r²)²`` lit from one side, so one half darkens and the other
    brightens, fading to nothing at the rim (a soft edge, as a real dent has)."""
    height, width = canvas.shape[:2]
    semi_major = rng.uniform(0.04, 0.14) * min(width, height)
    semi_minor = semi_major * rng.uniform(0.5, 1.0)
    cx, cy = rng.uniform(semi_major, width - semi_major), rng.uniform(semi_major, height - semi_major)
    x0, x1 = max(0, math.floor(cx - semi_major)), min(width, math.ceil(cx + semi_major) + 1)
    y0, y1 = max(0, math.floor(cy - semi_major)), min(height, math.ceil(cy + semi_major) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rotation = rng.uniform(0, math.pi)
    cos_r, sin_r = math.cos(rotation), math.sin(rotation)
    u = (xx - cx) * cos_r + (yy - cy) * sin_r
    v = -(xx - cx) * sin_r + (yy - cy) * cos_r
    falloff = np.clip(1.0 - (u / semi_major) ** 2 - (v / semi_minor) ** 2, 0.0, None)
    d_du = -4.0 * falloff * u / semi_major**2
    d_dv = -4.0 * falloff * v / semi_minor**2
    light = rng.uniform(0, 2 * math.pi)
    d_dx = d_du * cos_r - d_dv * sin_r
    d_dy = d_du * sin_r + d_dv * cos_r
    shading = d_dx * math.cos(light) + d_dy * math.sin(light)
    peak = float(np.abs(shading).max())
    if peak == 0.0:
        return
    canvas[y0:y1, x0:x1] += (rng.uniform(25, 55) * shading / peak)[..., None]


RENDERERS: Mapping[str, Callable[[np.random.Generator, Canvas], None]] = MappingProxyType(
    {"scratch": _draw_scratch, "dent": _draw_dent}
)
"""How each known class name is drawn; a generated dataset may use any subset, in any id order."""


def _changed_box(before: Canvas, after: Canvas) -> Box | None:
    """The tight box of the pixels that a drawing visibly changed, or ``None`` if it changed none."""
    changed = np.abs(np.clip(after, 0, 255) - np.clip(before, 0, 255)).max(axis=2) >= VISIBLE_CHANGE
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return None
    height, width = changed.shape
    return Box.from_pixels(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1, width, height)


def _finish(canvas: Canvas, noise: Canvas, style: SyntheticStyle) -> npt.NDArray[np.uint8]:
    """Camera effects over the drawn scene: blur (optics) first, then exposure and sensor noise."""
    rgb = np.clip(canvas, 0, 255).round().astype(np.uint8)
    if style.blur_radius > 0:
        blurred = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(style.blur_radius))
        rgb = np.asarray(blurred, dtype=np.uint8)
    return np.clip(rgb + noise * style.noise_level + style.brightness_shift, 0, 255).round().astype(np.uint8)


def _check_classes(classes: Sequence[str]) -> None:
    unknown = [name for name in classes if name not in RENDERERS]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise ConfigError(
            f"classes must be unique names out of {sorted(RENDERERS)}, got {list(classes)}"
            + (f" ({unknown} cannot be drawn)" if unknown else "")
        )


def generate_image(
    rng: np.random.Generator,
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    size: tuple[int, int] = (320, 320),
    damaged: bool = True,
    style: SyntheticStyle = SyntheticStyle(),  # noqa: B008 - frozen, so a shared default is safe
) -> tuple[npt.NDArray[np.uint8], list[tuple[str, Box]]]:
    """Draw one panel of ``size = (width, height)``; damaged panels get scratches and dents of ``classes``.

    Returns the RGB array and one ``(class name, box)`` per drawn region. A region that ended up invisible
    (e.g. a light scratch on white paint) is not labelled, so a damaged panel can rarely come back clean.
    The panel, seam and sensor noise are drawn before any damage, so two generators in the same state give
    the same photo with and without damage: a pair that isolates the damage exactly.

    Raises:
        ConfigError: a class name has no renderer.
    """
    _check_classes(classes)
    width, height = size
    canvas = _paint(rng, width, height)
    if rng.random() < style.seam_probability:
        _draw_seam(rng, canvas)
    noise = rng.standard_normal(canvas.shape, dtype=np.float32)
    regions: list[tuple[str, Box]] = []
    for _ in range(rng.integers(1, style.max_regions + 1) if damaged else 0):
        name = classes[int(rng.integers(len(classes)))]
        before = canvas.copy()
        RENDERERS[name](rng, canvas)
        box = _changed_box(before, canvas)
        if box is not None:
            regions.append((name, box))
    return _finish(canvas, noise, style), regions


def _split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder rounding: counts that sum to ``n`` and are each within 1 of ``n * fraction``."""
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _plan(
    n_images: int, seed: int, clean_fraction: float, splits: Mapping[Split, float] | None
) -> list[tuple[Split | None, bool]]:
    """``(split, damaged)`` per image index: an exact clean share, spread evenly across splits."""
    rng = np.random.default_rng(seed)
    clean = set(rng.permutation(n_images)[: round(n_images * clean_fraction)].tolist())
    plan: list[tuple[Split | None, bool]] = [(None, i not in clean) for i in range(n_images)]
    if splits is None:
        return plan
    for group in (sorted(clean), sorted(set(range(n_images)) - clean)):
        order = rng.permutation(group).tolist()
        counts = _split_counts(len(order), list(splits.values()))
        for split, count in zip(splits, counts, strict=True):
            for index in order[:count]:
                plan[index] = (split, index not in clean)
            order = order[count:]
    return plan


def _check_arguments(n_images: int, clean_fraction: float, splits: Mapping[Split, float] | None) -> None:
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    if not 0.0 <= clean_fraction <= 1.0:
        raise ValueError(f"clean_fraction must be in [0, 1], got {clean_fraction}")
    if splits is not None and (any(f < 0 for f in splits.values()) or abs(sum(splits.values()) - 1) > 1e-6):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {dict(splits)}")


def generate_dataset(
    out_root: Path,
    n_images: int,
    *,
    seed: int = 0,
    classes: Sequence[str] = DEFAULT_CLASSES,
    size: tuple[int, int] = (320, 320),
    clean_fraction: float = 0.25,
    splits: Mapping[Split, float] | None = DEFAULT_SPLITS,
    style: SyntheticStyle = SyntheticStyle(),  # noqa: B008 - frozen, so a shared default is safe
) -> DatasetLayout:
    """Write ``n_images`` synthetic panels in the canonical layout (``synth_00012.jpg`` + YOLO label file).

    ``splits`` maps each split to its share (``None`` writes every image unsplit under ``images/``); clean
    and damaged images are split separately so that every split gets its share of both. Clean panels get an
    empty label file. ``out_root`` must not already hold images, so two runs are never mixed.

    Raises:
        ConfigError: a class name has no renderer.
        ValueError: an argument is out of range.
        DataFormatError: ``out_root`` already holds images or a ``data.yaml`` with other classes.
    """
    _check_classes(classes)
    _check_arguments(n_images, clean_fraction, splits)
    images_dir = out_root / "images"
    if images_dir.is_dir() and any(images_dir.iterdir()):
        raise DataFormatError(f"{images_dir} is not empty; generate into a new folder")
    layout = DatasetLayout.create(out_root, list(classes))
    class_ids = {name: i for i, name in enumerate(classes)}
    plan = _plan(n_images, seed, clean_fraction, splits)
    for index, (split, damaged) in enumerate(tqdm(plan, desc="synthetic", unit="img", disable=None)):
        rgb, regions = generate_image(
            np.random.default_rng([seed, index]), classes=classes, size=size, damaged=damaged, style=style
        )
        name = f"synth_{index:05d}.jpg"
        image_path = layout.image_dir(split) / name
        label_path = layout.label_path(split, name)
        image_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(image_path, "JPEG", quality=JPEG_QUALITY)
        label_path.write_text(format_yolo_labels((class_ids[n], box) for n, box in regions), encoding="utf-8")
    logger.info("wrote %d synthetic images (seed %d) to %s", n_images, seed, out_root)
    return layout
