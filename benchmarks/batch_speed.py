"""Sharded batch inference (``autoinspect batch``, the batch DAG's steps) against the bare Detector, in photos/s.

Run: ``.venv/bin/python benchmarks/batch_speed.py [--model PATH] [--data ../shared/data/car-damage] [--photos 64]
[--shard-size 16] [--object-storage] [--strict]``: about 3 minutes on 2 cores. ``--object-storage`` puts the
photos, shard files and merged predictions in S3 (moto's server on loopback, in the benchmark's process).

The same photo files (real test photos, copied to a temporary folder) go through three paths:

- the reference: one :class:`~autoinspect.inference.Detector` (default threads) calling ``predict_file`` on each
  file, loaded before the clock starts;
- the local runner, ``run_batch`` as ``autoinspect batch`` calls it: plan the shards, pin the registry's champion,
  download and load it, predict shard after shard, write and merge the shard files; timed end to end;
- one and two shard workers, as mapped Airflow tasks on one machine: processes sharing its cores (2 threads for
  one, 1 each for two), running ``predict_shard`` on every N-th shard; timed from the first photo to the last
  (the processes' start-up is reported apart).

Every path's figure is its photos/s over the reference's, measured before and after the others (the mean of both);
the model is the default recipe's graph at 384 px (``inference_speed.export_default_graph``) unless ``--model``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from autoinspect.config import Settings, StorageSettings
from autoinspect.inference import Detector
from autoinspect.pipelines.batch_inference import merge_shards, plan_shards, predict_shard, run_batch
from inference_speed import DEFAULT_DATA, DEFAULT_IMGSZ, export_default_graph
from machine_guard import MachineGuard, add_strict_flag, settle
from serve_load import isolate_environment, prepare_home

logger = logging.getLogger("batch_speed")


@dataclass(frozen=True)
class PathTiming:
    path: str
    photos: int
    seconds: float
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.photos / self.seconds


def copy_photos(data: Path, count: int, folder: Path) -> list[Path]:
    """``count`` test photos spread over the sorted names, copied into ``folder``."""
    source = sorted(p for p in (data / "images" / "test").iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    if not source:
        raise SystemExit(f"no JPEG photos under {data / 'images' / 'test'}")
    step = max(1, len(source) // count)
    folder.mkdir(parents=True)
    return [Path(shutil.copy2(path, folder / path.name)) for path in source[::step][:count]]


def time_reference(model: Path, files: list[Path]) -> PathTiming:
    detector = Detector(model)
    detector.predict_file(files[0])  # first run allocates
    started = time.perf_counter()
    for path in files:
        detector.predict_file(path)
    return PathTiming("bare Detector, one after the other", len(files), time.perf_counter() - started)


def time_runner(settings: Settings, source: str, files: list[Path], shard_size: int, out: Path) -> PathTiming:
    started = time.perf_counter()
    folder = source if source.startswith("s3://") else Path(source)
    summary = run_batch(settings, folder, shard_size=shard_size, out=out)
    seconds = time.perf_counter() - started
    assert summary.files == len(files) and summary.errors == 0, summary
    label = f"`autoinspect batch` (local runner, shards of {shard_size}, model from the registry)"
    return PathTiming(label, len(files), seconds, "end to end: registry download, load, predict, merge")


def _worker(args: tuple[Settings, str, int, list[list[str]], str]) -> tuple[float, float, list[str]]:
    """One shard worker: a Detector of ``threads`` threads, then its shards; when its first and last photo ran."""
    settings, model, threads, shards, out = args
    detector = Detector(Path(model), intra_op_threads=threads)
    started = time.time()
    parts = [predict_shard(settings, files, out_dir=out, detector=detector) for files in shards]
    return started, time.time(), parts


def time_workers(settings: Settings, model: Path, source: str, shard_size: int, out: str, workers: int) -> PathTiming:
    """``workers`` processes sharing the cores (``cores // workers`` threads each), every ``workers``-th shard."""
    shards = plan_shards(source if source.startswith("s3://") else Path(source), shard_size,
                         endpoint_url=settings.storage.s3_endpoint_url)  # fmt: skip
    threads = max(1, (os.cpu_count() or 1) // workers)
    jobs = [(settings, str(model), threads, shards[worker::workers], f"{out}/parts") for worker in range(workers)]
    launched = time.time()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_worker, jobs)
    first, last = min(r[0] for r in results), max(r[1] for r in results)
    summary = merge_shards([p for r in results for p in r[2]], f"{out}/merged.jsonl", settings)
    assert summary.errors == 0, summary
    label = f"{workers} shard worker{'s' if workers > 1 else ''} ({threads} thread{'s' if threads > 1 else ''} each)"
    return PathTiming(label, summary.files, last - first, f"start-up before the first photo {first - launched:.1f} s")


@contextmanager
def photo_bucket(files: list[Path], settings: Settings) -> Iterator[tuple[Settings, str, str]]:
    """moto's S3 server on loopback holding the photos: settings pointing at it, the photos' prefix, a results
    prefix. The server runs in this process, so its CPU counts as the benchmark's own."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    for name, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
        os.environ[name] = value
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the S3 server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint)
        for bucket in ("intake", "results"):
            client.create_bucket(Bucket=bucket)
        for path in files:
            client.upload_file(str(path), "intake", f"photos/{path.name}")
        remote = settings.model_copy(update={"storage": StorageSettings(s3_endpoint_url=endpoint)})
        yield remote, "s3://intake/photos", "s3://results/run"
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported detector; default: the lite graph, exported now")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument(
        "--object-storage", action="store_true", help="photos and results in S3 (moto's server on loopback)"
    )
    add_strict_flag(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="autoinspect-batch-speed-") as tmp:
        folder = Path(tmp)
        isolate_environment(folder)
        files = copy_photos(args.data, args.photos, folder / "photos")
        model = args.model.resolve() if args.model else export_default_graph(folder)
        probe = Detector(model)
        prepare_home(folder / "home", model, probe.metadata, probe.thresholds)
        settings = Settings(home=folder / "home")
        with ExitStack() as stack:
            source, out = str(folder / "photos"), str(folder / "workers")
            if args.object_storage:
                settings, source, out = stack.enter_context(photo_bucket(files, settings))
            guard = MachineGuard()
            before = time_reference(model, files)
            timings = [time_runner(settings, source, files, args.shard_size, folder / "out" / "batch.jsonl")]
            timings += [
                time_workers(settings, model, source, args.shard_size, f"{out}/{workers}", workers)
                for workers in (1, 2)
            ]
            after = time_reference(model, files)
            machine = guard.finish()
    reference = 2 / (1 / before.per_second + 1 / after.per_second)
    print(f"model: {args.model or f'the default recipe graph at {DEFAULT_IMGSZ} px (untrained heads)'}")
    where = "in S3 (moto's server on loopback, in this process)" if args.object_storage else "in a local folder"
    print(f"photos: {len(files)} real test photos from {args.data}, {where}; cores: {os.cpu_count()}")
    mark = settle(machine, strict=args.strict)
    print()
    print("| path | photos | seconds | photos/s | / bare Detector | note |")
    print("|---|---|---|---|---|---|")
    print(f"| bare Detector{mark} | {len(files)} | before {before.seconds:.1f}, after {after.seconds:.1f} | "
          f"{reference:.2f} | 1.00 | mean of the runs before and after the others |")  # fmt: skip
    for timing in timings:
        print(
            f"| {timing.path}{mark} | {timing.photos} | {timing.seconds:.1f} | {timing.per_second:.2f} | "
            f"{timing.per_second / reference:.2f} | {timing.note} |"
        )


if __name__ == "__main__":
    main()
