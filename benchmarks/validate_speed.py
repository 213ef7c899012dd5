"""How long validation of the real sample takes, against the floor of merely decoding every photo.

Run: ``.venv/bin/python benchmarks/validate_speed.py [--data ../shared/data/car-damage] [--repeats 5]``

Both are timed in the same process, alternating, so the ratio holds even when the machine's speed drifts.
The reference decodes each JPEG with Pillow on one thread; validation also hashes, computes features and
perceptual hashes under 8 flips/rotations, parses labels and runs every check (threads = CPU cores).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path

from PIL import Image

from autoinspect.config import Settings
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.validation import validate_layout
from machine_guard import MachineGuard, add_strict_flag, settle

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage"


def decode_all(layout: DatasetLayout) -> float:
    started = time.perf_counter()
    for item in layout.items():
        with Image.open(item.image) as image:
            image.convert("RGB").load()
    return time.perf_counter() - started


def validate_once(layout: DatasetLayout, settings: Settings) -> float:
    started = time.perf_counter()
    validate_layout(layout, settings)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    add_strict_flag(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ["TQDM_DISABLE"] = "1"
    layout = DatasetLayout(args.data)
    settings = Settings(home=Path("/tmp/autoinspect-bench"))
    validate_once(layout, settings)  # warm the page cache and imports
    decode, validate = [], []
    guard = MachineGuard()
    for _ in range(args.repeats):
        decode.append(decode_all(layout))
        validate.append(validate_once(layout, settings))
    ratios = [v / d for v, d in zip(validate, decode, strict=True)]
    machine = guard.finish()
    images = len(layout.items())
    print(f"images: {images}, cores: {os.cpu_count()}, threads: {settings.worker_count}, repeats: {args.repeats}")
    mark = settle(machine, strict=args.strict)
    print("| figure | median | min | max |")
    print("|---|---|---|---|")
    for label, values in (("decode only, 1 thread (s)", decode), ("validate (s)", validate)):
        print(f"| {label}{mark} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    print(f"| validate / decode{mark} | {statistics.median(ratios):.2f} | {min(ratios):.2f} | {max(ratios):.2f} |")
    print(f"| validate images/s{mark} | {images / statistics.median(validate):.0f} | | |")


if __name__ == "__main__":
    main()
