"""The API through the compose stack's load balancer with 1 and 2 replicas, against one replica called directly.

Run: ``.venv/bin/python benchmarks/balanced_load.py [--model PATH] [--requests 40 64] [--quick] [--strict]``
(needs ``haproxy`` on PATH; ``make test`` installs it): about 4 minutes on 2 cores.

Two ``autoinspect serve`` replicas run as subprocesses on loopback, as in production: each its own home (spill file,
model download) and both on one registry and one store (the first home's SQLite files; PostgreSQL in production),
so one key works on both. Two HAProxy processes run ``deploy/haproxy/haproxy.cfg`` (see ``balancer.py``): one
finds only the first replica in its DNS, the other both. The three sides (the first replica directly, the balancer
with one replica, the balancer with two) take turns in rounds at each concurrency, closed-loop as in
``serve_load.py``, on the same photos and the default recipe's graph. The ratios say what the balancer costs and
what a second replica adds on this machine's cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from autoinspect.config import Settings
from autoinspect.inference import Detector
from balancer import Balancer, haproxy, inspected, port_of, replica_dns, wait_for
from inference_speed import DEFAULT_DATA, DEFAULT_IMGSZ, export_default_graph
from machine_guard import MachineGuard, add_strict_flag, settle
from serve_load import (
    LevelResult,
    api_caller,
    describe_photos,
    isolate_environment,
    pick_photo_bytes,
    prepare_home,
    run_level,
    running_server,
    warm_up,
)

logger = logging.getLogger("balanced_load")

CONCURRENCY = (1, 8)
DEFAULT_REQUESTS = (40, 64)
QUICK_REQUESTS = (2, 8)
ROUNDS = 4
SIDES = ("direct, 1 replica", "balancer, 1 replica", "balancer, 2 replicas")


@contextmanager
def balancer_over(replicas: list[str], folder: Path, name: str, token: str, photo: bytes) -> Iterator[Balancer]:
    """A balancer whose DNS lists ``replicas``; yields it once a photo sent through it reached each of them."""
    with replica_dns() as (dns, dns_port), haproxy(dns_port, folder / f"{name}.log") as balancer:
        url = balancer.url
        dns.ports = [port_of(replica) for replica in replicas]
        with httpx.Client(base_url=url, headers={"X-API-Key": token}, timeout=60, trust_env=False) as client:

            def reached_all() -> bool:
                client.post("/v1/inspect", files={"image": ("photo.jpg", photo, "image/jpeg")})
                return all(inspected(replica) > 0 for replica in replicas)

            wait_for(reached_all, f"{name}: a replica got no request through the balancer", timeout=60)
        yield balancer


def measure(urls: dict[str, str], token: str, photos: list[bytes], requests: tuple[int, ...]) -> list[LevelResult]:
    callers = {side: api_caller(url, token) for side, url in urls.items()}
    for caller in callers.values():
        warm_up(caller, photos, 2)
    results = []
    for concurrency, count in zip(CONCURRENCY, requests, strict=True):
        share = max(1, count // ROUNDS)
        rounds: dict[str, list[LevelResult]] = {side: [] for side in callers}
        for _ in range(ROUNDS):
            for side, caller in callers.items():
                rounds[side].append(run_level(side, caller, photos, concurrency, share))
        results += [LevelResult.pooled(side_rounds) for side_rounds in rounds.values()]
    return results


def print_table(results: list[LevelResult], mark: str) -> None:
    print("| path | concurrency | requests | failed | p50 ms | p99 ms | req/s | req/s / direct |")
    print("|---|---|---|---|---|---|---|---|")
    direct = {r.concurrency: r.per_second for r in results if r.mode == SIDES[0]}
    for r in results:
        failed = len(r.failures) + r.not_sent
        print(
            f"| {r.mode}{mark} | {r.concurrency} | {r.requests} | {failed} | {r.percentile(50):.0f} | "
            f"{r.percentile(99):.0f} | {r.per_second:.2f} | {r.per_second / direct[r.concurrency]:.2f} |"
        )
    for r in results:
        for failure in sorted(set(r.failures))[:5]:
            print(f"failure ({r.mode}, c={r.concurrency}): {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported detector; default: the lite graph, exported now")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--requests", type=int, nargs=2, help=f"per level {CONCURRENCY}")
    parser.add_argument("--quick", action="store_true", help="tiny counts, to check it runs")
    add_strict_flag(parser)
    args = parser.parse_args()
    requests = tuple(args.requests) if args.requests else QUICK_REQUESTS if args.quick else DEFAULT_REQUESTS
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    began = time.perf_counter()
    photos, source = pick_photo_bytes(args.data, 4 if args.quick else 16)
    with tempfile.TemporaryDirectory(prefix="autoinspect-balanced-load-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        isolate_environment(folder)
        model = args.model.resolve() if args.model else export_default_graph(folder)
        reference = Detector(model)
        token = prepare_home(folder / "home1", model, reference.metadata, reference.thresholds)
        shared = Settings(home=folder / "home1")
        stores = {"AUTOINSPECT_TRACKING__URI": shared.tracking_uri, "AUTOINSPECT_STORE__URL": shared.store_url}
        (folder / "home2").mkdir()
        servers = [
            stack.enter_context(running_server(folder / home, folder / f"{home}.log", stores))
            for home in ("home1", "home2")
        ]
        replicas = [server.url for server in servers]
        balancers = [
            stack.enter_context(balancer_over(replicas[:1], folder, "lb1", token, photos[0])),
            stack.enter_context(balancer_over(replicas, folder, "lb2", token, photos[0])),
        ]
        urls = {SIDES[0]: replicas[0], SIDES[1]: balancers[0].url, SIDES[2]: balancers[1].url}
        logger.info("2 replicas and 2 balancers up in %.0f s", time.perf_counter() - began)
        guard = MachineGuard([server.pid for server in servers] + [balancer.pid for balancer in balancers])
        results = measure(urls, token, photos, requests)
        machine = guard.finish()
    print(f"model: {args.model or f'the default recipe graph at {DEFAULT_IMGSZ} px (untrained heads)'}")
    print(f"photos: {describe_photos(photos)}; {source}")
    print(
        f"cores: {os.cpu_count()}; replicas: `autoinspect serve` (default settings), balancer: HAProxy on "
        f"deploy/haproxy/haproxy.cfg; {ROUNDS} rounds per side taking turns; run {time.perf_counter() - began:.0f} s"
    )
    mark = settle(machine, strict=args.strict)
    print()
    print_table(results, mark)


if __name__ == "__main__":
    main()
