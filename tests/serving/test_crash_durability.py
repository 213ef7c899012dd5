"""Every answer is logged, even when the server is killed while its database is locked.

``autoinspect serve`` runs as a real process on loopback. The test holds an exclusive lock on the prediction
log's SQLite file (a long transaction elsewhere, a backup, a stalled disk), sends a burst of photos, which are all
answered while their log entries wait, then kills the server with SIGKILL. After the lock is released, a new
server on the same home must have logged every answered request: the write-ahead journal replayed at start.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from served import KeyFactory, free_port, jpeg, wait_for_log, wait_until_answering

from autoinspect.config import Settings

BURST = 24


@contextmanager
def serve(settings: Settings, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``autoinspect serve`` on a free loopback port, ready on entry; stopped (if still running) on exit."""
    port = free_port()
    env = {**os.environ, "AUTOINSPECT_HOME": str(settings.home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "autoinspect", "serve", "--port", str(port)]
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/readyz", process, what="the server", exited=lambda: log.read_text()[-3000:])
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_answers_given_while_the_log_is_locked_survive_a_sigkill(
    registry: Settings, make_key: KeyFactory, tmp_path: Path
) -> None:
    key = make_key()
    answered: list[str] = []
    with serve(registry, tmp_path / "server.log") as (url, process):
        lock = sqlite3.connect(registry.home / "autoinspect.db", timeout=0)
        lock.execute("BEGIN EXCLUSIVE")  # every log write now waits, then fails and spills, behind this lock
        try:
            with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
                for index in range(BURST):
                    rid = f"burst-{index}"
                    response = client.post(
                        "/v1/inspect",
                        files={"image": ("car.jpg", jpeg(red=index % 2 == 0))},
                        headers={"X-Request-ID": rid},
                    )
                    assert response.status_code == 200, response.text
                    answered.append(rid)
            process.send_signal(signal.SIGKILL)  # entries still wait in memory behind the lock
            process.wait(10)
        finally:
            lock.rollback()
            lock.close()
    with serve(registry, tmp_path / "server.log"):
        logged = wait_for_log(registry, BURST, timeout=30)
        now = datetime.now(UTC)
        ids = {entry.request_id for entry in logged.between(now - timedelta(hours=1), now + timedelta(hours=1))}
    assert set(answered) <= ids, sorted(set(answered) - ids)
