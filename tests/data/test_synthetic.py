"""The synthetic generator: deterministic, well-formed labels, and boxes that cover exactly what was drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from autoinspect.data.features import image_features
from autoinspect.data.labels import parse_yolo_labels
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.synthetic import SyntheticStyle, generate_dataset, generate_image
from autoinspect.domain import Box, Split
from autoinspect.errors import ConfigError, DataFormatError

N_IMAGES = 20


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "ds", N_IMAGES, seed=0)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = _files(generate_dataset(tmp_path / "a", 6, seed=7).root)
    second = _files(generate_dataset(tmp_path / "b", 6, seed=7).root)
    assert len(first) == 6 * 2 + 1  # images, labels, data.yaml
    assert first == second


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    first = _files(generate_dataset(tmp_path / "a", 4, seed=1).root)
    second = _files(generate_dataset(tmp_path / "b", 4, seed=2).root)
    jpegs = [name for name in first if name.endswith(".jpg")]
    assert all(first[name] != second[name] for name in jpegs)


def test_layout_names_files_and_splits(dataset: DatasetLayout) -> None:
    items = dataset.items()
    assert dataset.names == ["scratch", "dent"]
    assert sorted(item.image.name for item in items) == [f"synth_{i:05d}.jpg" for i in range(N_IMAGES)]
    per_split = {split: sum(item.split == split for item in items) for split in Split}
    assert per_split == {Split.TRAIN: 12, Split.VAL: 4, Split.TEST: 4}
    assert all(item.label.is_file() for item in items)


def test_every_label_parses_cleanly_inside_the_image(dataset: DatasetLayout) -> None:
    for item in dataset.items():
        # Default tolerance: six-decimal YOLO rows of a box touching the border can round to -5e-7.
        parsed = parse_yolo_labels(item.label.read_text(encoding="utf-8"), n_classes=2)
        assert parsed.issues == []
        for row in parsed.rows:
            assert 0.0 <= row.box.x1 < row.box.x2 <= 1.0
            assert 0.0 <= row.box.y1 < row.box.y2 <= 1.0


def test_clean_fraction_is_respected_in_every_split(dataset: DatasetLayout) -> None:
    clean = [item for item in dataset.items() if not item.label.read_text(encoding="utf-8").strip()]
    # 5 planned; a damaged panel whose every region came out invisible would add one.
    assert 5 <= len(clean) <= 7
    assert {item.split for item in clean} == set(Split)


def test_unsplit_dataset_writes_straight_under_images(tmp_path: Path) -> None:
    layout = generate_dataset(tmp_path / "u", 3, splits=None, size=(64, 48))
    assert [item.split for item in layout.items()] == [None, None, None]
    with Image.open(layout.items()[0].image) as image:
        assert image.size == (64, 48)


def test_refuses_to_mix_with_existing_images(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "d", 2, size=(32, 32))
    with pytest.raises(DataFormatError, match="not empty"):
        generate_dataset(tmp_path / "d", 2, size=(32, 32))


def test_class_without_a_renderer_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rust"):
        generate_dataset(tmp_path / "r", 2, classes=["scratch", "rust"])


@pytest.mark.parametrize("bad", [{"n_images": 0}, {"clean_fraction": 1.5}, {"splits": {Split.TRAIN: 0.5}}])
def test_rejects_out_of_range_arguments(tmp_path: Path, bad: dict[str, object]) -> None:
    arguments: dict[str, object] = {"n_images": 2, **bad}
    with pytest.raises(ValueError):
        generate_dataset(tmp_path / "x", **arguments)  # type: ignore[arg-type]


def test_only_the_given_classes_are_drawn() -> None:
    names = set()
    for seed in range(10):
        _, regions = generate_image(np.random.default_rng(seed), classes=["dent"], size=(96, 96))
        names |= {name for name, _ in regions}
    assert names == {"dent"}


def _pair(seed: int, classes: list[str]) -> tuple[npt.NDArray[np.int16], list[tuple[str, Box]]]:
    """|damaged - clean| for the same panel (same generator state) and the labels of the damaged one."""
    damaged, regions = generate_image(np.random.default_rng(seed), classes=classes, damaged=True)
    clean, none = generate_image(np.random.default_rng(seed), classes=classes, damaged=False)
    assert none == []
    return np.abs(damaged.astype(np.int16) - clean).max(axis=2), regions


@pytest.mark.parametrize("kind", ["scratch", "dent"])
def test_boxes_cover_exactly_the_drawn_damage(kind: str) -> None:
    """Every visibly changed pixel lies in a box, and every box edge touches a changed pixel (tight)."""
    for seed in range(12):
        diff, regions = _pair(seed, [kind])
        assert regions, f"seed {seed}: a damaged panel came out without damage"
        covered = np.zeros(diff.shape, dtype=bool)
        for _, box in regions:
            x1, y1, x2, y2 = (round(v) for v in box.to_pixels(diff.shape[1], diff.shape[0]))
            covered[y1:y2, x1:x2] = True
            inside = diff[y1:y2, x1:x2]
            # Rounding to uint8 can shave one grey level off the 4-level threshold the boxes were cut at.
            edges = (inside[0], inside[-1], inside[:, 0], inside[:, -1])
            assert all(edge.max() >= 3 for edge in edges), f"seed {seed}: {kind} box is not tight"
        assert not (diff[~covered] >= 5).any(), f"seed {seed}: {kind} pixels outside every box"


def test_scratch_stands_out_from_the_panel_around_it() -> None:
    """In the saved-style photo itself (noise included), a scratch box holds pixels far from the panel."""
    for seed in range(8):
        rgb, regions = generate_image(np.random.default_rng(seed), classes=["scratch"])
        luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        for _, box in regions:
            x1, y1, x2, y2 = (round(v) for v in box.to_pixels(rgb.shape[1], rgb.shape[0]))
            inside = luma[y1:y2, x1:x2]
            assert np.abs(inside - np.median(inside)).max() > 25, f"seed {seed}: scratch box looks like bare paint"


def test_style_knobs_shift_the_features() -> None:
    def features(style: SyntheticStyle) -> tuple[float, float]:
        rgb, _ = generate_image(np.random.default_rng(3), style=style)
        result = image_features(rgb)
        return result.brightness, result.sharpness

    brightness, sharpness = features(SyntheticStyle())
    assert features(SyntheticStyle(brightness_shift=30))[0] > brightness + 20
    assert features(SyntheticStyle(blur_radius=2))[1] < sharpness / 2
    assert features(SyntheticStyle(noise_level=10))[1] > sharpness * 2
