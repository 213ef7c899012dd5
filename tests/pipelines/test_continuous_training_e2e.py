"""The whole loop on synthetic data with real components: service, prediction log, reviews, monitoring, training,
registry, canary.

Drifted traffic raises an alert at a local webhook; reviewed corrections trigger retraining; the challenger goes
on canary; one that reviewers accept is promoted, one that reviewers keep correcting is rolled back while the
champion keeps serving. Models are tiny (1-2 epochs at 96 px) so this fits CI; what is tested is the loop, not
the detector's quality.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from autoinspect.config import (
    AlertSettings,
    GateSettings,
    MonitoringSettings,
    ServingSettings,
    Settings,
    TriggerSettings,
)
from autoinspect.data.synthetic import SyntheticStyle, generate_dataset
from autoinspect.pipelines.continuous_training import check_triggers, run_continuous_training
from autoinspect.pipelines.dataset import prepare_dataset
from autoinspect.pipelines.monitoring import run_monitoring
from autoinspect.pipelines.registration import register_run
from autoinspect.pipelines.training import train_model
from autoinspect.registry.aliases import CHALLENGER, CHAMPION
from autoinspect.registry.deployment import DeploymentMode, get_deployment
from autoinspect.registry.mlflow_registry import get_by_alias
from autoinspect.serving.app import create_app
from autoinspect.store import ApiKeys, Scope, create_schema, make_engine
from autoinspect.training.base import TrainConfig

TINY = TrainConfig(epochs=1, imgsz=96, batch=8, workers=0)


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: ClassVar[list[dict[str, object]]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


@pytest.fixture
def loop_settings(tracked_settings: Settings, webhook: tuple[str, list[dict[str, object]]]) -> Settings:
    return tracked_settings.model_copy(
        update={
            "serving": ServingSettings(poll_seconds=0.2),
            "gates": GateSettings(min_map50=0, min_damaged_caught=0, min_clean_none_rate=0),  # tiny models
            "monitoring": MonitoringSettings(min_window_size=10, alerts=AlertSettings(webhook_url=webhook[0])),
            "continuous_training": TriggerSettings(
                new_reviews=6,
                on_drift_alert=False,
                canary_percent=50.0,
                min_canary_reviews=3,
                max_ap50_drop=1.0,  # tiny models: the offline gates must not decide this test, the reviewers do
                max_clean_none_rate_drop=1.0,
                max_damaged_caught_drop=1.0,
            ),
        }
    )


def _photos(folder: Path, count: int, seed: int, style: SyntheticStyle = SyntheticStyle()) -> list[bytes]:  # noqa: B008
    layout = generate_dataset(folder, count, seed=seed, size=(160, 120), splits=None, style=style)
    return [item.image.read_bytes() for item in layout.items()]


def test_the_loop_retrains_canaries_promotes_and_rolls_back(
    loop_settings: Settings, tmp_path: Path, webhook: tuple[str, list[dict[str, object]]]
) -> None:
    settings = loop_settings
    generate_dataset(tmp_path / "cars", 60, seed=0, size=(160, 120))
    prepared = prepare_dataset(settings, tmp_path / "cars", name="cars", profile=False)
    first = train_model(settings, prepared.version.ref.short, TINY.model_copy(update={"epochs": 2}))
    assert register_run(settings, first.run_id).alias == CHAMPION

    engine = make_engine(settings.store_url)
    create_schema(engine)
    keys = ApiKeys(engine)
    inspector = {"X-API-Key": keys.create("intake", [Scope.INSPECT]).token}
    reviewer = {"X-API-Key": keys.create("alice", [Scope.REVIEW]).token}

    with TestClient(create_app(settings)) as client:
        # 1. Traffic unlike the training photos (a darker, blurrier camera) raises a drift alert at the webhook.
        dark = _photos(tmp_path / "dark", 30, seed=7, style=SyntheticStyle(brightness_shift=-90, blur_radius=1.5))
        answers = [_inspect(client, inspector, photo, vehicle=f"V{i}") for i, photo in enumerate(dark)]
        report = run_monitoring(settings)
        assert any(alert.rule == "input_drift" for alert in report.alerts_sent), report.input_drift.model_dump_json()
        assert any("input_drift" in json.dumps(message) for message in webhook[1])

        # 2. Reviewers correct the answers; enough reviews fire the retraining trigger.
        assert not check_triggers(settings).fire
        for answer in answers[:6]:
            _review(client, reviewer, answer["request_id"], correct=True)
        assert check_triggers(settings).fire

        # 3. A challenger trained on the merged data goes on a 50 % canary.
        started = run_continuous_training(settings, config=TINY)
        assert started.outcome == "canary_started" and started.version == 2, started
        challenger_run = MlflowClient().get_run(get_by_alias(settings, CHALLENGER).run_id)  # type: ignore[union-attr, arg-type]
        newdata = {key for key in challenger_run.data.metrics if key.startswith("newdata/")}
        assert {"newdata/map50", "newdata/champion/map50"} <= newdata  # scored on the reviewed photos too
        artifacts = {a.path for a in MlflowClient().list_artifacts(challenger_run.info.run_id, "comparison")}
        assert {"comparison/comparison.html", "comparison/comparison.csv"} <= artifacts  # what changed, per photo
        assert (settings.comparisons_dir / "v2" / "comparison.json").is_file()
        assert get_deployment(settings).mode is DeploymentMode.CANARY
        _wait_for(client, inspector, CHALLENGER, 2)

        # 4. Reviewers accept the challenger's answers and correct the champion's: it is promoted.
        _canary_reviews(client, inspector, reviewer, tmp_path / "canary1", challenger_ok=True)
        assert run_continuous_training(settings).outcome == "promoted"
        assert get_by_alias(settings, CHAMPION).version == 2  # type: ignore[union-attr]
        _wait_for(client, inspector, CHAMPION, 2)
        assert _inspect(client, inspector, dark[0], vehicle="after")["model_version"] == "2"

        # 5. A forced retraining puts v3 on canary; reviewers keep correcting it: rolled back, v2 keeps serving.
        assert run_continuous_training(settings, trigger="manual", config=TINY).outcome == "canary_started"
        _wait_for(client, inspector, CHALLENGER, 3)
        _canary_reviews(client, inspector, reviewer, tmp_path / "canary2", challenger_ok=False)
        assert run_continuous_training(settings).outcome == "rolled_back"
        assert get_by_alias(settings, CHAMPION).version == 2  # type: ignore[union-attr]
        assert get_by_alias(settings, CHALLENGER) is None
        assert get_deployment(settings).mode is DeploymentMode.SINGLE
        _wait_for(client, inspector, CHALLENGER, None)
        client.post("/v1/admin/rollback", json={}, headers=inspector)  # an inspect key cannot: 403, nothing moves
        versions = {_inspect(client, inspector, p, vehicle=f"W{i}")["model_version"] for i, p in enumerate(dark)}
        assert versions == {"2"}
    engine.dispose()


def _inspect(client: TestClient, headers: dict[str, str], photo: bytes, *, vehicle: str) -> dict[str, str]:
    response = client.post(
        "/v1/inspect", files={"image": ("car.jpg", photo)}, data={"vehicle_id": vehicle}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def _review(client: TestClient, headers: dict[str, str], request_id: str, *, correct: bool) -> None:
    """Accept the answer, or correct it to one dent in the middle of the photo."""
    body = (
        {"decision": "correct", "labels": [{"label": "dent", "box": {"x1": 0.3, "y1": 0.3, "x2": 0.6, "y2": 0.6}}]}
        if correct
        else {"decision": "accept"}
    )
    deadline = time.monotonic() + 10
    while (response := client.post(f"/v1/review/{request_id}", json=body, headers=headers)).status_code == 404:
        assert time.monotonic() < deadline, response.text  # the answer reaches the log in the background
        time.sleep(0.05)
    assert response.status_code == 200, response.text


def _canary_reviews(
    client: TestClient, inspector: dict[str, str], reviewer: dict[str, str], folder: Path, *, challenger_ok: bool
) -> None:
    """Send photos of many vehicles until both sides of the canary have enough answers, and review them all."""
    photos = _photos(folder, 24, seed=11)
    for index, photo in enumerate(photos):
        answer = _inspect(client, inspector, photo, vehicle=f"{folder.name}-{index}")
        on_challenger = answer["route"] == "challenger"
        _review(client, reviewer, answer["request_id"], correct=on_challenger != challenger_ok)


def _wait_for(client: TestClient, headers: dict[str, str], role: str, version: int | None) -> None:
    """The app applies registry changes on its next poll; wait until it serves ``version`` as ``role``."""
    deadline = time.monotonic() + 20
    while client.get("/v1/deployment", headers=headers).json().get(role) != version:
        assert time.monotonic() < deadline, f"the service did not pick up {role} {version}"
        time.sleep(0.1)
