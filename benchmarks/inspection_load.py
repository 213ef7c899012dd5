"""A 12-photo vehicle inspection through the API against the bare Detector on the same 12 photos.

Run: ``.venv/bin/python benchmarks/inspection_load.py [--model PATH] [--data ../shared/data/car-damage]
[--photos 12] [--inspections 6] [--callers 1 2]``: about 2 minutes on 2 cores.

Same set-up as ``serve_load.py`` (its helpers: a temporary home with the model registered and promoted, ``autoinspect
serve`` as a subprocess on loopback, stopped with SIGINT). One inspection is one ``POST /v1/inspections`` with
``--photos`` photos and a view each; the reference is the bare :class:`~autoinspect.inference.Detector` answering
the same photos one by one (``predict_bytes``) in this process. The sides take turns, inspection by inspection,
so a drift in the machine's speed hits both; at 2 callers, two inspections run at once on each side. The ratio API
/ Detector is what an inspection adds around the model: one multipart body of all photos, decoding, drift
features, the image store, the prediction log, the vehicle summary and the stored inspection.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from autoinspect.inference import Detector
from inference_speed import DEFAULT_DATA, export_lite
from machine_guard import MachineGuard, add_strict_flag, settle
from serve_load import (
    HOST,
    REQUEST_TIMEOUT_S,
    describe_photos,
    isolate_environment,
    peak_rss_mb,
    pick_photo_bytes,
    prepare_home,
    running_server,
)

logger = logging.getLogger("inspection_load")

VIEWS = ("front", "rear", "left", "right")


def api_inspection(url: str, token: str, photos: Sequence[bytes]) -> Callable[[int], float]:
    """One inspection per call, each on its own keep-alive connection; returns its wall time in ms."""

    def inspect(number: int) -> float:
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S * len(photos), connect=5.0)
        files = [("images", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
        fields = {"vehicle_id": f"bench-{number}", "views": [VIEWS[i % len(VIEWS)] for i in range(len(photos))]}
        with httpx.Client(base_url=url, headers={"X-API-Key": token}, timeout=timeout, trust_env=False) as client:
            started = time.perf_counter()
            response = client.post("/v1/inspections", files=files, data=fields)
            elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"inspection {number}: HTTP {response.status_code}: {response.text[:200]}")
        return elapsed

    return inspect


def detector_inspection(detector: Detector, photos: Sequence[bytes]) -> Callable[[int], float]:
    def inspect(_number: int) -> float:
        started = time.perf_counter()
        for data in photos:
            detector.predict_bytes(data)
        return (time.perf_counter() - started) * 1000

    return inspect


def run(sides: dict[str, Callable[[int], float]], inspections: int, callers: int) -> dict[str, list[float]]:
    """``inspections`` per side, ``callers`` at a time, the sides taking turns batch by batch."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    with ThreadPoolExecutor(max_workers=callers) as pool:
        for start in range(0, inspections, callers):
            numbers = range(start, min(inspections, start + callers))
            for name, inspect in sides.items():
                times[name] += list(pool.map(inspect, numbers))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported detector; default: the lite graph, exported now")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--inspections", type=int, default=6, help="per side and per caller count")
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 2])
    add_strict_flag(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    photos, source = pick_photo_bytes(args.data, args.photos)
    rows = []
    with tempfile.TemporaryDirectory(prefix="autoinspect-inspection-load-") as tmp:
        folder = Path(tmp)
        isolate_environment(folder)
        model = args.model.resolve() if args.model else export_lite(folder)
        reference = Detector(model)
        token = prepare_home(folder / "home", model, reference.metadata, reference.thresholds)
        with running_server(folder / "home", folder / "server.log") as server:
            guard = MachineGuard([server.pid])
            sides = {
                "detector": detector_inspection(reference, photos),
                "api": api_inspection(server.url, token, photos),
            }
            run(sides, 1, 1)  # warm-up: sessions, connections, the first stored inspection
            for callers in args.callers:
                times = run(sides, args.inspections, callers)
                rows.append((callers, times))
            machine = guard.finish()
            memory = f"peak memory: server {peak_rss_mb(server.pid)}"
    print(f"model: {args.model or 'lite graph (untrained head), exported now'}; photos: {describe_photos(photos)}")
    print(f"source: {source}; server on {HOST}; {args.inspections} inspections per side and caller count")
    print(memory)
    mark = settle(machine, strict=args.strict)
    print()
    print("| callers | Detector ms / inspection, p50 | API ms, p50 | API / Detector | API inspections/s |")
    print("|---|---|---|---|---|")
    for callers, times in rows:
        local, remote = statistics.median(times["detector"]), statistics.median(times["api"])
        rate = callers * 1000 / statistics.mean(times["api"])
        print(f"| {callers}{mark} | {local:.0f} | {remote:.0f} | {remote / local:.2f} | {rate:.2f} |")


if __name__ == "__main__":
    main()
