"""The data half of the main job, as `autoinspect up` runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoinspect.config import Settings
from autoinspect.data.classmap import ClassMap
from autoinspect.data.formats import export_dataset
from autoinspect.data.versions import DatasetStore
from autoinspect.errors import DataFormatError
from autoinspect.pipelines.dataset import prepare_dataset


def test_embedded_defaults_generate_validate_version_and_profile(settings: Settings) -> None:
    result = prepare_dataset(settings)
    assert result.validation.passed
    assert result.version.name == "synthetic" and len(result.version.items) == 60
    assert result.profile is not None
    assert result.profile.html.stat().st_size > 10_000
    assert result.profile.contact_sheet.is_file()
    again = prepare_dataset(settings, profile=False)  # a second run reuses the sample: same digest
    assert again.version.digest == result.version.digest
    assert [v.digest for v in DatasetStore.for_settings(settings).history("synthetic")] == [result.version.digest]


def test_coco_export_of_real_sample_prepares_to_same_boxes(
    sample_root: Path, settings: Settings, tmp_path: Path
) -> None:
    coco = export_dataset(sample_root, "coco", tmp_path / "export" / "annotations.json")
    data = json.loads(coco.read_text())
    for category in data["categories"]:  # the names annotation tools really use
        category["name"] = {"scratch": "scracth", "dent": "dunt"}[category["name"]]
    coco.write_text(json.dumps(data))
    result = prepare_dataset(
        settings,
        coco,
        name="car-damage",
        class_map=ClassMap.from_specs(["scracth=scratch", "dunt=dent"]),
        images_dir=sample_root,
        profile=False,
    )
    version = result.version
    assert result.validation.passed
    assert version.split_counts() == {"train": 159, "val": 84, "test": 85}
    totals = {c: sum(split.get(c, 0) for split in version.box_counts().values()) for c in ("scratch", "dent")}
    assert totals == {"scratch": 448, "dent": 100}


def test_import_that_finds_no_image_says_why(sample_root: Path, settings: Settings, tmp_path: Path) -> None:
    coco = export_dataset(sample_root, "coco", tmp_path / "elsewhere" / "annotations.json")
    with pytest.raises(DataFormatError, match=r"no image of .* could be imported"):
        prepare_dataset(settings, coco, profile=False)  # images are not beside the JSON
