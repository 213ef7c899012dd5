"""Peak memory of the prediction API under hostile photos at concurrency 8: today's decode limits against the
limits before them (full-resolution decoding, 40 MP, no decode budget), each on its own server in the same run.

Run: ``.venv/bin/python benchmarks/serving_memory.py [--rounds 3] [--concurrency 8]``: about 3 minutes on 2 cores.

The server is the real one (``autoinspect serve`` in a subprocess on 127.0.0.1, the lite graph registered as
champion, as in ``serve_load.py``). Its resident memory is read from ``/proc/<pid>/status`` every 20 ms: idle
after one ordinary photo, the peak while ``concurrency`` callers send the hostile mix below round after round,
and what stays after. Photos that the limits refuse cost their header read only; the table says how each
photo was answered.
"""

from __future__ import annotations

import argparse
import io
import logging
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from autoinspect.inference import Detector
from inference_speed import export_lite
from serve_load import REQUEST_TIMEOUT_S, isolate_environment, prepare_home, running_server

logger = logging.getLogger("serving_memory")

SAMPLE_SECONDS = 0.02
BEFORE = {
    "AUTOINSPECT_SERVING__MAX_PIXELS": "40000000",
    "AUTOINSPECT_SERVING__MAX_SIDE": "1000000",
    "AUTOINSPECT_SERVING__MAX_CONCURRENT_DECODES": "1000",
}
"""The limits before this benchmark's change: a 40 MP pixel limit, every photo decoded at full resolution, and
as many frames decoding at once as requests arrive."""


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    files: int = 1
    """Photos in the request (``/v1/inspect/batch`` when more than one)."""


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=90) if fmt == "JPEG" else image.save(buffer, format=fmt)
    return buffer.getvalue()


def hostile_mix() -> list[Hostile]:
    """Small files that decode to big frames, and big phone photos."""
    rng = np.random.default_rng(0)
    phone = Image.fromarray(
        np.kron(rng.integers(0, 255, (189, 252, 3), dtype=np.uint8), np.ones((16, 16, 1), np.uint8))
    )
    bomb = _encoded(Image.new("L", (6300, 6300), 128), "PNG")
    return [
        Hostile("6300x6300 one-colour PNG (the reported one)", bomb),
        Hostile("4 x the same PNG in one batch", bomb, files=4),
        Hostile("5000x4000 one-colour PNG (20 MP)", _encoded(Image.new("RGB", (5000, 4000), (90, 90, 90)), "PNG")),
        Hostile("8000x6000 one-colour JPEG (48 MP)", _encoded(Image.new("RGB", (8000, 6000), (90, 90, 90)), "JPEG")),
        Hostile("4032x3024 phone-size JPEG (12 MP)", _encoded(phone, "JPEG")),
    ]


class RssSampler:
    """Samples a process's resident memory on a thread; ``peak_mb`` is the largest sample since the last reset."""

    def __init__(self, pid: int) -> None:
        self._path = Path(f"/proc/{pid}/status")
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now_mb(self) -> float:
        for line in self._path.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS in {self._path}")

    def reset(self) -> None:
        self._peak = 0

    @property
    def peak_mb(self) -> float:
        return max(self._peak, self.now_mb())

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._peak = max(self._peak, self.now_mb())

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def send(client: httpx.Client, token: str, photo: Hostile) -> int:
    headers = {"X-API-Key": token}
    if photo.files == 1:
        return client.post("/v1/inspect", files={"image": ("p", photo.data)}, headers=headers).status_code
    files = [("images", (f"p{i}", photo.data)) for i in range(photo.files)]
    return client.post("/v1/inspect/batch", files=files, headers=headers).status_code


@dataclass(frozen=True)
class Outcome:
    idle_mb: float
    peak_mb: float
    after_mb: float
    seconds: float
    statuses: Counter[tuple[str, int]]
    """How many times each photo got each status code."""


def measure(url: str, pid: int, token: str, mix: list[Hostile], concurrency: int, rounds: int) -> Outcome:
    """Idle, peak and after figures of one server, and the status codes each photo got."""
    statuses: Counter[tuple[str, int]] = Counter()
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        send(client, token, mix[-1])  # one ordinary photo: the model's sessions and arenas are warm
    sampler = RssSampler(pid)
    idle = sampler.now_mb()
    with sampler.running():
        sampler.reset()
        lock = threading.Lock()

        def caller(offset: int) -> None:
            with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
                for step in range(rounds * len(mix)):
                    photo = mix[(offset + step) % len(mix)]
                    status = send(client, token, photo)
                    with lock:
                        statuses[(photo.name, status)] += 1

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(concurrency)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        peak = sampler.peak_mb
    time.sleep(1.0)
    return Outcome(idle, peak, sampler.now_mb(), seconds, statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="times each caller sends the whole mix")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mix = hostile_mix()
    results: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="autoinspect-serving-memory-") as tmp:
        folder = Path(tmp)
        isolate_environment(folder)
        model = export_lite(folder)
        reference = Detector(model)
        token = prepare_home(folder / "home", model, reference.metadata, reference.thresholds)
        sides: Mapping[str, Mapping[str, str]] = {"before (full decode, 40 MP)": BEFORE, "now (defaults)": {}}
        for label, settings in sides.items():
            with running_server(folder / "home", folder / f"{len(results)}.log", settings) as server:
                results[label] = measure(server.url, server.pid, token, mix, args.concurrency, args.rounds)
    print(f"concurrency {args.concurrency}, {args.rounds} rounds of the mix per caller; RSS of the server process")
    print()
    print("| limits | idle MB | peak MB | peak above idle MB | after MB | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, row in results.items():
        figures = (row.idle_mb, row.peak_mb, row.peak_mb - row.idle_mb, row.after_mb, row.seconds)
        print(f"| {label} | " + " | ".join(f"{figure:.0f}" for figure in figures) + " |")
    print()
    for label, row in results.items():
        answered = "; ".join(f"{name}: {status} x{count}" for (name, status), count in sorted(row.statuses.items()))
        print(f"{label}: {answered}")


if __name__ == "__main__":
    main()
