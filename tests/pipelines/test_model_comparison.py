"""``autoinspect compare`` as a user runs it: two real ONNX models on a registered dataset version, the photos
where they differ listed costliest first, and the report with both answers drawn."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image
from redbox import METADATA, SIZE, edited, export, photo
from typer.testing import CliRunner

from autoinspect import cli

RED = (40, 40, 100, 90)


@pytest.fixture(autouse=True)
def _home(cli_home: Path) -> Path:
    return cli_home


def _dataset(root: Path) -> Path:
    """Red-box photos: on test, 3 with a red rectangle labelled scratch + dent, 3 clean."""
    root.mkdir(parents=True)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n  0: scratch\n  1: dent\n"
    )
    x1, y1, x2, y2 = RED
    yolo = f"{(x1 + x2) / 2 / SIZE} {(y1 + y2) / 2 / SIZE} {(x2 - x1) / SIZE} {(y2 - y1) / SIZE}"
    for split, count in (("train", 4), ("val", 4), ("test", 6)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for index in range(count):
            red = index < count // 2
            name = f"{split}_{index}"
            Image.fromarray(photo(SIZE, SIZE, RED if red else None, seed=index)).save(
                root / "images" / split / f"{name}.png"
            )
            labels = f"0 {yolo}\n1 {yolo}\n" if red else ""
            (root / "labels" / split / f"{name}.txt").write_text(labels)
    return root


def test_compare_lists_the_photos_a_candidate_breaks_and_draws_them(tmp_path: Path, _home: Path) -> None:
    runner = CliRunner()
    folder = _dataset(tmp_path / "red")
    created = runner.invoke(cli.app, ["data", "version", "create", str(folder), "--name", "red"])
    assert created.exit_code == 0, created.output
    baseline = export(tmp_path / "baseline.onnx", batch=None)
    # the candidate reports scratches only above 0.95: the red photos lose their scratch
    strict = METADATA.model_copy(update={"score_thresholds": {"scratch": 0.95, "dent": 0.5}})
    candidate = edited(baseline, tmp_path / "candidate.onnx", metadata=strict.model_dump_json())
    result = runner.invoke(cli.app, ["compare", str(baseline), str(candidate), "--data", "red"])
    assert result.exit_code == 0, result.output
    assert "6 photos: 3 answered alike; regressed 3, fixed 0" in result.output
    assert "dent scratch -> dent" in result.output
    report = _home / "reports" / "comparisons" / "baseline-vs-candidate"
    assert f"report: {report / 'comparison.html'}" in result.output.replace("\n", "")
    rows = list(csv.DictReader((report / "comparison.csv").open()))
    assert [(r["kind"], r["truth"], r["baseline"], r["candidate"], r["boxes_lost"]) for r in rows] == [
        ("regressed", "dent scratch", "dent scratch", "dent", "1")
    ] * 3
    html = (report / "comparison.html").read_text()
    assert html.count("data:image/jpeg;base64,") == 6  # both answers drawn for each of the 3 photos
    assert json.loads((report / "comparison.json").read_text())["identical"] == 3
