"""Import and export of YOLO, COCO and Label Studio annotations through the canonical layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from autoinspect.data.classmap import ClassMap
from autoinspect.data.formats import (
    ExportFormat,
    ImportFormat,
    ImportSummary,
    detect_format,
    export_dataset,
    import_dataset,
)
from autoinspect.data.formats.common import image_size
from autoinspect.data.labels import format_yolo_labels, parse_yolo_labels
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Box, Split
from autoinspect.errors import ConfigError, DataFormatError
from autoinspect.images import EXIF_ORIENTATION_TAG

CLASSES = ["scratch", "dent"]
Labels = dict[str, list[tuple[int, tuple[float, float, float, float]]]]


def _photo(path: Path, size: tuple[int, int] = (64, 48), seed: int = 0) -> Path:
    """A small JPEG (or PNG, by suffix): solid colour plus noise, so every file has different bytes."""
    rng = np.random.default_rng(seed)
    pixels = np.full((size[1], size[0], 3), (90, 120, 150), dtype=np.int16)
    pixels += rng.integers(-20, 20, pixels.shape, dtype=np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)
    return path


def _labels(root: Path) -> Labels:
    """Every image of a layout by split-qualified name, with its label rows as (class id, box corners)."""
    layout = DatasetLayout(root)
    found: Labels = {}
    for item in layout.items():
        parsed = parse_yolo_labels(item.label.read_text(encoding="utf-8"), len(layout.names))
        assert not parsed.issues, item.label
        found[item.key] = sorted((r.class_id, (r.box.x1, r.box.y1, r.box.x2, r.box.y2)) for r in parsed.rows)
    return found


def _assert_same_labels(actual: Labels, expected: Labels) -> None:
    assert actual.keys() == expected.keys()
    for key, rows in expected.items():
        assert [c for c, _ in actual[key]] == [c for c, _ in rows], key
        for (_, got), (_, want) in zip(actual[key], rows, strict=True):
            assert got == pytest.approx(want, abs=1e-5), key


def _import(
    source: Path, fmt: ImportFormat, tmp_path: Path, class_map: ClassMap | None = None, **kwargs: Any
) -> ImportSummary:
    return import_dataset(
        source,
        fmt,
        tmp_path / "out",
        CLASSES,
        class_map or ClassMap(),
        quarantine_dir=tmp_path / "quarantine",
        **kwargs,
    )


@pytest.fixture
def layout_root(tmp_path: Path) -> Path:
    """A canonical layout with boxes, a "None" image per split, a portrait image and an unsplit image."""
    layout = DatasetLayout.create(tmp_path / "layout", CLASSES)
    contents: list[tuple[Split | None, str, tuple[int, int], list[tuple[int, Box]]]] = [
        (
            Split.TRAIN,
            "a.jpg",
            (64, 48),
            [(0, Box(x1=0.1, y1=0.2, x2=0.4, y2=0.5)), (1, Box(x1=0.5, y1=0.5, x2=1, y2=1))],
        ),
        (Split.TRAIN, "clean.jpg", (64, 48), []),
        (Split.VAL, "portrait.png", (48, 64), [(1, Box(x1=0.25, y1=0.125, x2=0.75, y2=0.3))]),
        (Split.TEST, "clean2.jpg", (64, 48), []),
        (None, "later.jpg", (64, 48), [(0, Box(x1=0.0, y1=0.0, x2=0.333333, y2=0.666667))]),
    ]
    for seed, (split, name, size, rows) in enumerate(contents):
        _photo(layout.image_dir(split) / name, size, seed)
        label = layout.label_path(split, name)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(format_yolo_labels(rows), encoding="utf-8")
    return layout.root


@pytest.mark.realdata
def test_yolo_polygons_of_the_real_sample_become_their_bounds(sample_root: Path, tmp_path: Path) -> None:
    labels = sorted(p for p in (sample_root / "labels" / "train").glob("*.txt") if p.read_text().strip())[:4]
    source = tmp_path / "source"
    for folder in ("images", "labels"):
        (source / folder / "train").mkdir(parents=True)
    shutil.copy2(sample_root / "data.yaml", source / "data.yaml")
    expected: Labels = {}
    for label in labels:
        image = next((sample_root / "images" / "train").glob(f"{label.stem}.*"))
        shutil.copy2(image, source / "images" / "train" / image.name)
        shutil.copy2(label, source / "labels" / "train" / label.name)
        rows = []
        for line in label.read_text().splitlines():
            values = [float(v) for v in line.split()]
            assert len(values) > 5, "the sample is expected to hold polygons"
            xs, ys = np.clip(values[1::2], 0, 1), np.clip(values[2::2], 0, 1)
            rows.append((int(values[0]), (xs.min(), ys.min(), xs.max(), ys.max())))
        expected[f"train/{image.name}"] = sorted(rows)

    summary = _import(source, "yolo", tmp_path)

    _assert_same_labels(_labels(tmp_path / "out"), expected)
    assert summary.images == {"train": len(labels)}
    assert not summary.problems
    copied = next(iter(expected))
    assert (tmp_path / "out/images" / copied).read_bytes() == (source / "images" / copied).read_bytes()


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", ["coco", "labelstudio"])
def test_real_sample_round_trips(fmt: ExportFormat, sample_root: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    imported = import_dataset(sample_root, "yolo", layout, CLASSES, ClassMap(), quarantine_dir=tmp_path / "q")
    exported = export_dataset(layout, fmt, tmp_path / f"{fmt}.json")

    summary = _import(exported, fmt, tmp_path, images_dir=layout)

    _assert_same_labels(_labels(tmp_path / "out"), _labels(layout))
    assert (summary.images, summary.boxes, summary.problems) == (imported.images, imported.boxes, [])


@pytest.mark.parametrize("fmt", ["coco", "labelstudio"])
def test_export_then_import_gives_back_the_same_dataset(fmt: ExportFormat, layout_root: Path, tmp_path: Path) -> None:
    exported = export_dataset(layout_root, fmt, tmp_path / "export" / f"{fmt}.json")
    assert detect_format(exported) == fmt

    summary = _import(exported, fmt, tmp_path, images_dir=layout_root)

    before, after = _labels(layout_root), _labels(tmp_path / "out")
    _assert_same_labels(after, before)
    assert {k for k, rows in after.items() if not rows} == {"train/clean.jpg", "test/clean2.jpg"}
    assert summary.images == {"train": 2, "val": 1, "test": 1, "unsplit": 1}
    assert summary.boxes == {"scratch": 2, "dent": 2}
    assert not summary.problems


def test_export_uses_the_upright_size_of_exif_rotated_photos(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 6
    path = tmp_path / "rotated.jpg"
    Image.new("RGB", (64, 48)).save(path, exif=exif)

    assert image_size(path) == (48, 64)


def test_labelstudio_rotated_rectangle_polygon_and_task_rules(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for name in ("car.jpg", "door.jpg", "skipped.jpg", "predicted.jpg", "unlabelled.jpg", "brush.jpg", "nolabel.jpg"):
        _photo(images / name)
    rotated = {
        "type": "rectanglelabels",
        "original_width": 200,
        "original_height": 100,
        # 40 x 30 px at (60, 20) px, turned 90 degrees clockwise about (60, 20): x 30..60, y 20..60.
        "value": {"x": 30, "y": 20, "width": 20, "height": 30, "rotation": 90, "rectanglelabels": ["Dent"]},
    }
    polygon = {
        "type": "polygonlabels",
        "value": {"points": [[10, 20], [50, 10], [40, 70]], "polygonlabels": ["scratch"]},
    }
    box = {"x": 10, "y": 10, "width": 50, "height": 50}
    plain = {"type": "rectanglelabels", "value": {**box, "rectanglelabels": ["dent"]}}
    tasks = [
        {"data": {"image": "/data/upload/3/8f3a2b1c-car.jpg"}, "annotations": [{"result": [rotated]}]},
        {
            "data": {"image": "http://ls.local/data/local-files/?d=photos%2Fdoor.jpg"},
            "annotations": [{"result": [polygon]}],
        },
        {"data": {"image": "skipped.jpg"}, "annotations": [{"result": [], "was_cancelled": True}]},
        {"data": {"image": "predicted.jpg"}, "annotations": [], "predictions": [{"result": [plain]}]},
        {"data": {"image": "unlabelled.jpg"}},
        {"data": {"image": "/data/upload/3/0badc0de-missing.jpg"}, "annotations": [{"result": []}]},
        {"data": {"image": "brush.jpg"}, "annotations": [{"result": [{"type": "brushlabels", "value": {}}]}]},
        {
            "data": {"image": "nolabel.jpg"},
            "annotations": [{"result": [{"type": "rectanglelabels", "value": {**box, "rectanglelabels": []}}]}],
        },
    ]
    export = tmp_path / "ls.json"
    export.write_text(json.dumps(tasks))

    summary = _import(export, "labelstudio", tmp_path, images_dir=images)

    expected: Labels = {
        "car.jpg": [(1, (0.15, 0.2, 0.3, 0.6))],
        "door.jpg": [(0, (0.1, 0.1, 0.5, 0.7))],
        "predicted.jpg": [(1, (0.1, 0.1, 0.6, 0.6))],
    }
    _assert_same_labels(_labels(tmp_path / "out"), expected)
    assert sorted(p.file for p in summary.problems) == [
        "/data/upload/3/0badc0de-missing.jpg",
        "brush.jpg",
        "nolabel.jpg",
        "skipped.jpg",
        "unlabelled.jpg",
    ]


def _coco(tmp_path: Path, categories: list[str], annotations: list[tuple[int, int, list[float]]]) -> Path:
    """A COCO file over images 1..3 (64 x 48 px) named ``img<id>.jpg``; annotations: (image id, category, bbox)."""
    for image_id in (1, 2, 3):
        _photo(tmp_path / "images" / f"img{image_id}.jpg", seed=image_id)
    content = {
        "images": [{"id": i, "file_name": f"img{i}.jpg", "width": 64, "height": 48} for i in (1, 2, 3)],
        "annotations": [
            {"id": n, "image_id": i, "category_id": c, "bbox": bbox, "iscrowd": 1}
            for n, (i, c, bbox) in enumerate(annotations, 1)
        ],
        "categories": [{"id": n, "name": name} for n, name in enumerate(categories, 1)],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(content))
    return path


def test_class_map_renames_drops_and_counts(tmp_path: Path) -> None:
    coco = _coco(
        tmp_path, ["Dunt", "rust", "scratch"], [(1, 1, [0, 0, 32, 24]), (1, 2, [8, 8, 8, 8]), (2, 2, [1, 1, 4, 4])]
    )

    summary = _import(
        coco, "coco", tmp_path, ClassMap.from_specs(["dunt=dent", " RUST ="]), images_dir=tmp_path / "images"
    )

    assert summary.boxes == {"scratch": 0, "dent": 1}
    assert summary.dropped == {"rust": 2}
    _assert_same_labels(
        _labels(tmp_path / "out"), {"img1.jpg": [(1, (0.0, 0.0, 0.5, 0.5))], "img2.jpg": [], "img3.jpg": []}
    )


def test_class_map_file_is_case_insensitive_and_specs_win(tmp_path: Path) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text("Scracth: scratch\nrust: null\ndunt: scratch\n")

    class_map = ClassMap.from_specs(["dunt=DENT"], mapping)

    assert class_map.resolve(["scracth ", "Rust", "dunt", "dent"], CLASSES) == {
        "scracth ": "scratch",
        "Rust": None,
        "dunt": "dent",
        "dent": "dent",
    }


def test_unknown_class_stops_the_import_before_writing(tmp_path: Path) -> None:
    coco = _coco(tmp_path, ["scratch", "rust"], [(1, 2, [0, 0, 8, 8])])

    with pytest.raises(DataFormatError, match=r"unknown class names \['rust'\].*--map NAME= .*--map NAME=TARGET"):
        _import(coco, "coco", tmp_path, images_dir=tmp_path / "images")
    assert not (tmp_path / "out" / "images").exists()


@pytest.mark.parametrize("spec", ["rust=paint", "no-equals-sign"])
def test_bad_class_map_rules_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        ClassMap.from_specs([spec]).resolve(["rust"], CLASSES)


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [("2 0.5 0.5 0.1 0.1", "class_id"), ("0 0.5 0.5 1.8 0.1", "coordinates"), ("scratch here", "label_syntax")],
)
def test_bad_yolo_label_file_is_quarantined_and_its_image_left_out(bad_row: str, problem: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "data.yaml").parent.mkdir()
    (source / "data.yaml").write_text("names: [scratch, dent]\n")
    for name in ("good", "bad"):
        _photo(source / "images" / "train" / f"{name}.jpg")
        (source / "labels" / "train").mkdir(parents=True, exist_ok=True)
    (source / "labels" / "train" / "good.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    bad = source / "labels" / "train" / "bad.txt"
    bad.write_text(f"0 0.5 0.5 0.2 0.2\n{bad_row}\n")

    summary = _import(source, "yolo", tmp_path)

    assert bad.read_text() == f"0 0.5 0.5 0.2 0.2\n{bad_row}\n"
    quarantine = tmp_path / "quarantine"
    assert (quarantine / "labels" / "train" / "bad.txt").read_text() == bad.read_text()
    assert (quarantine / "images" / "train" / "bad.jpg").is_file()
    reasons = json.loads((quarantine / "reasons.json").read_text())
    assert [(r["file"], r["line"], r["problem"]) for r in reasons] == [(str(bad), 2, problem)]
    assert list(_labels(tmp_path / "out")) == ["train/good.jpg"]
    assert [p.file for p in summary.problems] == [str(bad)]


def test_roboflow_layout_imports_valid_as_val(tmp_path: Path) -> None:
    source = tmp_path / "roboflow"
    (source / "data.yaml").parent.mkdir()
    (source / "data.yaml").write_text("names: [scratch, dent]\nnc: 2\n")
    for folder, name, row in (("train", "t", "0 0.5 0.5 0.5 0.5\n"), ("valid", "v", "")):
        _photo(source / folder / "images" / f"{name}.jpg")
        (source / folder / "labels").mkdir()
        (source / folder / "labels" / f"{name}.txt").write_text(row)
    assert detect_format(source) == "yolo"

    summary = _import(source, "yolo", tmp_path)

    assert _labels(tmp_path / "out") == {"train/t.jpg": [(0, (0.25, 0.25, 0.75, 0.75))], "val/v.jpg": []}
    assert summary.images == {"train": 1, "val": 1}


def test_coco_reports_missing_images_and_keeps_the_rest(tmp_path: Path) -> None:
    coco = _coco(tmp_path, ["scratch", "dent"], [(1, 1, [16, 12, 32, 24]), (3, 2, [0, 0, 8, 8]), (7, 1, [0, 0, 1, 1])])
    (tmp_path / "images" / "img3.jpg").unlink()
    content = json.loads(coco.read_text())
    content["images"][1]["file_name"] = "exports/batch1/img2.jpg"
    content["annotations"].append({"image_id": 2, "category_id": 2, "segmentation": [[6.4, 4.8, 32, 24, 16, 9.6]]})
    coco.write_text(json.dumps(content))

    summary = _import(coco, "coco", tmp_path, images_dir=tmp_path / "images", split=Split.VAL)

    expected: Labels = {"val/img1.jpg": [(0, (0.25, 0.25, 0.75, 0.75))], "val/img2.jpg": [(1, (0.1, 0.1, 0.5, 0.5))]}
    _assert_same_labels(_labels(tmp_path / "out"), expected)
    messages = {p.file: p.message for p in summary.problems}
    assert messages.keys() == {"img3.jpg", str(coco)}
    assert "image id 7" in messages[str(coco)]


def test_images_with_the_same_name_in_one_split_both_survive(tmp_path: Path) -> None:
    coco = _coco(tmp_path, ["scratch", "dent"], [(1, 1, [0, 0, 32, 24])])
    content = json.loads(coco.read_text())
    for image_id, folder in ((1, "a"), (2, "b")):
        moved = tmp_path / "images" / folder / "car.jpg"
        moved.parent.mkdir()
        (tmp_path / "images" / f"img{image_id}.jpg").rename(moved)
        content["images"][image_id - 1]["file_name"] = f"{folder}/car.jpg"
    content["images"].pop()
    coco.write_text(json.dumps(content))

    _import(coco, "coco", tmp_path, images_dir=tmp_path / "images")

    written = _labels(tmp_path / "out")
    (renamed,) = written.keys() - {"car.jpg"}
    assert renamed.startswith("car_") and renamed.endswith(".jpg")
    _assert_same_labels(written, {"car.jpg": [(0, (0.0, 0.0, 0.5, 0.5))], renamed: []})


def test_detect_format_refuses_what_it_cannot_tell(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"info": {}}')

    with pytest.raises(DataFormatError, match="cannot tell the format"):
        detect_format(other)
