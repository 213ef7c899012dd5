"""``autoinspect serve`` as a new user runs it: the console commands in their own processes, a real port.

Issue a key, start the server, inspect a photo, promote another version from a second terminal and see the
running server pick it up, revoke the key and see it refused, stop the server with Ctrl-C, and find every answered
request in the prediction log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from served import jpeg

from autoinspect.config import Settings
from autoinspect.store import PredictionLog, make_engine

AUTOINSPECT = Path(sys.executable).with_name("autoinspect")
"""The console script installed beside this interpreter, what a user types."""
READY_TIMEOUT = 60.0
SWAP_TIMEOUT = 15.0
STOP_TIMEOUT = 30.0


def _env(settings: Settings) -> dict[str, str]:
    """The test's environment (AUTOINSPECT_CONFIG already points at no file) on the registry's home."""
    env = dict(os.environ)
    env["AUTOINSPECT_HOME"] = str(settings.home)
    env["AUTOINSPECT_SERVING__POLL_SECONDS"] = "0.5"
    return env


def _cli(env: dict[str, str], *args: str) -> Any:
    """Run one ``autoinspect`` command; its last stdout line is JSON."""
    result = subprocess.run([str(AUTOINSPECT), *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"autoinspect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(server: subprocess.Popen[bytes], http: httpx.Client, output: Path) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode} before it was ready:\n{output.read_text()}")
        try:
            response = http.get("/readyz")
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    pytest.fail(f"the server was not ready within {READY_TIMEOUT:.0f} s:\n{output.read_text()}")


def test_serve_answers_follows_promotions_honours_revocation_and_stops_cleanly(
    registry: Settings, tmp_path: Path
) -> None:
    env = _env(registry)
    issued = _cli(env, "keys", "create", "intake", "--scope", "inspect")
    assert issued["scopes"] == ["inspect"] and issued["token"].startswith("aik_")
    headers = {"X-API-Key": issued["token"]}
    photo = {"image": ("car.jpg", jpeg(red=True), "image/jpeg")}

    port = _free_port()
    output = tmp_path / "serve.log"
    answered = 0
    with output.open("wb") as log_file:
        server = subprocess.Popen(
            [str(AUTOINSPECT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            ready = _wait_ready(server, http, output)
            assert ready["champion"] == 1 and ready["mode"] == "single", ready

            response = http.post("/v1/inspect", files=photo, headers=headers)
            assert response.status_code == 200, response.text
            answered += 1
            assert response.json()["verdict"] == ["dent", "scratch"]
            assert response.json()["model_version"] == "1"

            move = _cli(env, "models", "promote", "2", "--reason", "better map50")
            assert (move["from_version"], move["to_version"]) == (1, 2), move
            deadline = time.monotonic() + SWAP_TIMEOUT
            while True:
                response = http.post("/v1/inspect", files=photo, headers=headers)
                assert response.status_code == 200, response.text
                answered += 1
                if response.json()["model_version"] == "2":
                    break
                assert time.monotonic() < deadline, f"still version 1 {SWAP_TIMEOUT:.0f} s after the promotion"
                time.sleep(0.2)
            assert response.json()["verdict"] == ["dent", "scratch"]

            revoked = _cli(env, "keys", "revoke", issued["key_id"])
            assert revoked["key_id"] == issued["key_id"] and revoked["revoked_at"] is not None
            response = http.post("/v1/inspect", files=photo, headers=headers)
            assert response.status_code == 401, response.text
            assert response.headers["WWW-Authenticate"] == "Bearer"

        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not stop within {STOP_TIMEOUT:.0f} s of Ctrl-C:\n{output.read_text()}")
        assert code == 0, f"the server exited with {code} on Ctrl-C:\n{output.read_text()}"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)

    engine = make_engine(registry.store_url)
    try:
        logged = PredictionLog(engine).count()
    finally:
        engine.dispose()
    assert logged == answered, f"{answered} requests answered, {logged} in the prediction log:\n{output.read_text()}"
