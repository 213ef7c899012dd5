"""Photos out to Label Studio as tasks with the model's boxes as pre-annotations, and the finished export back
as a dataset version that says who labelled each photo, when, in which task.

The export here is built by hand in Label Studio's documented JSON export format (task ``id``, ``annotations``
with ``completed_by``, ``created_at``, ``updated_at``); ``test_labelstudio_server.py`` runs the same round trip
through a real Label Studio server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redbox import SIZE, export, red_dataset
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.data.versions import DatasetStore
from autoinspect.evaluation.label_issues import LabelIssueReport
from autoinspect.pipelines.label_issues import LabelIssuesRun
from autoinspect.training.base import TrainConfig


@pytest.fixture(autouse=True)
def _home(cli_home: Path) -> Path:
    return cli_home


def write_tasks(tmp_path: Path) -> tuple[Path, list[dict]]:
    """``autoinspect data labelstudio-tasks`` for a red-box dataset version, pre-annotated by the red-box model."""
    runner = CliRunner()
    created = runner.invoke(cli.app, ["data", "version", "create", str(red_dataset(tmp_path / "red")), "--name", "red"])
    assert created.exit_code == 0, created.output
    model = export(tmp_path / "model.onnx", batch=None)
    out = tmp_path / "to-label"
    result = runner.invoke(cli.app, ["data", "labelstudio-tasks", str(out), "--dataset", "red", "--model", str(model)])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "tasks.json").read_text())


def test_tasks_carry_the_model_boxes_and_the_current_labels_as_predictions(tmp_path: Path) -> None:
    out, tasks = write_tasks(tmp_path)
    assert len(tasks) == 3
    first = next(t for t in tasks if t["data"]["autoinspect"] == "train/train_0.png")
    assert first["data"]["image"] == "/data/local-files/?d=images/train/train_0.png"
    assert first["data"]["split"] == "train" and (out / "images/train/train_0.png").is_file()
    model, current = first["predictions"]
    assert model["model_version"] == str(tmp_path / "model.onnx") and current["model_version"] == "current labels"
    boxes = {r["value"]["rectanglelabels"][0]: r for r in model["result"]}
    assert set(boxes) == {"scratch", "dent"} and all(0 < r["score"] <= 1 for r in boxes.values())
    assert model["score"] == max(r["score"] for r in boxes.values())
    scratch = boxes["scratch"]["value"]  # the red rectangle, in percent of the photo
    assert scratch["x"] == pytest.approx(40 / SIZE * 100, abs=1) and scratch["width"] == pytest.approx(37.5, abs=1)
    assert [r["value"]["rectanglelabels"] for r in current["result"]] == [["scratch"]] and "score" not in current
    clean = next(t for t in tasks if t["data"]["autoinspect"] == "train/train_2.png")
    assert clean["predictions"][1]["result"] == []
    config = (out / "label_config.xml").read_text()
    assert '<RectangleLabels name="label" toName="image">' in config and '<Label value="dent"/>' in config


def test_the_finished_export_comes_back_as_a_version_that_says_who_labelled_what(tmp_path: Path, _home: Path) -> None:
    out, tasks = write_tasks(tmp_path)
    for task_id, task in enumerate(tasks, 1):
        task["id"] = task_id
    # the annotator corrects the clean train photo to show a dent, confirms the red one, never opens the rest
    fixed = next(t for t in tasks if t["data"]["autoinspect"] == "train/train_1.png")
    dent = {
        "id": "d1",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": SIZE,
        "original_height": SIZE,
        "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0, "rectanglelabels": ["dent"]},
    }
    fixed["annotations"] = [
        {
            "id": 71,
            "result": [dent],
            "was_cancelled": False,
            "completed_by": 3,
            "created_at": "2026-12-07T10:00:00Z",
            "updated_at": "2026-12-07T10:05:00Z",
        }
    ]
    kept = next(t for t in tasks if t["data"]["autoinspect"] == "train/train_0.png")
    kept["annotations"] = [
        {
            "id": 72,
            "result": kept["predictions"][1]["result"],
            "completed_by": {"id": 4, "email": "ann@example.com"},
            "created_at": "2026-12-07T10:06:00Z",
        }
    ]
    export_file = tmp_path / "export.json"
    export_file.write_text(json.dumps(tasks))
    runner = CliRunner()
    imported = runner.invoke(cli.app, ["data", "import", str(export_file), "--images", str(out)])
    assert imported.exit_code == 0, imported.output
    assert imported.output.count("not annotated in Label Studio yet") == 1  # the model's guesses are not labels
    folder = Path(imported.output.strip().splitlines()[-1])
    created = runner.invoke(cli.app, ["data", "version", "create", str(folder), "--name", "red", "-m", "from LS"])
    assert created.exit_code == 0, created.output
    version = DatasetStore(_home / "datasets").resolve("red")
    shown = json.loads(runner.invoke(cli.app, ["data", "version", "show", "red"]).output)
    origins = shown["provenance"]
    # both labels are new to the version (the confirmed one differs from the old file in its last digits)
    assert version.parent is not None and set(origins) == {"train/train_0.png", "train/train_1.png"}
    assert origins["train/train_0.png"]["annotator"] == "ann@example.com"  # the SDK's user object
    assert origins["train/train_1.png"] == {
        "tool": "labelstudio",
        "task": str(fixed["id"]),
        "annotation": "71",
        "annotator": "3",
        "annotated_at": "2026-12-07T10:05:00Z",
        "photo": "train/train_1.png",
    }
    assert version.box_counts()["train"] == {"scratch": 1, "dent": 1}


def test_the_suspects_of_a_label_issues_run_go_out_worst_first(tmp_path: Path, _home: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(cli.app, ["data", "version", "create", str(red_dataset(tmp_path / "red")), "--name", "red"])
    assert created.exit_code == 0, created.output
    version = DatasetStore(_home / "datasets").resolve("red")
    flagged = ["train/train_2.png", "train/train_0.png"]
    report = LabelIssueReport(
        photos=3, classes=version.classes, confident_scores={}, quality={}, flagged=flagged, issues=[]
    )
    run = LabelIssuesRun(
        dataset=version.ref, folds=2, config=TrainConfig(), fold_seconds=1, rank_seconds=1, report=report, splits={}
    )
    (tmp_path / "issues").mkdir()
    (tmp_path / "issues" / "label_issues.json").write_text(run.model_dump_json())
    out = tmp_path / "to-label"
    result = runner.invoke(cli.app, ["data", "labelstudio-tasks", str(out), "--issues", str(tmp_path / "issues")])
    assert result.exit_code == 0, result.output
    tasks = json.loads((out / "tasks.json").read_text())
    assert [task["data"]["autoinspect"] for task in tasks] == flagged
    assert [p["model_version"] for p in tasks[1]["predictions"]] == ["current labels"]  # no model named: labels only
    both = runner.invoke(cli.app, ["data", "labelstudio-tasks", str(out), "--review", "--dataset", "red"])
    assert both.exit_code == 1 and "exactly one source" in str(both.exception)
