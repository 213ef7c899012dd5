"""deploy/haproxy/haproxy.cfg, run by a real HAProxy in front of two real API replicas on loopback.

The file is the one the compose stack mounts; only its environment differs (``benchmarks/balancer.py``: a DNS
server here answers an SRV name with a port per replica). The test scales the replica set out and in through DNS
alone and checks that requests reach every listed replica and that a replica that stops costs no failed answer.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from served import KeyFactory, jpeg, running_service

from autoinspect.config import Settings
from autoinspect.store import Scope
from balancer import haproxy, inspected, port_of, replica_dns, wait_for


def _inspect(lb: str, key: str, count: int) -> None:
    """``count`` photos through the balancer, 4 at a time; every one must be answered."""
    with httpx.Client(base_url=lb, headers={"X-API-Key": key}, timeout=30) as http:

        def post(seed: int) -> None:
            photo = jpeg(red=seed % 2 == 0, seed=seed)
            statuses.append(http.post("/v1/inspect", files={"image": ("car.jpg", photo)}).status_code)

        for start in range(0, count, 4):
            statuses: list[int] = []
            threads = [threading.Thread(target=post, args=(start + i,)) for i in range(min(4, count - start))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert statuses == [200] * len(threads)


def _spread(lb: str, key: str, replica: str) -> bool:
    _inspect(lb, key, 2)
    return inspected(replica) > 0


def _require_haproxy() -> None:
    if shutil.which("haproxy") is None:
        message = "haproxy is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_requests_spread_over_the_replicas_dns_lists_and_follow_scaling(
    registry: Settings, make_key: KeyFactory, tmp_path: Path
) -> None:
    _require_haproxy()
    key = make_key(Scope.INSPECT)
    with ExitStack() as first_replica, running_service(registry) as second, replica_dns() as (dns, dns_port):
        first = first_replica.enter_context(running_service(registry))
        dns.ports = [port_of(first)]
        with haproxy(dns_port, tmp_path / "haproxy.log") as (lb, _):
            wait_for(lambda: httpx.get(f"{lb}/readyz").status_code == 200, "the first replica never got traffic")
            _inspect(lb, key, 8)
            assert (inspected(first), inspected(second)) == (8, 0)

            dns.ports = [port_of(first), port_of(second)]  # scale out: a second replica appears in DNS
            wait_for(lambda: _spread(lb, key, second), "the second replica never got a request")
            before = inspected(first), inspected(second)
            _inspect(lb, key, 16)
            after = inspected(first), inspected(second)
            assert after[0] > before[0] and after[1] > before[1], (before, after)
            assert sum(after) - sum(before) == 16

            dns.ports = [port_of(second)]  # scale in: the first leaves DNS and stops at once
            first_replica.close()
            _inspect(lb, key, 8)  # every answer 200: a refused connection is retried on the other replica
            assert inspected(second) == after[1] + 8
