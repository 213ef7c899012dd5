"""What the write-ahead journal costs a request: time spent in ``BackgroundWriter.submit`` with and without it.

Run: ``.venv/bin/python benchmarks/journal_cost.py [--entries 5000] [--repeats 5]``: a few seconds.

Both writers store into their own SQLite file in a temporary folder, and the two sides take turns, repeat after
repeat, so a drift in the machine's speed hits both. Only the request side is timed (the submits), since that is
what an answer waits for; the database writes run on the writer's own thread either way.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from autoinspect.domain import Box, Detection
from autoinspect.store import BackgroundWriter, PredictionEntry, PredictionLog, Route, create_schema, make_engine
from machine_guard import MachineGuard, add_strict_flag, settle


def entries(count: int, prefix: str) -> list[PredictionEntry]:
    """Entries as the service logs them: a verdict, one box, the drift features."""
    box = [Detection(label="scratch", box=Box(x1=0.1, y1=0.2, x2=0.3, y2=0.4), confidence=0.61)]
    features = {"brightness": 0.41, "contrast": 0.2, "sharpness": 120.5, "width": 4032, "height": 3024}
    now = datetime.now(UTC)
    return [
        PredictionEntry(
            request_id=f"{prefix}-{index}",
            created_at=now,
            model_version="3",
            route=Route.CHAMPION,
            verdict=["scratch"],
            detections=box,
            needs_review=False,
            max_score=0.61,
            latency_ms=180.0,
            features=features,
            image_sha256="ab" * 32,
        )
        for index in range(count)
    ]


def submit_seconds(folder: Path, batch: list[PredictionEntry], *, journal: bool) -> float:
    engine = make_engine(f"sqlite:///{folder / 'log.db'}")
    create_schema(engine)
    with BackgroundWriter(
        PredictionLog(engine), queue_size=len(batch), batch_size=200, spill_path=folder / "spill.jsonl", journal=journal
    ) as writer:
        started = time.perf_counter()
        for entry in batch:
            writer.submit(entry)
        seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    add_strict_flag(parser)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    guard = MachineGuard()
    with tempfile.TemporaryDirectory(prefix="autoinspect-journal-") as tmp:
        for repeat in range(args.repeats):
            for journal in (False, True):
                folder = Path(tmp) / f"{repeat}-{journal}"
                folder.mkdir()
                batch = entries(args.entries, f"{repeat}-{journal}")
                times[journal].append(submit_seconds(folder, batch, journal=journal) / args.entries * 1e6)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.entries} submits per side, median of {args.repeats} repeats, sides taking turns")
    mark = settle(guard.finish(), strict=args.strict)
    print()
    print("| writer | µs per submit (median) | ratio |")
    print("|---|---:|---:|")
    print(f"| queue only (before){mark} | {off:.1f} | 1.00 |")
    print(f"| journal + queue (now){mark} | {on:.1f} | {on / off:.2f} |")


if __name__ == "__main__":
    main()
