"""Dataset versions: content addressing, immutability, additions, and the fixed gold test split."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from autoinspect.config import Settings
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.synthetic import generate_dataset
from autoinspect.data.validation import validate_layout
from autoinspect.data.version_builder import build_version
from autoinspect.data.versions import DatasetStore, VersionManifest
from autoinspect.domain import Split
from autoinspect.errors import DatasetVersionError


def _version(folder: Path, settings: Settings, name: str = "synth", **kwargs: bool) -> VersionManifest:
    layout = DatasetLayout(folder)
    report, scans = validate_layout(layout, settings)
    return build_version(DatasetStore.for_settings(settings), layout, scans, report, name, settings, **kwargs)


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".yaml"
    }


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    return generate_dataset(tmp_path / "synth", 24, seed=3, size=(160, 160)).root


def test_same_content_same_digest_and_checkout_is_exact(synth: Path, settings: Settings, tmp_path: Path) -> None:
    first = _version(synth, settings)
    copy = tmp_path / "copy"
    shutil.copytree(synth, copy)
    again = _version(copy, settings, name="other-name")
    assert again.digest == first.digest
    store = DatasetStore.for_settings(settings)
    assert [v.digest for v in store.history("synth")] == [first.digest]
    assert store.resolve(f"synth@{first.digest[:8]}").digest == first.digest
    out = store.checkout("synth", tmp_path / "checkout")
    assert _files(out.root) == _files(synth)
    assert out.names == ["scratch", "dent"]
    image = next((out.root / "images" / "train").iterdir())
    assert not image.stat().st_mode & 0o222  # versions are read-only on disk (root ignores it, people don't)


def test_unknown_reference_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(DatasetVersionError, match="no dataset versions match"):
        DatasetStore.for_settings(settings).resolve("nope")


def _relabel(folder: Path, split: str) -> str:
    image = sorted((folder / "images" / split).iterdir())[0]
    (folder / "labels" / split / f"{image.stem}.txt").write_text("1 0.5 0.5 0.3 0.3\n")
    return image.name


def test_adding_annotations_makes_a_new_version_and_keeps_test_fixed(
    synth: Path, settings: Settings, tmp_path: Path
) -> None:
    base = _version(synth, settings)
    store = DatasetStore.for_settings(settings)
    manifest_file = settings.datasets_dir / "versions" / f"{base.digest}.json"
    manifest_bytes = manifest_file.read_bytes()
    base_test = {i.name: i for i in base.items if i.split is Split.TEST}

    update = tmp_path / "update"
    shutil.copytree(synth, update)
    corrected_train = _relabel(update, "train")
    corrected_test = _relabel(update, "test")
    new = generate_dataset(tmp_path / "new", 6, seed=99, size=(160, 160), splits={Split.TEST: 1.0})
    for image in (new.root / "images" / "test").iterdir():
        shutil.copy(image, update / "images" / "test" / f"new_{image.name}")
        shutil.copy(new.label_path(Split.TEST, image.name), update / "labels" / "test" / f"new_{image.stem}.txt")
    mirrored = sorted((synth / "images" / "test").iterdir())[1]
    Image.open(mirrored).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(update / "images" / "train" / "mirror.jpg")
    (update / "labels" / "train" / "mirror.txt").write_text("")
    # the folder now has the mirrored copy in train and its original in test: validation rejects it as a leak

    child = _version(update, settings)
    assert child.parent == base.digest and child.digest != base.digest
    assert manifest_file.read_bytes() == manifest_bytes  # the old version is untouched
    assert [v.digest for v in store.history("synth")] == [base.digest, child.digest]
    child_items = {(i.split, i.name): i for i in child.items}
    assert {i.name: i for i in child.items if i.split is Split.TEST} == base_test
    assert child_items[(Split.TRAIN, corrected_train)].boxes == {"dent": 1}
    new_names = {i.name for i in child.items if i.name.startswith("new_")}
    assert len(new_names) == 6
    assert all(i.split is not Split.TEST for i in child.items if i.name.startswith("new_"))
    excluded = {e.name: e.reason for e in child.excluded}
    assert "test split is fixed" in excluded[f"images/test/{corrected_test}"]
    assert "images/train/mirror.jpg" in excluded

    allowed = _version(update, settings, allow_test_change=True)
    allowed_test = {i.name: i for i in allowed.items if i.split is Split.TEST}
    assert allowed_test[corrected_test].boxes == {"dent": 1}
    assert allowed.parent == child.digest
    assert not {n for n in allowed_test if n.startswith("new_")}  # photos already versioned keep their split


def test_images_without_split_are_assigned_deterministically(tmp_path: Path, settings: Settings) -> None:
    flat = generate_dataset(tmp_path / "flat", 30, seed=5, size=(128, 128), splits=None)
    first = _version(flat.root, settings, name="a")
    second = _version(flat.root, settings, name="b")
    assert first.digest == second.digest
    splits = first.split_counts()
    assert set(splits) <= {"train", "val", "test"} and splits["train"] > splits.get("test", 0)
