"""Validation on the real sample, and on a copy of it with planted defects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autoinspect.config import Settings
from autoinspect.data.checks import Check, Severity
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.quarantine import REASONS_FILE, quarantine_rejected
from autoinspect.data.validation import ValidationReport, validate_layout
from autoinspect.data.validation_report import read_report, write_report


def _by_check(report: ValidationReport) -> dict[Check, set[str]]:
    found: dict[Check, set[str]] = {}
    for issue in report.issues:
        found.setdefault(issue.check, set()).add(issue.file)
    return found


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_real_sample_passes_with_expected_counts(sample_root: Path, settings: Settings) -> None:
    report, scans = validate_layout(DatasetLayout(sample_root), settings)
    assert report.passed, [i for i in report.errors][:5]
    assert report.images == len(scans) == 328
    assert report.images_per_split == {"train": 159, "val": 84, "test": 85}
    # The sample's README table: 48 / 13 / 12 undamaged cars.
    assert report.none_images_per_split == {"train": 48, "val": 13, "test": 12}
    assert not [g for g in report.duplicate_groups if g.leaks]


def test_real_sample_small_scratch_statistics_match_labels(sample_root: Path, settings: Settings) -> None:
    """The reported share of thin scratches equals a direct count from the label files and image sizes."""
    report, _ = validate_layout(DatasetLayout(sample_root), settings)
    sides = []
    for label in sorted((sample_root / "labels").rglob("*.txt")):
        image = sample_root / "images" / label.parent.name / f"{label.stem}.jpg"
        width, height = Image.open(image).size
        for row in label.read_text().splitlines():
            values = [float(v) for v in row.split()]
            if values and values[0] == 0:
                xs, ys = values[1::2], values[2::2]
                sides.append(min((max(xs) - min(xs)) * width, (max(ys) - min(ys)) * height))
    scratch = next(s for s in report.box_stats if s.label == "scratch")
    assert scratch.boxes == len(sides) == report.boxes_per_class["scratch"]
    expected = float(np.mean(np.asarray(sides) < 13))
    assert scratch.share_below_px[13] == pytest.approx(expected, abs=1e-4)
    assert 0.3 < scratch.share_below_px[13] < 0.7  # thin scratches dominate: the detector must see them
    dent = next(s for s in report.box_stats if s.label == "dent")
    assert dent.min_side_px_median is not None and scratch.min_side_px_median is not None
    assert dent.min_side_px_median > 4 * scratch.min_side_px_median


def _plant_defects(root: Path) -> dict[str, str]:
    """Plant one defect of each kind; returns the file each should be reported on."""
    train = sorted((root / "images" / "train").glob("*.jpg"))
    test = sorted((root / "images" / "test").glob("*.jpg"))
    corrupt = train[0]
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 3])
    bad_class = root / "labels" / "train" / f"{train[1].stem}.txt"
    bad_class.write_text("7 0.5 0.5 0.1 0.1\n")
    out_of_range = root / "labels" / "val" / f"{sorted((root / 'images' / 'val').glob('*.jpg'))[0].stem}.txt"
    out_of_range.write_text("0 0.5 0.5 0.2 0.2\n1 1.4 0.5 0.2 0.2\n")
    leak_exact = root / "images" / "train" / "copied_from_test.jpg"
    leak_exact.write_bytes(test[0].read_bytes())
    (root / "labels" / "train" / "copied_from_test.txt").write_text("")
    mirrored = root / "images" / "val" / "mirrored_test.jpg"
    Image.open(test[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, quality=85)
    (root / "labels" / "val" / "mirrored_test.txt").write_text("")
    blank = root / "images" / "train" / "blank.jpg"
    Image.new("RGB", (320, 240), (90, 90, 90)).save(blank)
    (root / "labels" / "train" / "blank.txt").write_text("")
    tiny = root / "images" / "train" / "tiny.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tiny)
    (root / "labels" / "train" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    return {
        "decode": f"images/train/{corrupt.name}",
        "class_id": f"labels/train/{bad_class.name}",
        "coordinates": f"labels/val/{out_of_range.name}",
        "leak_exact": "images/train/copied_from_test.jpg",
        "leak_mirror": "images/val/mirrored_test.jpg",
        "near_constant": "images/train/blank.jpg",
        "min_size": "images/train/tiny.png",
        "missing_label": "labels/train/tiny.txt",
        "orphan": "labels/train/orphan.txt",
    }


def test_planted_defects_are_found_and_quarantined(sample_copy: Path, settings: Settings) -> None:
    planted = _plant_defects(sample_copy)
    before = {p: _digest(p) for p in sample_copy.rglob("*") if p.is_file()}
    layout = DatasetLayout(sample_copy)
    report, _ = validate_layout(layout, settings)
    found = _by_check(report)
    assert not report.passed
    assert found[Check.DECODE] == {planted["decode"]}
    assert found[Check.CLASS_ID] == {planted["class_id"]}
    assert found[Check.COORDINATES] == {planted["coordinates"]}
    assert found[Check.SPLIT_LEAK] == {planted["leak_exact"], planted["leak_mirror"]}
    assert found[Check.NEAR_CONSTANT] == {planted["near_constant"]}
    assert found[Check.MIN_SIZE] == {planted["min_size"]}
    assert found[Check.MISSING_LABEL] == {planted["missing_label"]}
    assert found[Check.ORPHAN_LABEL] == {planted["orphan"]}
    coordinate_issue = next(i for i in report.issues if i.check is Check.COORDINATES)
    assert coordinate_issue.line == 2 and "1.4" in coordinate_issue.message
    leak_groups = [g for g in report.duplicate_groups if g.leaks]
    assert len(leak_groups) == 2 and all(g.splits[0] == "test" for g in leak_groups)

    rejected = report.rejected_images()
    assert planted["decode"] in rejected and planted["leak_mirror"] in rejected
    assert not any(r.startswith("images/test/") for r in rejected)  # the gold copy is the one kept

    target = quarantine_rejected(report, layout, settings.quarantine_dir)
    assert target is not None
    reasons = json.loads((target / REASONS_FILE).read_text())
    assert {r["image"] for r in reasons["rejected"]} == rejected
    bad_label = target / planted["class_id"]
    assert bad_label.read_text() == "7 0.5 0.5 0.1 0.1\n"
    after = {p: _digest(p) for p in sample_copy.rglob("*") if p.is_file()}
    assert after == before  # nothing deleted or changed in the source


def test_report_json_and_html_round_trip(sample_copy: Path, settings: Settings, tmp_path: Path) -> None:
    _plant_defects(sample_copy)
    report, _ = validate_layout(DatasetLayout(sample_copy), settings)
    json_path, html_path = write_report(report, tmp_path / "report")
    payload = json.loads(json_path.read_text())
    assert payload["passed"] is False and payload["counts_by_check"]["split_leak"] == 2
    assert read_report(json_path).issues == report.issues
    html = html_path.read_text()
    assert "FAIL" in html and "split_leak" in html and "mirrored_test.jpg" in html


def test_warnings_do_not_fail(tmp_path: Path, settings: Settings) -> None:
    layout = DatasetLayout.create(tmp_path / "ds", settings.classes)
    folder = layout.image_dir(None)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(folder / "a.jpg")
    report, _ = validate_layout(layout, settings)
    assert report.passed
    assert {i.check for i in report.issues} == {Check.MISSING_LABEL, Check.NO_SPLIT}
    assert all(i.severity is Severity.WARNING for i in report.issues)
