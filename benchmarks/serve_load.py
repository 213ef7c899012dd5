"""Loopback load on the prediction API against the bare Detector on the same photos, at 1, 8 and 32 callers.

Run: ``.venv/bin/python benchmarks/serve_load.py [--model PATH] [--data ../shared/data/car-damage] [--images 16]
[--requests 40 64 128] [--quick]``: 4 to 6 minutes on 2 cores shared with other work (about 3 alone);
``--quick`` about 1 minute, nearly all of it imports, the export and the registration.

The API side is the real service: a temporary AutoInspect home gets the default recipe's graph at 384 px (light
head, presence head and the photo classifier's second backbone, with untrained heads:
``inference_speed.export_default_graph``, what ``autoinspect train`` serves by default, for timing) registered in
its own MLflow SQLite registry, promoted to champion, and an ``inspect`` key; then ``python -m autoinspect serve``
runs as a subprocess on 127.0.0.1 and is stopped with SIGINT at the end, as Ctrl-C would. The reference is a bare
:class:`~autoinspect.inference.Detector` on the same ONNX file with the same thresholds, in this process, calling
``predict_bytes`` on the same JPEG bytes. Both sides decode the
JPEG, so the API overhead is what serving adds around the model: HTTP, multipart parsing, the key check, drift
features, the image store, the prediction log and the JSON answer.

Each level is closed-loop: ``concurrency`` threads each send their next request as soon as the previous one is
answered (one ``httpx.Client`` per thread; the Detector side shares one instance across a thread pool, as the
service does), until a fixed number of requests is spent. The two sides take turns in rounds within each level, so
a drift in the machine's speed hits both; while one side runs, the other is idle. Everything is bounded: fixed
request counts, a timeout per request, a time limit per level, and the server is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
from PIL import Image

from autoinspect.config import Settings
from autoinspect.data.synthetic import generate_image
from autoinspect.domain import DatasetRef, ModelMetadata
from autoinspect.inference import Detector
from autoinspect.registry.aliases import promote
from autoinspect.registry.mlflow_registry import register_model
from autoinspect.store import ApiKeys, Scope, create_schema, make_engine
from autoinspect.training.tracking import MlflowTracker
from inference_speed import CLASSES, DEFAULT_DATA, DEFAULT_IMGSZ, export_default_graph
from machine_guard import MachineGuard, add_strict_flag, settle

logger = logging.getLogger("serve_load")

HOST = "127.0.0.1"
"""Loopback only: the benchmark never listens on or sends to another interface."""
CONCURRENCY = (1, 8, 32)
DEFAULT_REQUESTS = (40, 64, 128)
"""Per level. At ~250 ms a photo on 2 cores this is ~10 + 16 + 32 s per side; c=32 gets 4 waves of callers so
its figures are not all ramp-up and drain."""
QUICK_REQUESTS = (2, 4, 4)
"""``--quick``: enough to exercise every path (the c=32 level then runs only 4 callers)."""
WARMUP_REQUESTS = 2
MAX_ROUNDS = 8
"""Each level's requests are split into up to this many rounds per side, the sides alternating; a round keeps at
least two requests per caller, so it is not all ramp-up and drain. Other work on a 2-core machine comes and goes
within seconds, and short alternating rounds spread it over both sides."""
REQUEST_TIMEOUT_S = 120.0
"""Per API request; a c=32 request waits for ~31 others at ~0.25 s each, so ~8 s is normal, and 30 s was seen
with other work taking half of the 2 cores."""
LEVEL_LIMIT_S = 150.0
"""No new request starts after this many seconds in one round; those left are counted as not sent."""
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 45.0
"""The service flushes its prediction log on SIGINT (uvicorn's graceful timeout is 30 s); then it is killed."""
DATASET = DatasetRef(name="serve-load-benchmark", digest="5e" * 32)
"""Lineage for the registered version: the benchmark model was trained on no dataset."""

Send = Callable[[bytes], float | None]
"""Answers one photo; returns the service's own ``latency_ms`` when it reports one. Raises when not answered."""
Caller = Callable[[], AbstractContextManager[Send]]
"""Opens one caller's connection (one per thread) for the whole level."""


class NotAnsweredError(Exception):
    """The API answered something other than 200."""


@dataclass
class LevelResult:
    """What one side did at one concurrency level."""

    mode: str
    concurrency: int
    requests: int
    latencies_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    """The ``latency_ms`` the service reports (decode to answer, inside the process); empty for the Detector."""
    failures: list[str] = field(default_factory=list)
    not_sent: int = 0
    wall_s: float = 0.0

    @classmethod
    def pooled(cls, rounds: Sequence[LevelResult]) -> LevelResult:
        """One result from a level's rounds: latencies pooled, wall time summed (req/s over all of them)."""
        first = rounds[0]
        pooled = cls(first.mode, first.concurrency, sum(r.requests for r in rounds))
        for r in rounds:
            pooled.latencies_ms += r.latencies_ms
            pooled.service_ms += r.service_ms
            pooled.failures += r.failures
            pooled.not_sent += r.not_sent
            pooled.wall_s += r.wall_s
        return pooled

    @property
    def outside_ms(self) -> list[float]:
        """Per answered API request: client latency minus the service's own, i.e. HTTP, multipart, key, JSON."""
        if len(self.service_ms) != len(self.latencies_ms):
            return []
        return [total - inside for total, inside in zip(self.latencies_ms, self.service_ms, strict=True)]

    @property
    def answered(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def per_second(self) -> float:
        return self.answered / self.wall_s if self.wall_s > 0 else float("nan")


def pick_photo_bytes(data: Path, count: int) -> tuple[list[bytes], str]:
    """``count`` JPEG test photos spread evenly over the sorted names (every source and aspect shows up), read once.

    Without the real sample, generated panels from the synthetic renderer stand in, and the label says so.
    """
    folder = data / "images" / "test"
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"}) if folder.is_dir() else []
    if paths:
        step = max(1, len(paths) // count)
        return [path.read_bytes() for path in paths[::step][:count]], f"real test photos from {folder}"
    logger.warning("no JPEG photos under %s: using generated panels instead", folder)
    rng = np.random.default_rng(0)
    photos = []
    for index in range(count):
        rgb, _ = generate_image(rng, classes=CLASSES, size=(640, 480) if index % 2 else (512, 512))
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos, f"GENERATED panels (autoinspect.data.synthetic): {folder} has no JPEG photos"


def describe_photos(photos: Sequence[bytes]) -> str:
    """Sizes in pixels (as the model sees them, before letterboxing) and in kB on the wire."""
    sizes = set()
    for data in photos:
        with Image.open(io.BytesIO(data)) as image:
            sizes.add(f"{image.width}x{image.height}")
    kilobytes = [len(data) / 1000 for data in photos]
    return f"{len(photos)} JPEGs, {', '.join(sorted(sizes))} px, {min(kilobytes):.0f}-{max(kilobytes):.0f} kB"


def isolate_environment(folder: Path) -> None:
    """Neither this process nor the server may read the developer's ``autoinspect.yaml``, ``AUTOINSPECT_*``
    variables or MLflow URIs, or phone home: the benchmark must only touch its temporary home."""
    for key in [k for k in os.environ if k.startswith("AUTOINSPECT_") or k.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ["AUTOINSPECT_CONFIG"] = str(folder / "no-config.yaml")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"


def prepare_home(home: Path, model: Path, metadata: ModelMetadata, thresholds: Mapping[str, float]) -> str:
    """Register ``model`` in the home's own registry, make it champion and return a new ``inspect`` key's token.

    The same steps as the serving tests' fixtures: the server then starts as in production, downloading the
    champion from the registry. ``thresholds`` are the reference Detector's, so both sides answer alike.
    """
    settings = Settings(home=home)
    home.mkdir(parents=True, exist_ok=True)
    evaluation = home / "evaluation.json"
    evaluation.write_text(json.dumps({"map50": 0.0}), encoding="utf-8")
    with MlflowTracker(settings, DATASET, run_name="serve-load benchmark") as tracker:
        run_id = tracker.run_id
    registered = register_model(
        settings,
        run_id=run_id,
        onnx_path=model,
        metadata=metadata,
        evaluation_json=evaluation,
        flat_metrics={"map50": 0.0},
        reference_features_csv=None,
        dataset=DATASET,
        thresholds=thresholds,
    )
    promote(settings, registered.version, "serve-load benchmark")
    engine = make_engine(settings.store_url)
    try:
        create_schema(engine)
        return ApiKeys(engine).create("serve-load-benchmark", [Scope.INSPECT]).token
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def running_server(home: Path, log_path: Path, settings: Mapping[str, str] | None = None) -> Iterator[Server]:
    """``autoinspect serve`` on a free loopback port, ready (``/readyz`` 200) on entry, stopped with SIGINT on exit.

    Its output goes to ``log_path`` (a pipe nobody reads would fill and stall it); the tail is shown on failure.
    ``settings`` are extra ``AUTOINSPECT_*`` variables for the server.
    """
    port = free_port()
    env = os.environ | {"AUTOINSPECT_HOME": str(home), "PYTHONUNBUFFERED": "1"} | dict(settings or {})
    command = [sys.executable, "-m", "autoinspect", "serve", "--host", HOST, "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        started = time.perf_counter()
        wait_ready(url, process, log_path)
        logger.info("server ready at %s in %.1f s (pid %d)", url, time.perf_counter() - started, process.pid)
        yield Server(url, process.pid)
    finally:
        stop_server(process)


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=url, timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log_tail(log_path)}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"the server was not ready within {READY_TIMEOUT_S:.0f} s:\n{log_tail(log_path)}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, as Ctrl-C: the service flushes its prediction log. Killed if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.error("the server did not stop within %.0f s of SIGINT: killing it", STOP_TIMEOUT_S)
            process.kill()
            process.wait()
    logger.info("server stopped with exit code %s", process.returncode)


def detector_caller(detector: Detector) -> Caller:
    """Every thread calls the one shared Detector, as the service's request threads share its loaded model."""

    def send(data: bytes) -> None:
        detector.predict_bytes(data)

    return lambda: nullcontext(send)


def api_caller(url: str, token: str) -> Caller:
    """One keep-alive connection per thread (``httpx.Client``), posting multipart to ``/v1/inspect``."""

    @contextmanager
    def connect() -> Iterator[Send]:
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=5.0)
        with httpx.Client(base_url=url, headers={"X-API-Key": token}, timeout=timeout, trust_env=False) as client:

            def send(data: bytes) -> float:
                response = client.post("/v1/inspect", files={"image": ("photo.jpg", data, "image/jpeg")})
                if response.status_code != 200:
                    raise NotAnsweredError(f"HTTP {response.status_code}: {response.text[:200]}")
                return float(response.json()["latency_ms"])

            yield send

    return connect


def run_level(mode: str, caller: Caller, photos: Sequence[bytes], concurrency: int, requests: int) -> LevelResult:
    """``requests`` photos answered by ``concurrency`` closed-loop callers; the clock starts once all are connected.

    Request ``i`` sends photo ``i mod len(photos)``, so both sides see the same sequence.
    """
    result = LevelResult(mode, concurrency, requests)
    callers = min(concurrency, requests)
    start = threading.Barrier(callers + 1)
    lock = threading.Lock()
    issued = 0
    stop_at = float("inf")

    def take() -> int | None:
        """The next request's index; ``None`` when all are spent or the level's time is up (the rest: not sent)."""
        nonlocal issued
        with lock:
            if issued >= requests or time.perf_counter() > stop_at:
                return None
            issued += 1
            return issued - 1

    def work() -> None:
        try:
            with caller() as send:
                start.wait()
                while (index := take()) is not None:
                    began = time.perf_counter()
                    try:
                        service_ms = send(photos[index % len(photos)])
                    except Exception as error:
                        with lock:
                            result.failures.append(f"{type(error).__name__}: {error}"[:300])
                        continue
                    elapsed_ms = (time.perf_counter() - began) * 1000
                    with lock:
                        result.latencies_ms.append(elapsed_ms)
                        if service_ms is not None:
                            result.service_ms.append(service_ms)
        except threading.BrokenBarrierError:
            pass
        except Exception as error:
            start.abort()
            with lock:
                result.failures.append(f"caller did not start: {type(error).__name__}: {error}"[:300])

    threads = [threading.Thread(target=work, name=f"{mode}-{n}", daemon=True) for n in range(callers)]
    for thread in threads:
        thread.start()
    try:
        start.wait(timeout=30.0)
    except threading.BrokenBarrierError:
        logger.error("%s c=%d: a caller failed to start", mode, concurrency)
    began = time.perf_counter()
    stop_at = began + LEVEL_LIMIT_S
    for thread in threads:
        thread.join(LEVEL_LIMIT_S + REQUEST_TIMEOUT_S + 30.0)
    result.wall_s = time.perf_counter() - began
    if stuck := sum(thread.is_alive() for thread in threads):
        result.failures.append(f"{stuck} caller thread(s) still running after the level's time limit")
    result.not_sent = requests - issued
    logger.debug(
        "%s c=%d: %d answered, %d failed, %d not sent in %.1f s",
        mode,
        concurrency,
        result.answered,
        len(result.failures),
        result.not_sent,
        result.wall_s,
    )
    return result


def warm_up(caller: Caller, photos: Sequence[bytes], count: int) -> None:
    """First runs pay for lazy allocations (ONNX Runtime arenas, threads, the image store's folders)."""
    with caller() as send:
        for index in range(count):
            send(photos[index % len(photos)])


def measure(
    detector: Detector, url: str, token: str, photos: Sequence[bytes], requests: Sequence[int], warmup: int
) -> list[LevelResult]:
    """Both sides at every level, taking turns round by round (Detector, API, Detector, API) so a drift in the
    machine's speed (other work on its 2 cores) hits both sides alike; each level's rounds are pooled."""
    local, remote = detector_caller(detector), api_caller(url, token)
    warm_up(local, photos, warmup)
    warm_up(remote, photos, warmup)
    results = []
    for concurrency, count in zip(CONCURRENCY, requests, strict=True):
        rounds_count = max(1, min(MAX_ROUNDS, count // (2 * concurrency)))
        shares = [count // rounds_count + (index < count % rounds_count) for index in range(rounds_count)]
        rounds: dict[str, list[LevelResult]] = {"detector": [], "api": []}
        for share in shares:
            rounds["detector"].append(run_level("detector", local, photos, concurrency, share))
            rounds["api"].append(run_level("api", remote, photos, concurrency, share))
        for side in rounds.values():
            pooled = LevelResult.pooled(side)
            logger.info(
                "%s c=%d: %d answered, %d failed, %d not sent in %d rounds, %.1f s",
                pooled.mode,
                concurrency,
                pooled.answered,
                len(pooled.failures),
                pooled.not_sent,
                len(side),
                pooled.wall_s,
            )
            results.append(pooled)
    return results


def peak_rss_mb(pid: int) -> str:
    """``VmHWM`` of a live process: every concurrent ONNX Runtime run holds its own activations."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return f"{int(line.split()[1]) / 1024:.0f} MB"
    except (OSError, ValueError):
        pass
    return "unknown"


def print_table(results: Sequence[LevelResult], mark: str = "") -> None:
    """The levels' figures, each row's mode followed by ``mark`` (the machine guard's " (slowed)" or nothing)."""
    print(
        "in-service: the latency_ms the service reports (decode, model, features, image store); outside: client "
        "latency minus in-service, per request (HTTP, multipart, key check, JSON, thread hand-offs)"
    )
    print("| mode | concurrency | requests | failed | p50 ms | p99 ms | req/s | in-service p50 ms | outside p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        service = f"{np.percentile(r.service_ms, 50):.0f}" if r.service_ms else "-"
        outside = f"{np.percentile(r.outside_ms, 50):.1f}" if r.outside_ms else "-"
        failed = len(r.failures) + r.not_sent
        print(
            f"| {r.mode}{mark} | {r.concurrency} | {r.requests} | {failed} | {r.percentile(50):.0f} | "
            f"{r.percentile(99):.0f} | {r.per_second:.2f} | {service} | {outside} |"
        )
    print()
    print("| concurrency | API p50 overhead | API p99 overhead | API / Detector req/s |")
    print("|---|---|---|---|")
    by_level = {(r.mode, r.concurrency): r for r in results}
    for concurrency in CONCURRENCY:
        local, remote = by_level[("detector", concurrency)], by_level[("api", concurrency)]
        print(
            f"| {concurrency} | {100 * (remote.percentile(50) / local.percentile(50) - 1):+.1f} % | "
            f"{100 * (remote.percentile(99) / local.percentile(99) - 1):+.1f} % | "
            f"{remote.per_second / local.per_second:.2f} |"
        )
    for r in results:
        for failure in sorted(set(r.failures))[:5]:
            print(f"failure ({r.mode}, c={r.concurrency}): {failure}")


def request_counts(values: Sequence[int] | None, quick: bool) -> tuple[int, ...]:
    if not values:
        return QUICK_REQUESTS if quick else DEFAULT_REQUESTS
    if len(values) == 1:
        return tuple(values) * len(CONCURRENCY)
    if len(values) != len(CONCURRENCY) or min(values) < 1:
        raise SystemExit(f"--requests takes one count or {len(CONCURRENCY)} (one per concurrency), all >= 1")
    return tuple(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported detector; default: the lite graph, exported now")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, help="distinct photos sent in turn (default 16, --quick 4)")
    parser.add_argument(
        "--requests", type=int, nargs="+", help=f"per level {CONCURRENCY}: one count for all, or one each"
    )
    parser.add_argument("--quick", action="store_true", help=f"tiny counts {QUICK_REQUESTS}, to check it runs")
    parser.add_argument(
        "--serving",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a serving setting for the server, e.g. max_concurrent_runs=1 (inference_threads also sets the "
        "reference Detector's threads)",
    )
    add_strict_flag(parser)
    args = parser.parse_args()
    serving = dict(item.split("=", 1) for item in args.serving)
    requests = request_counts(args.requests, args.quick)
    images = args.images or (4 if args.quick else 16)
    warmup = 1 if args.quick else WARMUP_REQUESTS
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    load_at_start = os.getloadavg()[0]
    began = time.perf_counter()
    photos, source = pick_photo_bytes(args.data, images)
    with tempfile.TemporaryDirectory(prefix="autoinspect-serve-load-") as tmp:
        folder = Path(tmp)
        isolate_environment(folder)
        model = args.model.resolve() if args.model else export_default_graph(folder)
        logger.info("model %s (%.1f MB)", model, model.stat().st_size / 1e6)
        threads = serving.get("inference_threads")
        reference = Detector(model, intra_op_threads=int(threads) if threads else None)
        token = prepare_home(folder / "home", model, reference.metadata, reference.thresholds)
        logger.info("registered, promoted and keyed in %.0f s", time.perf_counter() - began)
        environment = {f"AUTOINSPECT_SERVING__{name.upper()}": value for name, value in serving.items()}
        with running_server(folder / "home", folder / "server.log", environment) as server:
            guard = MachineGuard([server.pid])
            results = measure(reference, server.url, token, photos, requests, warmup)
            machine = guard.finish()
            memory = f"peak memory: server {peak_rss_mb(server.pid)}, benchmark {peak_rss_mb(os.getpid())}"
    label = f"the default recipe's graph at {DEFAULT_IMGSZ} px (ImageNet backbones, untrained heads)"
    print(f"model: {args.model or label}")
    print(f"photos: {describe_photos(photos)}; {source}")
    print(
        f"cores: {os.cpu_count()}, onnxruntime {ort.__version__} default threads, server: `autoinspect serve` "
        f"(uvicorn, 1 process) on {HOST}, client: httpx {httpx.__version__}, one connection per caller thread"
    )
    print(
        f"requests per level {dict(zip(CONCURRENCY, requests, strict=True))}, in up to {MAX_ROUNDS} rounds per "
        f"side taking turns, after {warmup} warm-up request(s) per side"
    )
    print(f"1-min load average at start: {load_at_start:.2f}; run {time.perf_counter() - began:.0f} s after imports")
    print(f"serving settings: {serving or 'defaults'}")
    print(memory)
    mark = settle(machine, strict=args.strict)
    print()
    print_table(results, mark)


if __name__ == "__main__":
    main()
