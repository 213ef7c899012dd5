"""What one ``/v1/inspect`` request costs the service besides the model: each per-photo step timed on its own.

Run: ``.venv/bin/python benchmarks/request_costs.py [--data ../shared/data/car-damage] [--images 16] [--repeats 5]``:
a few seconds. The steps are the ones :mod:`autoinspect.serving.inspection` runs on the request path around the
model: decoding the upload, the photo-quality gate's measures, the drift features logged with the answer, and
the content hash of the image store. Median milliseconds per photo over the test photos, inside the machine guard.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoinspect.config import ServingSettings
from autoinspect.images import DecodedImage, decode_image
from autoinspect.monitoring.features import live_features
from autoinspect.serving.photo_quality import measure
from inference_speed import DEFAULT_DATA
from machine_guard import MachineGuard, add_strict_flag, settle


def median_ms(step: Callable[[Any], object], inputs: list[Any], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        for item in inputs:
            started = time.perf_counter()
            step(item)
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    add_strict_flag(parser)
    args = parser.parse_args()
    serving = ServingSettings()
    paths = sorted((args.data / "images" / "test").iterdir())
    uploads = [path.read_bytes() for path in paths[:: max(1, len(paths) // args.images)][: args.images]]

    def decode(data: bytes) -> DecodedImage:
        return decode_image(data, max_pixels=serving.max_pixels, max_side=serving.max_side)

    photos = [decode(data) for data in uploads]
    guard = MachineGuard()
    rows = {
        "decode the upload": median_ms(decode, uploads, args.repeats),
        "photo-quality gate (measure)": median_ms(measure, photos, args.repeats),
        "drift features (live_features)": median_ms(live_features, photos, args.repeats),
        "image store hash (sha256)": median_ms(lambda data: hashlib.sha256(data).hexdigest(), uploads, args.repeats),
    }
    mark = settle(guard.finish(), strict=args.strict)
    print(f"{len(uploads)} test photos from {args.data}, {args.repeats} repeats")
    print("| step | ms per photo, median |")
    print("|---|---|")
    for name, value in rows.items():
        print(f"| {name}{mark} | {value:.2f} |")


if __name__ == "__main__":
    main()
