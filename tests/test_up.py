"""``autoinspect up`` as a new user runs it: data, a first model, then API + UI + scheduler; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from autoinspect.pipelines.stack import LocalScheduler

AUTOINSPECT = Path(sys.executable).with_name("autoinspect")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_up_trains_a_first_model_serves_it_and_stops_cleanly(tmp_path: Path) -> None:
    api, ui = _free_port(), _free_port()
    env = {**os.environ, "AUTOINSPECT_HOME": str(tmp_path / "home"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [str(AUTOINSPECT), "up", "--epochs", "1", "--imgsz", "96", "--api-port", str(api), "--ui-port", str(ui)]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    started = threading.Event()

    def read() -> None:  # drain the pipe all along: a full pipe would block the process's logging
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(300) and process.poll() is None, "".join(output[-50:])
        assert any("champion: version 1 (DEMO: trained on synthetic panels" in line for line in output)
        ready = httpx.get(f"http://127.0.0.1:{api}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["champion"] == 1
        assert httpx.get(f"http://127.0.0.1:{ui}/_stcore/health", timeout=10).status_code == 200
        key_file = tmp_path / "home" / "serving" / "admin.key"
        assert key_file.stat().st_mode & 0o077 == 0 and any(str(key_file) in line for line in output)
        token = key_file.read_text().strip()
        assert not any(token in line for line in output)  # where the key is, never the key itself
        who = httpx.get(f"http://127.0.0.1:{api}/v1/whoami", headers={"X-API-Key": token}, timeout=10).json()
        assert who["scopes"] == ["admin"] and who["name"].startswith("local admin")
        models = httpx.get(f"http://127.0.0.1:{api}/v1/models", headers={"X-API-Key": token}, timeout=10).json()
        assert [(m["version"], m["demo"]) for m in models] == [(1, True)]  # marked wherever it is shown
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(90)
        finally:
            process.kill()
            reader.join(10)
    assert code == 0, "".join(output[-50:])
    for port in (api, ui):  # both servers are gone with it
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_scheduler_runs_a_job_first_after_its_first_delay_then_every_period() -> None:
    runs: list[float] = []
    scheduler = LocalScheduler([("monitoring", 3600.0, lambda: runs.append(time.monotonic()))], {"monitoring": 0.0})
    started = time.monotonic()
    scheduler.start()
    try:
        deadline = started + 10
        while not runs and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.stop()
    assert len(runs) == 1 and runs[0] - started < 3  # not an hour later; and not again within the period
