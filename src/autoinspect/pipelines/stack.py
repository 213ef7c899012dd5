"""``autoinspect up``: the whole loop on one machine, in one command.

A first model is trained when the registry has no champion; then the API (in this process), the UI (Streamlit
needs its own process) and a local scheduler (monitoring and continuous-training passes on a timer, the jobs
Airflow runs in production) start together. :meth:`Stack.stop` (Ctrl-C) stops them in reverse order: the
scheduler finishes its current job, the UI process is terminated, the API drains and flushes its prediction log.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from autoinspect.config import Settings
from autoinspect.errors import AutoInspectError
from autoinspect.pipelines.continuous_training import run_continuous_training
from autoinspect.pipelines.monitoring import run_monitoring
from autoinspect.pipelines.registration import register_run
from autoinspect.pipelines.training import train_model
from autoinspect.private_files import write_private
from autoinspect.registry.aliases import CHAMPION, current_user
from autoinspect.registry.mlflow_registry import RegisteredModel, get_by_alias
from autoinspect.serving.app import create_app
from autoinspect.store import ApiKeys, Scope, open_store
from autoinspect.training.base import TrainConfig

logger = logging.getLogger(__name__)

FIRST_MONITORING_SECONDS = 60.0
"""The first monitoring pass of a new stack: soon after start, so KPIs exist before the first hourly run."""
ADMIN_KEY_FILE = "admin.key"
"""The local admin's key, written owner-only under the serving folder by ``autoinspect up``."""
"""The UI's admin token, kept under ``<home>/serving`` (mode 0600) so restarts reuse one key."""
READY_TIMEOUT_S = 120.0


def ensure_champion(settings: Settings, dataset: str, config: TrainConfig, *, demo: bool = False) -> RegisteredModel:
    """The champion; trains and registers a first model on ``dataset`` when there is none.

    A ``demo`` model (trained on the generated synthetic sample) is made champion even below the quality floors,
    so the whole loop can be tried at once, and is marked as a demo wherever it is shown. A first model of real
    data below the floors is registered but not served: that is an error saying what it missed.
    """
    champion = get_by_alias(settings, CHAMPION)
    if champion is not None:
        return champion
    logger.info(
        "no champion yet: training a first model on %s (%d epochs at %d px)", dataset, config.epochs, config.imgsz
    )
    outcome = train_model(settings, dataset, config, run_name="first model (autoinspect up)", demo=demo)
    registration = register_run(settings, outcome.run_id, force=demo)
    if registration.alias != CHAMPION:
        failures = "; ".join(check.message for check in registration.decision.failures)
        raise AutoInspectError(
            f"the first model (version {registration.model.version}) is below the quality floors: {failures}. "
            f"Train more (--epochs), or serve it anyway: autoinspect register --run {outcome.run_id} --force"
        )
    return registration.model


def local_admin_key(settings: Settings) -> Path:
    """The file holding the local admin's key, for signing in to the UI: the stored key while it still verifies,
    else a new one (the old file is replaced). The key itself is never printed or logged, only where it is."""
    path = settings.serving_dir / ADMIN_KEY_FILE
    with open_store(settings.store_url) as engine:
        keys = ApiKeys(engine)
        if path.is_file() and keys.verify(path.read_text(encoding="utf-8").strip()) is not None:
            return path
        write_private(path, keys.create(f"local admin ({current_user()})", [Scope.ADMIN]).token)
        return path


@dataclass
class LocalScheduler:
    """Runs each job every ``period`` seconds on one daemon thread; a failing job is logged and retried next time.

    A job's first run comes after ``first_after`` seconds when that is sooner than its period: monitoring runs
    hourly, and a new installation should not show an empty monitoring page for its first hour."""

    jobs: list[tuple[str, float, Callable[[], object]]]
    """``(name, period in seconds, job)``."""
    first_after: dict[str, float] = field(default_factory=dict)
    """Seconds before a job's first run, by name (default: its period)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        started = time.monotonic()
        due = {name: started + min(period, self.first_after.get(name, period)) for name, period, _ in self.jobs}
        while not self._stop.wait(1.0):
            for name, period, job in self.jobs:
                if time.monotonic() < due[name]:
                    continue
                due[name] = time.monotonic() + period
                try:
                    logger.info("scheduler: %s -> %s", name, job())
                except Exception:
                    logger.exception("scheduler: %s failed; retrying in %.0f s", name, period)


class Stack:
    """The API, the UI and the scheduler of one machine."""

    def __init__(self, settings: Settings, *, api_port: int | None = None, ui_port: int | None = None) -> None:
        self.settings = settings
        self.api_url = f"http://127.0.0.1:{api_port or settings.serving.port}"
        self.ui_url = f"http://127.0.0.1:{ui_port or settings.ui.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=api_port or settings.serving.port,
            log_config=None,
            timeout_graceful_shutdown=30,
        )
        self._api = uvicorn.Server(config)
        self._api_thread = threading.Thread(target=self._api.run, name="api", daemon=True)
        self._ui: subprocess.Popen[bytes] | None = None
        self._ui_port = ui_port or settings.ui.port
        self._scheduler = LocalScheduler(
            [
                ("monitoring", settings.monitoring.every_minutes * 60, lambda: run_monitoring(settings).summary_json),
                (
                    "continuous training",
                    settings.continuous_training.every_minutes * 60,
                    lambda: run_continuous_training(settings).outcome,
                ),
            ],
            first_after={"monitoring": FIRST_MONITORING_SECONDS},
        )

    def start(self) -> None:
        self._api_thread.start()
        _wait_for(f"{self.api_url}/healthz", "the API", lambda: self._api_thread.is_alive())
        from autoinspect.ui import streamlit_command

        env = {
            **os.environ,
            "AUTOINSPECT_HOME": str(self.settings.home.resolve()),
            "AUTOINSPECT_UI__API_URL": self.api_url,
        }
        self._ui = subprocess.Popen(
            streamlit_command(self._ui_port, self.settings.serving.max_upload_bytes), env=env, start_new_session=True
        )
        _wait_for(f"{self.ui_url}/_stcore/health", "the UI", lambda: self._ui is not None and self._ui.poll() is None)
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.stop()
        if self._ui is not None and self._ui.poll() is None:
            os.killpg(self._ui.pid, signal.SIGTERM)  # its own session: any child it started goes too
            try:
                self._ui.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self._ui.pid, signal.SIGKILL)
        self._api.should_exit = True
        self._api_thread.join(60)
        logger.info("stopped API, UI and scheduler")


def _wait_for(url: str, what: str, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive():
            raise AutoInspectError(f"{what} exited while starting; see the log above")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AutoInspectError(f"{what} did not answer at {url} within {READY_TIMEOUT_S:.0f} s")
