"""The photo-quality gate on real photos and on degraded copies of them: how many of each it refuses.

Run: ``.venv/bin/python benchmarks/photo_quality.py [--data ../shared/data/car-damage-full] [--every 4]``: about a
minute on 2 cores. Every photo of every split is measured and checked at the default ``quality_gate`` settings (the
target is none refused); then every ``--every``-th photo is degraded five ways (blurred, darkened, overexposed, a
glare patch, shrunk to a thumbnail) and each copy is checked (the target is all refused, for the right reason).
Prints the distribution of each measure on the real photos, which is how the defaults were chosen.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter
from tqdm import tqdm

from autoinspect.config import QualityGateSettings
from autoinspect.images import decode_image
from autoinspect.serving.photo_quality import PhotoQuality, measure, retake_reasons

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "car-damage-full"
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def blurred(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(max(image.size) / 150))


def darkened(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(0.12)


def overexposed(image: Image.Image) -> Image.Image:
    return Image.blend(image, Image.new("RGB", image.size, "white"), 0.85)


def glare(image: Image.Image) -> Image.Image:
    copy = image.copy()
    width, height = copy.size
    ImageDraw.Draw(copy).ellipse((width * 0.1, height * 0.1, width * 0.9, height * 0.9), fill="white")
    return copy


def thumbnail(image: Image.Image) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((100, 100))
    return copy


DEGRADATIONS: dict[str, tuple[Callable[[Image.Image], Image.Image], str]] = {
    "blurred": (blurred, "blurred"),
    "darkened": (darkened, "too dark"),
    "overexposed": (overexposed, "overexposed"),
    "glare patch": (glare, "heavy glare"),
    "thumbnail": (thumbnail, "too small"),
}
"""Each degradation and the reason it must be refused for."""


def encoded(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--every", type=int, default=4, help="degrade every N-th photo")
    args = parser.parse_args()
    settings = QualityGateSettings()
    paths = sorted(p for p in (args.data / "images").rglob("*") if p.suffix.lower() in SUFFIXES)
    started = time.perf_counter()
    measured: list[tuple[Path, PhotoQuality]] = []
    for path in tqdm(paths, desc="real photos", unit="photo"):
        measured.append((path, measure(decode_image(path.read_bytes()))))
    refused = [(path, retake_reasons(quality, settings)) for path, quality in measured]
    refused = [(path, reasons) for path, reasons in refused if reasons]
    caught: dict[str, list[bool]] = {name: [] for name in DEGRADATIONS}
    for path in tqdm(paths[:: args.every], desc="degraded copies", unit="photo"):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        for name, (degrade, reason) in DEGRADATIONS.items():
            reasons = retake_reasons(measure(decode_image(encoded(degrade(image)))), settings)
            caught[name].append(any(text.startswith(reason) for text in reasons))
    elapsed = time.perf_counter() - started
    print(f"data: {args.data} ({len(paths)} photos, every split); {elapsed:.0f} s on this machine")
    print()
    print("| measure on real photos | min | 1 % | 5 % | median | 95 % | max | default limit |")
    print("|---|---|---|---|---|---|---|---|")
    limits = {
        "brightness": f">= {settings.min_brightness}; > {settings.max_brightness} only with contrast",
        "contrast": f">= {settings.min_contrast} when bright",
        "glare": f"<= {settings.max_glare}",
        "blur": f"<= {settings.max_blur}",
        "short_side": f">= {settings.min_short_side}",
    }
    for field, limit in limits.items():
        values = np.array([getattr(quality, field) for _, quality in measured], dtype=np.float64)
        cells = " | ".join(f"{v:.3g}" for v in np.percentile(values, [0, 1, 5, 50, 95, 100]))
        print(f"| {field} | {cells} | {limit} |")
    print()
    print(f"real photos refused: {len(refused)} of {len(paths)}")
    for path, reasons in refused[:10]:
        print(f"  {path.name}: {'; '.join(reasons)}")
    print()
    print("| degraded copy | refused for that reason |")
    print("|---|---|")
    for name, hits in caught.items():
        print(f"| {name} | {sum(hits)} of {len(hits)} ({np.mean(hits):.0%}) |")


if __name__ == "__main__":
    main()
