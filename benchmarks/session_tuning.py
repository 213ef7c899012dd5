"""ONNX Runtime session options on the served model, each measured against the default session in the same run.

Run: ``.venv/bin/python benchmarks/session_tuning.py [--model M.onnx] [--imgsz 384] [--seconds 8]``: about two
minutes on 2 cores. Without ``--model``, the default recipe's graph (untrained heads, as in ``quantization.py``)
and its int8 variant are both measured.

Each variant is one :class:`onnxruntime.InferenceSession` answering letterboxed test photos at batch 1 from
``callers`` threads for ``--seconds`` (closed loop: each caller sends its next photo when the last is answered),
the variants taking turns in rounds so that a drift in the machine's speed hits all of them. Reported: photos per
second and the ratio to the default session at the same number of callers. Variants:

- ``default``: what :class:`~autoinspect.inference.Detector` opens (all graph optimisations, one intra-op thread per
  core, memory arena on, sequential execution);
- ``basic`` / ``extended`` graph optimisation instead of all;
- ``1 thread``: one intra-op thread per run, so concurrent requests run side by side instead of each splitting
  every operator over both cores (the serving choice between ``serving.inference_threads`` and
  ``serving.max_concurrent_runs``);
- ``no arena``: the CPU memory arena off (less memory held between requests, more allocations);
- ``letterbox``: how long preparing the input takes beside a run, to judge whether a pre-processing pool could pay.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from autoinspect.domain import ONNX_INPUT
from autoinspect.inference import letterbox_batch, read_metadata
from autoinspect.inference.model_file import DEFAULT_PROVIDERS
from autoinspect.training.base import TrainConfig
from autoinspect.training.quantization import quantize_model
from inference_speed import DEFAULT_DATA, export_default_graph, pick_photos
from machine_guard import MachineGuard, add_strict_flag, settle

ROUNDS = 3
CALLERS = (1, 2)


def variants() -> dict[str, Callable[[], ort.SessionOptions]]:
    """Session options by name; each call builds fresh options."""

    def options(
        level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        threads: int | None = None,
        arena: bool = True,
    ) -> Callable[[], ort.SessionOptions]:
        def build() -> ort.SessionOptions:
            built = ort.SessionOptions()
            built.graph_optimization_level = level
            if threads is not None:
                built.intra_op_num_threads = threads
            built.enable_cpu_mem_arena = arena
            return built

        return build

    return {
        "default": options(),
        "basic graph optimisation": options(level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
        "extended graph optimisation": options(level=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
        "1 thread per run": options(threads=1),
        "no memory arena": options(arena=False),
    }


def throughput(session: ort.InferenceSession, inputs: list[np.ndarray], callers: int, seconds: float) -> float:
    """Photos per second answered by ``callers`` threads in a closed loop for ``seconds``."""
    deadline = time.perf_counter() + seconds
    counts = [0] * callers

    def call(index: int) -> None:
        turn = index
        while time.perf_counter() < deadline:
            session.run(None, {ONNX_INPUT: inputs[turn % len(inputs)]})
            counts[index] += 1
            turn += callers

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def measure(model: Path, photos: list[np.ndarray], seconds: float) -> dict[tuple[str, int], list[float]]:
    """Photos per second per (variant, callers), one figure per round."""
    size = read_metadata(model).input_size
    inputs = [letterbox_batch([photo], size)[0] for photo in photos]
    sessions = {
        name: ort.InferenceSession(str(model), build(), providers=DEFAULT_PROVIDERS)
        for name, build in variants().items()
    }
    for session in sessions.values():
        session.run(None, {ONNX_INPUT: inputs[0]})  # warm-up
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(ROUNDS):
        for callers in CALLERS:
            for name, session in sessions.items():
                rates.setdefault((name, callers), []).append(throughput(session, inputs, callers, seconds))
    return rates


def letterbox_ms(photos: list[np.ndarray], size: int) -> float:
    """Median milliseconds to letterbox one photo into the input batch."""
    timings = []
    for photo in photos:
        started = time.perf_counter()
        letterbox_batch([photo], size)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported model; default: the default graph and its int8")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--imgsz", type=int, default=TrainConfig.model_fields["imgsz"].default)
    parser.add_argument("--seconds", type=float, default=4.0, help="per variant, callers count and round")
    parser.add_argument("--images", type=int, default=8)
    add_strict_flag(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    photos = pick_photos(args.data, args.images)
    with tempfile.TemporaryDirectory(prefix="autoinspect-session-") as tmp:
        folder = Path(tmp)
        if args.model:
            models = {args.model.name: args.model}
        else:
            source = export_default_graph(folder, args.imgsz)
            calibration, _ = letterbox_batch(photos, args.imgsz)  # the timed photos: a speed figure only
            quantize_model(source, [calibration[i : i + 1] for i in range(len(photos))], folder / "int8.onnx")
            models = {"float32": source, "int8": folder / "int8.onnx"}
        guard = MachineGuard()
        results = {name: measure(path, photos, args.seconds) for name, path in models.items()}
        machine = guard.finish()
    mark = settle(machine, strict=args.strict)
    print(
        f"{len(photos)} test photos at batch 1, {ROUNDS} rounds of {args.seconds:.0f} s per variant and callers count, "
        f"cores: {os.cpu_count()}, onnxruntime {ort.__version__}; letterbox {letterbox_ms(photos, args.imgsz):.1f} ms "
        "a photo on the request thread"
    )
    print("| model | session | callers | photos/s (median of rounds) | ratio to default |")
    print("|---|---|---|---|---|")
    for model, rates in results.items():
        for callers in CALLERS:
            reference = statistics.median(rates[("default", callers)])
            for name in variants():
                rate = statistics.median(rates[(name, callers)])
                print(f"| {model}{mark} | {name} | {callers} | {rate:.1f} | {rate / reference:.2f} |")


if __name__ == "__main__":
    main()
