"""``pip install autoinspect[serve]`` alone runs the service: no torch, no onnx, no Ultralytics.

Builds a fresh virtual environment with only the serving extra (about a minute, from the package index or the
local wheel cache), then starts ``autoinspect serve`` from it on a registry that the full install filled, and
inspects a photo over HTTP.
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

import httpx
from served import KeyFactory, jpeg

from autoinspect.config import Settings
from autoinspect.store import Scope

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "onnx", "ultralytics", "timm")
"""Training-only packages that must not come with the serving extra."""


def test_the_serving_extra_alone_serves_the_champion(registry: Settings, make_key: KeyFactory, tmp_path: Path) -> None:
    venv = tmp_path / "serve-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{REPO}[serve]"], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-3000:]
    probe = (
        "import importlib.util as u; print(json.dumps([m for m in ('torch', 'onnx', 'ultralytics') if u.find_spec(m)]))"
    )
    absent = subprocess.run([str(python), "-c", f"import json; {probe}"], capture_output=True, text=True, check=True)
    assert json.loads(absent.stdout) == []

    key = make_key(Scope.INSPECT)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {**os.environ, "AUTOINSPECT_HOME": str(registry.home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [str(venv / "bin" / "autoinspect"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the server did not become ready"
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        response = httpx.post(
            f"{url}/v1/inspect", files={"image": ("car.jpg", jpeg(red=True))}, headers={"X-API-Key": key}
        )
        assert response.status_code == 200, response.text
        assert response.json()["verdict"] == ["dent", "scratch"] and response.json()["model_version"] == "1"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            assert server.wait(30) == 0
        finally:
            server.kill()
