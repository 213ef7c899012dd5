"""The four commands a new user runs, end to end on CPU: train, evaluate, register, predict.

A tiny lite model (2 epochs, 128 px, 30 synthetic photos) keeps this within CI's budget; quality is measured by
benchmarks/quality.py, not here. Everything goes through the CLI into a real SQLite MLflow store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.config import get_settings
from autoinspect.data.synthetic import generate_dataset

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOINSPECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def _invoke(*args: str) -> str:
    result = runner.invoke(cli.app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def test_train_evaluate_register_predict(home: Path, tmp_path: Path) -> None:
    data = generate_dataset(tmp_path / "synthetic", 30, seed=1, size=(128, 128)).root
    output = _invoke("train", "--data", str(data), "--epochs", "2", "--imgsz", "128", "--batch", "8")
    run_id = next(line.split()[1] for line in output.splitlines() if line.startswith("run: "))
    model_path = next(line.split()[1] for line in output.splitlines() if line.startswith("model: "))
    summary = [line for line in output.splitlines() if line.startswith(("test AP50", "damaged caught"))]
    assert len(summary) == 2 and not re.search(r"\d\.\d{4}", "".join(summary)), summary  # figures for people

    run = MlflowClient(f"sqlite:///{home.resolve() / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FINISHED"
    assert {"test/map50", "test/image/damaged_caught", "test/latency_ms_p95"} <= set(run.data.metrics)
    assert run.data.tags["dataset.name"] == "synthetic"

    evaluated = _invoke("evaluate", "--model", model_path, "--data", "synthetic", "--out", str(tmp_path / "e.json"))
    assert "damaged caught" in evaluated
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["images"] > 0 and set(report["thresholds"]) == {"scratch", "dent"}

    get_settings.cache_clear()
    with pytest.MonkeyPatch.context() as patch:  # floors this 2-epoch model cannot reach
        patch.setenv("AUTOINSPECT_GATES__MIN_MAP50", "0.99")
        refused = _invoke("register", "--run", run_id)
    get_settings.cache_clear()
    assert "FAIL map50" in refused and "version 1: alias none (gates failed; --force" in refused
    registered = _invoke("register", "--run", run_id, "--force")
    assert "version 2: alias champion (forced)" in registered
    listed = _invoke("models", "list")
    assert "v2 champion lite" in listed and "v1 - lite" in listed and "DEMO" not in listed

    photo = next((data / "images" / "test").iterdir())
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:200])
    printed = _invoke("predict", str(photo), str(broken))
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert lines[0]["file"] == str(photo) and isinstance(lines[0]["verdict"], list) and lines[0]["verdict"]
    assert lines[0]["damaged"] is (lines[0]["verdict"] != ["None"]) and 0 <= lines[0]["confidence"] <= 1
    assert "truncated" in lines[1]["error"]
    assert not (tmp_path / "mlruns").exists()  # MLflow writes under the home, never the working folder


def test_search_runs_trials_as_nested_runs(home: Path, tmp_path: Path) -> None:
    data = generate_dataset(tmp_path / "synthetic", 20, seed=2, size=(96, 96)).root
    output = _invoke("train", "--data", str(data), "--epochs", "1", "--imgsz", "96", "--batch", "8", "--search", "2")
    best_run = next(line.split()[1] for line in output.splitlines() if line.startswith("run: "))
    client = MlflowClient(f"sqlite:///{home.resolve() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("autoinspect").experiment_id])
    parents = [r for r in runs if r.info.run_name == "search-2"]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(trials) == 2
    assert best_run in {t.info.run_id for t in trials}
    assert {t.data.params["lr"] for t in trials} != {"0.001"}  # the search changed the learning rate
