"""Profiling and the contact sheet: the files a person reads, on synthetic panels and on the real sample."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autoinspect.data.contact_sheet import (
    LabelledItem,
    contact_sheet,
    sample_items,
    sheet_size,
)
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.profiling import ProfileResult, features_table, profile_dataset
from autoinspect.data.synthetic import generate_dataset
from autoinspect.domain import NONE_VERDICT
from autoinspect.errors import DataFormatError

N_IMAGES = 12
FEATURE_COLUMNS = ("brightness", "contrast", "sharpness", "saturation", "colorfulness", "aspect")
BOX_COLUMNS = ("n_boxes", "n_scratch", "n_dent", "min_box_side_px", "mean_box_area_fraction")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "ds", N_IMAGES, seed=3, size=(160, 120))


@pytest.fixture(scope="module")
def profile(synthetic: DatasetLayout, tmp_path_factory: pytest.TempPathFactory) -> ProfileResult:
    # Module scope outlives conftest's per-test guard, so keep ydata-profiling's analytics off here too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YDATA_PROFILING_NO_ANALYTICS", "1")
        return profile_dataset(synthetic, tmp_path_factory.mktemp("profile"), workers=2, title="synthetic test")


def _labelled(layout: DatasetLayout) -> list[LabelledItem]:
    return [LabelledItem(item, item.read_labels(len(layout.names))) for item in layout.items()]


def test_profile_html_names_every_column(profile: ProfileResult) -> None:
    html = profile.html.read_text(encoding="utf-8")
    assert "synthetic test" in html
    for column in ("verdict", *FEATURE_COLUMNS, *BOX_COLUMNS):
        assert column in html, column


def test_features_csv_has_one_row_per_image(profile: ProfileResult, synthetic: DatasetLayout) -> None:
    with profile.features_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert profile.rows == len(rows) == N_IMAGES
    assert {row["file"] for row in rows} == {item.image.name for item in synthetic.items()}
    clean = sum(not item.label.read_text(encoding="utf-8").strip() for item in synthetic.items())
    assert sum(row["verdict"] == NONE_VERDICT for row in rows) == clean
    assert all(row["min_box_side_px"] == "" for row in rows if row["verdict"] == NONE_VERDICT)
    assert {row["width"] for row in rows} == {"160"}


def test_profile_contact_sheet_has_the_grid_size(profile: ProfileResult) -> None:
    with Image.open(profile.contact_sheet) as sheet:
        assert sheet.format == "PNG"
        assert sheet.size == sheet_size(N_IMAGES, thumb=192) == (6 + 8 * 198, 28 + 6 + 2 * (192 + 30 + 6))


def test_unreadable_images_are_skipped_not_fatal(tmp_path: Path) -> None:
    layout = generate_dataset(tmp_path / "ds", 3, size=(48, 48), splits=None)
    (layout.image_dir(None) / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    table = features_table(layout, workers=2)
    assert list(table["file"]) == ["synth_00000.jpg", "synth_00001.jpg", "synth_00002.jpg"]
    assert set(table["split"]) == {"unsplit"}


def test_profile_of_a_dataset_without_images_is_an_error(tmp_path: Path) -> None:
    layout = DatasetLayout.create(tmp_path / "empty", ["scratch", "dent"])
    with pytest.raises(DataFormatError, match="no readable images"):
        profile_dataset(layout, tmp_path / "out", workers=1, title="empty")


@pytest.mark.realdata
def test_features_table_of_the_real_sample_matches_its_metadata(sample_root: Path) -> None:
    table = features_table(DatasetLayout(sample_root), workers=2)
    with (sample_root / "metadata.csv").open(encoding="utf-8") as handle:
        metadata = {Path(row["file"]).name: row for row in csv.DictReader(handle)}
    assert len(table) == len(metadata)
    for row in table.itertuples():
        expected = metadata[str(row.file)]
        assert (row.n_scratch, row.n_dent) == (int(expected["scratches"]), int(expected["dents"])), row.file
        assert (row.verdict == NONE_VERDICT) == (expected["verdict"] == NONE_VERDICT), row.file
    assert table["sharpness"].gt(0).all()
    assert table["brightness"].between(0, 255).all()


@pytest.mark.realdata
def test_contact_sheet_of_real_photos(sample_root: Path, tmp_path: Path) -> None:
    layout = DatasetLayout(sample_root)
    out = contact_sheet(layout, tmp_path / "sheet.png", max_images=10, thumb=96, seed=1)
    with Image.open(out) as sheet:
        assert sheet.size == sheet_size(10, thumb=96)
        # Not a blank canvas: the thumbnails put real photo content on it.
        colours = np.asarray(sheet.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(colours, axis=0)) > 1000


@pytest.mark.realdata
def test_sample_shows_clean_photos_and_every_class(sample_root: Path) -> None:
    entries = _labelled(DatasetLayout(sample_root))
    chosen = sample_items(entries, n_classes=2, max_images=10, seed=0)
    assert len(chosen) == len({entry.item.key for entry in chosen}) == 10
    classes = {row.class_id for entry in chosen for row in entry.labels.rows}
    assert classes == {0, 1}
    assert any(not entry.labels.rows for entry in chosen)
    assert sample_items(entries, 2, 10, seed=0) == chosen
    assert sample_items(entries, 2, 10, seed=1) != chosen


def test_sample_of_a_skewed_dataset_still_shows_the_rare_class(synthetic: DatasetLayout) -> None:
    entries = _labelled(synthetic)
    dents = [e for e in entries if any(row.class_id == 1 for row in e.labels.rows)]
    skewed = [e for e in entries if e not in dents] + dents[:1]
    chosen = sample_items(skewed, n_classes=2, max_images=3, seed=0)
    assert dents[0] in chosen
    assert sample_items(skewed, 2, max_images=100, seed=0) == skewed
