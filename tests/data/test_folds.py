"""Fold assignment for out-of-sample predictions, and the training layout that leaves a fold out."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from autoinspect.data.folds import assign_folds, training_layout
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Split
from autoinspect.errors import ConfigError


def _layout(root: Path) -> DatasetLayout:
    """12 train photos (6 clean, 4 dent, 2 scratch) and 3 val photos, one of them named like a train photo."""
    layout = DatasetLayout.create(root, ["scratch", "dent"])
    rows = ["", "", "", "", "", "", "1 0.5 0.5 0.1 0.1", "1 0.4 0.4 0.1 0.1", "1 0.3 0.3 0.1 0.1"]
    rows += ["1 0.2 0.2 0.1 0.1", "0 0.5 0.5 0.2 0.01", "0 0.5 0.6 0.2 0.01"]
    for split, names in ((Split.TRAIN, [f"p{i}.jpg" for i in range(12)]), (Split.VAL, ["p0.jpg", "v1.jpg", "v2.jpg"])):
        for index, name in enumerate(names):
            image = layout.image_dir(split) / name
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(f"{split.value}-{name}".encode())
            label = layout.label_path(split, name)
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(rows[index] if split is Split.TRAIN else "", encoding="utf-8")
    return layout


def test_folds_are_stratified_by_class_set_and_the_same_on_every_run(tmp_path: Path) -> None:
    layout = _layout(tmp_path / "ds")
    items = [item for item in layout.items() if item.split is Split.TRAIN]
    folds = assign_folds(items, 2, 3)
    assert folds == assign_folds(items, 2, 3)
    assert Counter(folds) == {0: 4, 1: 4, 2: 4}
    clean = [f for f, item in zip(folds, items, strict=True) if not item.read_labels(2).rows]
    assert sorted(Counter(clean).values()) == [2, 2, 2]  # 6 clean photos dealt evenly, not all in one fold
    assert folds != assign_folds(items, 2, 3, seed=1)


def test_too_few_folds_or_photos_is_a_clear_error(tmp_path: Path) -> None:
    items = _layout(tmp_path / "ds").items()
    with pytest.raises(ConfigError, match="at least 2 folds"):
        assign_folds(items, 2, 1)
    with pytest.raises(ConfigError, match="cannot make 20 folds"):
        assign_folds(items, 2, 20)


def test_training_layout_links_the_kept_photos_into_train_without_name_clashes(tmp_path: Path) -> None:
    layout = _layout(tmp_path / "ds")
    kept = [item for item in layout.items() if item.image.name == "p0.jpg"]
    fold = training_layout(kept, layout.names, tmp_path / "fold")
    assert fold.names == ["scratch", "dent"]
    images = sorted(p.name for p in fold.image_dir(Split.TRAIN).iterdir())
    assert images == ["train__p0.jpg", "val__p0.jpg"]
    assert (fold.image_dir(Split.TRAIN) / "val__p0.jpg").read_bytes() == b"val-p0.jpg"
    assert fold.label_path(Split.TRAIN, "train__p0.jpg").is_file()
    assert not fold.image_dir(Split.VAL).exists()
    again = training_layout(kept[:1], layout.names, tmp_path / "fold")  # a rerun starts the folder afresh
    assert len(list(again.image_dir(Split.TRAIN).iterdir())) == 1
