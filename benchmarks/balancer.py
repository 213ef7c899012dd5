"""deploy/haproxy/haproxy.cfg run by a real HAProxy on loopback, finding its replicas through a DNS server here.

Compose's DNS answers ``api`` with one address per replica on one port, which replicas sharing 127.0.0.1 cannot
imitate; so :class:`ReplicaDns` answers an SRV name with a port per replica (the form a Kubernetes headless Service
answers) and HAProxy reads the same ``server-template`` line. Shared by ``tests/serving/test_load_balancer.py`` and
``balanced_load.py``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
from dnslib import QTYPE, RR, SRV, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

logger = logging.getLogger(__name__)

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg"
SERVICE = "_http._tcp.api.autoinspect.test."
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
INSPECT_COUNT = re.compile(r'^autoinspect_request_latency_seconds_count\{endpoint="/v1/inspect"\} (\S+)$', re.M)


class ReplicaDns(BaseResolver):  # type: ignore[misc]
    """Answers :data:`SERVICE` with one SRV record per port in ``ports`` (target ``r<port>.autoinspect.test`` at
    127.0.0.1, also in the additional section) and those targets' A queries; ``ports`` may change at any time,
    records live 1 s."""

    def __init__(self) -> None:
        self.ports: list[int] = []

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name, ports = str(request.q.qname), list(self.ports)
        targets = [f"r{port}.autoinspect.test." for port in ports]
        if request.q.qtype == QTYPE.SRV and name == SERVICE:
            for port, target in zip(ports, targets, strict=True):
                reply.add_answer(RR(SERVICE, QTYPE.SRV, ttl=1, rdata=SRV(0, 10, port, target)))
                reply.add_ar(RR(target, QTYPE.A, ttl=1, rdata=A(HOST)))
        elif request.q.qtype == QTYPE.A and name in targets:
            reply.add_answer(RR(name, QTYPE.A, ttl=1, rdata=A(HOST)))
        return reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def inspected(replica: str) -> int:
    """Photos a replica has answered, by its own ``/metrics``."""
    match = INSPECT_COUNT.search(httpx.get(f"{replica}/metrics", timeout=5, trust_env=False).text)
    return int(float(match[1])) if match else 0


def wait_for(
    condition: Callable[[], bool],
    message: str,
    *,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> None:
    """Poll ``condition`` every 0.2 s; fail with ``message`` after ``timeout`` s or once ``process`` has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.2)


@contextmanager
def replica_dns() -> Iterator[tuple[ReplicaDns, int]]:
    """A :class:`ReplicaDns` served over UDP on a free loopback port; yields it and the port."""
    replicas, port = ReplicaDns(), free_port()
    quiet = DNSLogger("error", logf=logger.warning)  # only failures; by default it prints every query
    server = DNSServer(replicas, port=port, address=HOST, logger=quiet)
    server.start_thread()
    try:
        yield replicas, port
    finally:
        server.stop()


class Balancer(NamedTuple):
    url: str
    pid: int


@contextmanager
def haproxy(dns_port: int, log: Path, *, max_replicas: int = 4) -> Iterator[Balancer]:
    """HAProxy on :data:`CONFIG`, finding replicas through the DNS server on ``dns_port``; yields its base URL and
    process id once it answers its own health URL. Its log goes to ``log``."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("haproxy is not installed (make test installs it)")
    port = free_port()
    env = os.environ | {
        "LB_DNS_SERVER": f"{HOST}:{dns_port}",
        "LB_BIND": f"{HOST}:{port}",
        "LB_MAX_REPLICAS": str(max_replicas),
        "LB_API_SERVICE": SERVICE.rstrip("."),
    }
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "-db", "-f", str(CONFIG)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://{HOST}:{port}"
        wait_for(lambda: answers(f"{url}/lb/healthz"), f"haproxy did not start, see {log}", process=process)
        yield Balancer(url, process.pid)
    finally:
        process.terminate()
        process.wait(10)
