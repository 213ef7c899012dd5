"""Helpers of the service tests: photos the red-box model reacts to, and waiting for the background writer."""

from __future__ import annotations

import io
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from PIL import Image
from redbox import photo

from autoinspect.config import Settings
from autoinspect.serving.app import create_app
from autoinspect.store import PredictionLog, make_engine

KeyFactory = Callable[..., str]
"""``make_key(Scope.INSPECT, ...)`` (a fixture of ``tests/serving``) returns a new key's token."""


def jpeg(red: bool, *, size: tuple[int, int] = (200, 150), seed: int = 0) -> bytes:
    """A JPEG photo, with a red rectangle (damage for the red-box model) or without (a clean car)."""
    width, height = size
    pixels = photo(width, height, (40, 30, 120, 90) if red else None, seed=seed)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def inspect_red(server: str, key: str) -> str:
    """Sends a photo the red-box model flags for review (a weak candidate in its review band); its request id."""
    with httpx.Client(base_url=server, headers={"X-API-Key": key}) as http:
        answer = http.post("/v1/inspect", files={"image": ("car.jpg", jpeg(red=True))}).json()
    assert answer["needs_review"], answer
    request_id: str = answer["request_id"]
    return request_id


def wait_for_log(settings: Settings, count: int, timeout: float = 10.0) -> PredictionLog:
    """The prediction log once the background writer has stored ``count`` entries."""
    engine = make_engine(settings.store_url)
    log = PredictionLog(engine)
    deadline = time.monotonic() + timeout
    while log.count() < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"prediction log holds {log.count()} entries, expected {count}")
        time.sleep(0.05)
    return log


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], *, what: str, exited: Callable[[], str], timeout: float = 60.0
) -> None:
    """Poll ``url`` until it answers 200; fail at once if ``process`` exits first (``exited()`` says why), or
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, exited()
        assert time.monotonic() < deadline, f"{what} did not answer within {timeout:.0f} s"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


@contextmanager
def running_service(settings: Settings) -> Iterator[str]:
    """The service on a real uvicorn server on loopback, in a thread; yields its base URL, stops it after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
