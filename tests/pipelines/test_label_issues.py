"""``autoinspect data issues`` as a user runs it on real photos: fold models trained and predicting what they did
not see, the report on disk, the test split never read, and a cleaned version for the ablation."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Split
from autoinspect.pipelines import label_issues

PER_SPLIT = {Split.TRAIN: 24, Split.VAL: 10, Split.TEST: 4}


@pytest.fixture(autouse=True)
def _home(cli_home: Path) -> Path:
    return cli_home


def _subset(sample_root: Path, root: Path) -> Path:
    """Some real photos of each split, damaged and clean alternately."""
    source = DatasetLayout(sample_root)
    layout = DatasetLayout.create(root, source.names)
    for split, count in PER_SPLIT.items():
        items = [item for item in source.items() if item.split is split]
        damaged = [i for i in items if i.read_labels(2).rows]
        clean = [i for i in items if not i.read_labels(2).rows]
        chosen = [x for pair in zip(damaged, clean, strict=False) for x in pair][:count]
        for item in chosen:
            target = layout.image_dir(split) / item.image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.image, target)
            label = layout.label_path(split, item.image.name)
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(item.label.read_text(encoding="utf-8") if item.label.is_file() else "", encoding="utf-8")
    return root


def test_issues_are_ranked_out_of_fold_reported_and_the_worst_train_photos_dropped(
    sample_root: Path, tmp_path: Path, _home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _subset(sample_root, tmp_path / "subset")
    out = tmp_path / "report"
    recipe = tmp_path / "folds.yaml"  # the fold recipe, made tiny: no photo classifier, workers in-process
    recipe.write_text("epochs: 3\nimgsz: 64\nworkers: 0\nlite: {backbone_lr_scale: 0.0, photo_weight: 0.0}\n")
    args = ["data", "issues", str(folder), "--folds", "2", "--config", str(recipe), "--epochs", "1", "--out", str(out)]
    result = CliRunner().invoke(cli.app, [*args, "--drop", "3"])
    assert result.exit_code == 0, result.output
    assert "flagged" in result.output and "report:" in result.output

    run = json.loads((out / "label_issues.json").read_text())
    checked = PER_SPLIT[Split.TRAIN] + PER_SPLIT[Split.VAL]
    assert run["report"]["photos"] == checked and len(run["report"]["quality"]) == checked
    assert not [key for key in run["report"]["quality"] if key.startswith("test/")]  # the judge stays unread
    assert run["config"]["epochs"] == 1 and run["config"]["imgsz"] == 64  # the file, then the flag over it
    assert len(list((out / "folds").glob("fold-*/model/model.onnx"))) == 2
    rows = list(csv.DictReader((out / "label_issues.csv").open(encoding="utf-8")))
    assert len(rows) == len(run["report"]["issues"])
    assert [float(r["score"]) for r in rows] == sorted(float(r["score"]) for r in rows)
    assert {r["image"] for r in rows} == set(run["report"]["flagged"])
    html = (out / "label_issues.html").read_text(encoding="utf-8")
    per_kind = Counter(r["kind"] for r in rows)
    assert html.count("data:image/jpeg;base64,") == sum(min(n, label_issues.SHOWN_PER_KIND) for n in per_kind.values())
    assert (out / "contact_sheet.png").is_file() == bool(run["report"]["flagged"])

    # the cleaned version leaves out the worst flagged train photos, and says why
    flagged_train = [key for key in run["report"]["flagged"] if key.startswith("train/")]
    assert run["dropped"] == flagged_train[:3]
    store = DatasetStore(_home / "datasets")
    original, cleaned = store.resolve("subset"), store.resolve("subset-cleaned")
    assert cleaned.parent == original.digest and run["cleaned"]["digest"] == cleaned.digest
    assert len(cleaned.items) == len(original.items) - len(run["dropped"])
    assert sorted(e.name for e in cleaned.excluded) == sorted(run["dropped"])
    assert all("suspected label error" in e.reason for e in cleaned.excluded)
    assert cleaned.split_counts()["test"] == PER_SPLIT[Split.TEST]

    # a rerun with the same folds and recipe reuses the out-of-fold predictions instead of training again
    def no_training(*_: object) -> None:
        raise AssertionError("the fold models were trained again")

    monkeypatch.setattr(label_issues, "make_backend", no_training)
    again = CliRunner().invoke(cli.app, args)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "label_issues.json").read_text())["report"] == run["report"]
