"""Per-image features: each one moves the way its definition says when the photo changes that way."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFilter

from autoinspect.data.features import box_features, feature_row, image_features
from autoinspect.domain import Box

CLASSES = ["scratch", "dent"]


@pytest.fixture(scope="module")
def photo() -> npt.NDArray[np.uint8]:
    """A textured colour image: a smooth gradient with sharp-edged rectangles and mild noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:160]
    rgb = np.stack([xx, yy * 1.5, np.full_like(xx, 90)], axis=2).astype(np.float32)
    for _ in range(12):
        x, y = rng.integers(0, 140), rng.integers(0, 100)
        rgb[y : y + 20, x : x + 20] = rng.uniform(0, 255, 3)
    rgb += rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_blur_lowers_sharpness(photo: npt.NDArray[np.uint8]) -> None:
    blurred = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(2)))
    assert image_features(blurred).sharpness < 0.5 * image_features(photo).sharpness


def test_brightening_raises_brightness_by_the_shift(photo: npt.NDArray[np.uint8]) -> None:
    brighter = np.clip(photo.astype(np.int16) + 40, 0, 255).astype(np.uint8)
    gain = image_features(brighter).brightness - image_features(photo).brightness
    assert 30 < gain <= 40


def test_grey_image_has_no_saturation_or_colour() -> None:
    grey = np.repeat(np.linspace(0, 255, 64 * 48, dtype=np.uint8).reshape(48, 64, 1), 3, axis=2)
    features = image_features(grey)
    assert features.saturation == pytest.approx(0.0, abs=1e-6)
    assert features.colorfulness == pytest.approx(0.0, abs=1e-6)


def test_pure_colour_is_fully_saturated_and_flat() -> None:
    red = np.zeros((10, 20, 3), dtype=np.uint8)
    red[..., 0] = 200
    features = image_features(red)
    assert features.saturation == pytest.approx(1.0)
    assert features.brightness == pytest.approx(0.299 * 200, rel=1e-4)
    assert features.contrast == pytest.approx(0.0, abs=1e-4)
    assert features.sharpness == pytest.approx(0.0, abs=1e-4)
    assert (features.width, features.height, features.aspect) == (20, 10, 2.0)


def test_black_pixels_count_as_unsaturated() -> None:
    assert image_features(np.zeros((4, 4, 3), dtype=np.uint8)).saturation == 0.0


def test_tiny_image_has_zero_sharpness() -> None:
    assert image_features(np.full((2, 5, 3), 7, dtype=np.uint8)).sharpness == 0.0


@pytest.mark.parametrize(
    "array",
    [np.zeros((8, 8), dtype=np.uint8), np.zeros((8, 8, 4), dtype=np.uint8), np.zeros((8, 8, 3), dtype=np.float32)],
    ids=["grey", "rgba", "float"],
)
def test_rejects_anything_but_rgb_uint8(array: npt.NDArray[np.generic]) -> None:
    with pytest.raises(ValueError, match="RGB"):
        image_features(array)  # type: ignore[arg-type]


def test_box_features_on_known_boxes() -> None:
    boxes = [
        ("scratch", Box(x1=0.0, y1=0.0, x2=0.1, y2=0.5)),  # 20 x 50 px, area 0.05
        ("dent", Box(x1=0.5, y1=0.5, x2=1.0, y2=1.0)),  # 100 x 50 px, area 0.25
        ("scratch", Box(x1=0.2, y1=0.2, x2=0.25, y2=0.3)),  # 10 x 10 px, area 0.005
    ]
    features = box_features(boxes, width=200, height=100, classes=CLASSES)
    assert features.n_boxes == 3
    assert list(features.class_counts.items()) == [("scratch", 2), ("dent", 1)]
    assert features.min_box_side_px == pytest.approx(10.0)
    assert features.median_box_side_px == pytest.approx(20.0)
    assert features.mean_box_area_fraction == pytest.approx((0.05 + 0.25 + 0.005) / 3)


def test_no_boxes_gives_zero_counts_and_undefined_sizes() -> None:
    features = box_features([], width=64, height=64, classes=CLASSES)
    assert features.n_boxes == 0
    assert dict(features.class_counts) == {"scratch": 0, "dent": 0}
    assert features.min_box_side_px is None
    assert features.median_box_side_px is None
    assert features.mean_box_area_fraction is None


def test_unknown_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="rust"):
        box_features([("rust", Box(x1=0, y1=0, x2=1, y2=1))], 10, 10, CLASSES)


def test_feature_row_flattens_with_one_count_column_per_class(photo: npt.NDArray[np.uint8]) -> None:
    image = image_features(photo)
    row = feature_row(image, box_features([("dent", Box(x1=0, y1=0, x2=0.5, y2=0.5))], 160, 120, CLASSES))
    assert list(row) == [
        *("brightness", "contrast", "sharpness", "saturation", "colorfulness", "width", "height", "aspect"),
        *("n_boxes", "n_scratch", "n_dent", "min_box_side_px", "median_box_side_px", "mean_box_area_fraction"),
    ]
    assert (row["n_scratch"], row["n_dent"], row["min_box_side_px"]) == (0, 1, 60.0)
    assert row["sharpness"] == image.sharpness
    assert "n_boxes" not in feature_row(image)
