"""The monitoring job end to end: a real SQLite prediction log, a real MLflow registry, real Evidently, and a
webhook receiver on loopback that must get the alert.

The champion is registered with the reference features of a generated dataset (``features_table`` on its train
split, as registration computes them); the logged photos are generated the same way, written as JPEG and decoded
as the service decodes uploads, so only the camera settings differ between the undrifted and drifted windows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper
from registered import register_versions
from s3 import s3_server
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.config import AlertSettings, MonitoringSettings, Settings, StorageSettings, get_settings
from autoinspect.data.profiling import features_table
from autoinspect.data.synthetic import SyntheticStyle, generate_dataset
from autoinspect.domain import (
    NONE_VERDICT,
    ONNX_INPUT,
    ONNX_OUTPUT,
    Annotation,
    Box,
    DatasetRef,
    Detection,
    ModelMetadata,
    Split,
)
from autoinspect.images import decode_image
from autoinspect.monitoring.alerts import Rule
from autoinspect.monitoring.features import live_features
from autoinspect.onnx_metadata import write_metadata
from autoinspect.pipelines.monitoring import run_monitoring
from autoinspect.store import (
    PredictionEntry,
    PredictionLog,
    ReviewLog,
    Route,
    create_schema,
    make_engine,
)
from autoinspect.ui.reports import monitoring_runs

UNTIL = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = 30
"""Answers per window: the default ``min_window_size``."""
SIZE = (96, 96)
OFFLINE = {"precision/dent": 0.9, "recall/dent": 0.9, "image/damaged_caught": 0.95, "image/clean_none_rate": 0.9}
DENT = Box(x1=0.2, y1=0.2, x2=0.5, y2=0.5)
METADATA = ModelMetadata(
    classes=["scratch", "dent"], input_size=64, backend="test", score_thresholds={"scratch": 0.5, "dent": 0.5}
)


class Receiver(BaseHTTPRequestHandler):
    """Stores every JSON body posted to it on the server (``server.bodies``) and answers 204."""

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", server.bodies  # type: ignore[attr-defined]
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="module")
def blank_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX detector that never finds anything (zeros ``[N, 1, 6]``), built without torch in milliseconds.

    Monitoring never runs the model; the registry does, once, on its input example when the version is logged.
    """
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [1], [0])
    nodes = [
        helper.make_node("Shape", [ONNX_INPUT], ["shape"]),
        helper.make_node("Gather", ["shape", "first"], ["batch"], axis=0),
        helper.make_node("Concat", ["batch", "rows"], ["out_shape"], axis=0),
        helper.make_node("ConstantOfShape", ["out_shape"], [ONNX_OUTPUT], value=zero),
    ]
    size = METADATA.input_size
    graph = helper.make_graph(
        nodes,
        "blank",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["batch", 1, 6])],
        initializer=[
            helper.make_tensor("first", TensorProto.INT64, [1], [0]),
            helper.make_tensor("rows", TensorProto.INT64, [2], [1, 6]),
        ],
    )
    path = tmp_path_factory.mktemp("model") / "blank.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    write_metadata(path, METADATA)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Reference table rows (train split), and live features of undrifted photos and of drifted ones (another
    camera: overexposed by 60 grey levels and slightly out of focus)."""
    root = tmp_path_factory.mktemp("photos")
    train = generate_dataset(root / "train", 100, seed=0, size=SIZE, splits={Split.TRAIN: 1.0})
    table = features_table(train, workers=2, split=Split.TRAIN)

    def live(name: str, seed: int, style: SyntheticStyle) -> list[dict[str, Any]]:
        layout = generate_dataset(root / name, WINDOW, seed=seed, size=SIZE, splits=None, style=style)
        return [live_features(decode_image(item.image)) for item in layout.items()]

    return {
        "reference": table.to_dict(orient="records"),
        "previous": live("previous", 1, SyntheticStyle()),
        "same": live("same", 2, SyntheticStyle()),
        "drifted": live("drifted", 3, SyntheticStyle(brightness_shift=60.0, blur_radius=1.5)),
    }


@pytest.fixture
def monitored(
    tracked_settings: Settings, blank_onnx: Path, photos: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> Settings:
    """Settings on a registry whose champion (version 1) carries the reference features and offline figures."""
    reference_csv = tmp_path / "reference_features.csv"
    pd.DataFrame.from_records(photos["reference"]).to_csv(reference_csv, index=False)
    dataset = DatasetRef(name="synthetic", digest="ab" * 32)
    register_versions(
        tracked_settings, blank_onnx, METADATA, metrics=[OFFLINE], reference_features_csv=reference_csv, dataset=dataset
    )
    return tracked_settings


def with_webhook(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"monitoring": MonitoringSettings(alerts=AlertSettings(webhook_url=url))})


def log_window(
    settings: Settings, name: str, features: list[dict[str, Any]], end: datetime, *, none_every: int = 2
) -> list[PredictionEntry]:
    """One answer per photo, a minute apart from 59 minutes before ``end``; every ``none_every``-th is "None"."""
    entries = [
        PredictionEntry(
            request_id=f"{name}-{i}",
            created_at=end - timedelta(minutes=59 - i),
            model_version="1",
            route=Route.CHAMPION,
            verdict=NONE_VERDICT if i % none_every == 0 else ["dent"],
            detections=[] if i % none_every == 0 else [Detection(label="dent", box=DENT, confidence=0.9)],
            needs_review=i % 5 == 0,
            max_score=0.1 if i % none_every == 0 else 0.9,
            latency_ms=20.0 + i,
            features=row,
        )
        for i, row in enumerate(features)
    ]
    engine = make_engine(settings.store_url)
    create_schema(engine)
    PredictionLog(engine).write(entries)
    engine.dispose()
    return entries


def test_drifted_window_alerts_through_the_webhook(
    monitored: Settings, photos: dict[str, list[dict[str, Any]]], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = webhook
    settings = with_webhook(monitored, url)
    log_window(settings, "previous", photos["previous"], UNTIL - timedelta(hours=1))
    log_window(settings, "drifted", photos["drifted"], UNTIL)

    report = run_monitoring(settings, until=UNTIL, hours=1)

    assert report.model_version == "1"
    assert report.input_drift.result is not None, report.input_drift.skipped
    assert "brightness" in report.input_drift.result.drifted_columns
    assert report.signals.drift_share == report.input_drift.result.drift_share >= 0.3
    assert [alert.rule for alert in report.alerts_sent] == [Rule.INPUT_DRIFT]
    assert len(bodies) == 1 and "input_drift" in bodies[0]["text"]
    assert report.alerts_sent[0].fingerprint == "input_drift@1"
    for name in ("input_drift.html", "output_drift.html", "summary.json"):
        assert (report.folder / name).is_file(), name
    assert report.folder.parent == settings.monitoring_dir
    summary = json.loads(report.summary_json.read_text(encoding="utf-8"))
    assert summary["alerts_sent"][0]["rule"] == "input_drift"
    assert summary["kpis"]["answered"] == WINDOW
    assert report.output_drift.result is not None and report.signals.none_rate_change == 0.0

    again = run_monitoring(settings, until=UNTIL, hours=1)
    assert [alert.rule for alert in again.alerts_raised] == [Rule.INPUT_DRIFT]
    assert again.alerts_sent == [] and len(bodies) == 1  # within the cool-down
    assert again.folder != report.folder


def test_undrifted_window_raises_nothing(
    monitored: Settings, photos: dict[str, list[dict[str, Any]]], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = webhook
    settings = with_webhook(monitored, url)
    log_window(settings, "previous", photos["previous"], UNTIL - timedelta(hours=1))
    log_window(settings, "same", photos["same"], UNTIL)

    report = run_monitoring(settings, until=UNTIL, hours=1)

    assert report.input_drift.result is not None and not report.input_drift.result.dataset_drift
    assert report.output_drift.result is not None
    assert report.signals.review_rate == pytest.approx(6 / WINDOW)  # every 5th answer flagged
    assert report.alerts_raised == [] and report.alerts_sent == [] and bodies == []
    assert report.performance.skipped is not None  # no reviews in the window


def test_reviews_that_miss_damage_raise_a_performance_alert(
    monitored: Settings, photos: dict[str, list[dict[str, Any]]], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = webhook
    settings = with_webhook(monitored, url)
    end = datetime.now(UTC) + timedelta(minutes=1)  # reviews are stamped with the wall clock
    log_window(settings, "previous", photos["previous"], end - timedelta(hours=1))
    entries = log_window(settings, "same", photos["same"], end)
    engine = make_engine(settings.store_url)
    reviews = ReviewLog(engine)
    for entry in entries:  # every photo shows the dent: the found ones are accepted, the "None" answers corrected
        truth = None if entry.detections else [Annotation(label="dent", box=DENT)]
        reviews.submit(entry.request_id, reviewer="ines", labels=truth, prediction=entry)
    engine.dispose()

    report = run_monitoring(settings, until=end, hours=1)

    performance = report.performance
    assert performance.skipped is None and performance.reviewed == WINDOW
    assert performance.online == {
        "precision/dent": 1.0,
        "recall/dent": pytest.approx(0.5),
        "image/damaged_caught": pytest.approx(0.5),
    }
    assert performance.drops == {
        "precision/dent": pytest.approx(0.9 - 1.0),
        "recall/dent": pytest.approx(0.9 - 0.5),
        "image/damaged_caught": pytest.approx(0.95 - 0.5),
    }
    assert (report.kpis.override_rate, report.kpis.damaged_caught) == (pytest.approx(0.5), pytest.approx(0.5))
    assert [(alert.rule, alert.severity.value) for alert in report.alerts_sent] == [
        ("performance:image/damaged_caught", "critical"),
        ("performance:recall/dent", "critical"),
    ]
    assert [body["text"].split(" — ")[0] for body in bodies] == [
        "[AutoInspect] CRITICAL: performance:image/damaged_caught",
        "[AutoInspect] CRITICAL: performance:recall/dent",
    ]


def test_small_windows_are_skipped_with_a_reason(
    monitored: Settings, photos: dict[str, list[dict[str, Any]]], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = webhook
    settings = with_webhook(monitored, url)
    log_window(settings, "drifted", photos["drifted"][:10], UNTIL, none_every=1)

    report = run_monitoring(settings, until=UNTIL, hours=1)

    assert report.input_drift.result is None and report.output_drift.result is None
    assert report.input_drift.skipped == "10 answers with features in the window, fewer than 30"
    assert report.output_drift.skipped == "10 answers in the window, fewer than 30"
    assert report.performance.skipped == "0 reviewed answers of version 1, fewer than 30"
    assert report.signals.drift_share is None and report.signals.review_rate is None
    assert report.alerts_raised == [] and bodies == []
    assert report.kpis.answered == 10 and report.kpis.none_rate == 1.0
    assert sorted(path.name for path in report.folder.iterdir()) == ["summary.json"]


def test_monitor_command_prints_the_summary_path_and_kpis(
    monitored: Settings, photos: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    log_window(monitored, "recent", photos["same"][:4], datetime.now(UTC), none_every=2)
    monkeypatch.setenv("AUTOINSPECT_HOME", str(monitored.home))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["monitor", "--hours", "2"])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    summary_line, kpi_line = result.output.strip().splitlines()[-2:]
    assert Path(summary_line).is_file() and Path(summary_line).parent.parent == monitored.monitoring_dir
    assert kpi_line.startswith("4 answers (0 shadow), automation 75.0%, review 25.0%, override n/a, None 50.0%")
    assert kpi_line.endswith("alerts sent: none")


def test_a_run_on_one_worker_reaches_the_ui_on_another_through_object_storage(
    monitored: Settings, photos: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The monitoring DAG's task runs on a worker whose home is its own; with ``storage.reports_url`` its run
    still shows on the UI's Monitoring page, read from another home."""
    with s3_server(monkeypatch, "reports") as endpoint:
        storage = StorageSettings(reports_url="s3://reports/prod", s3_endpoint_url=endpoint)
        worker = monitored.model_copy(
            update={
                "storage": storage,
                "tracking": monitored.tracking.model_copy(update={"uri": monitored.tracking_uri}),
                "store": monitored.store.model_copy(update={"url": monitored.store_url}),
            }
        )
        log_window(worker, "previous", photos["previous"], UNTIL - timedelta(hours=1))
        log_window(worker, "drifted", photos["drifted"], UNTIL)
        report = run_monitoring(worker, until=UNTIL, hours=1)
        ui = worker.model_copy(update={"home": tmp_path / "ui-home"})

        (run,) = monitoring_runs(ui, last=10)

        assert run.folder == ui.monitoring_dir / report.folder.name
        assert run.model_version == "1" and [alert.rule for alert in run.alerts_sent] == [Rule.INPUT_DRIFT]
        for name in ("input_drift.html", "output_drift.html", "summary.json"):
            assert (run.folder / name).read_bytes() == (report.folder / name).read_bytes(), name
