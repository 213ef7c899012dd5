"""Model inputs: the core letterbox laid out as float CHW, and the round trip of a drawn box back to the photo."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from redbox import photo

from autoinspect.domain import LETTERBOX_FILL
from autoinspect.images import Letterbox, letterbox
from autoinspect.inference import LetterboxTransform, letterbox_batch

SIZE = 160


def red_span(chw: npt.NDArray[np.float32]) -> tuple[int, int, int, int]:
    """Pixel edges of the red region of a letterboxed input, as the test model finds it."""
    red = (chw[0] > 0.7) & (chw[1] < 0.3) & (chw[2] < 0.3)
    ys, xs = np.nonzero(red)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize(
    ("width", "height", "pad_x", "pad_y"),
    [(320, 160, 0, 40), (100, 300, 53, 0), (160, 160, 0, 0), (50, 49, 0, 1)],
)
def test_photo_is_fitted_and_centred_on_grey(width: int, height: int, pad_x: int, pad_y: int) -> None:
    batch, (transform,) = letterbox_batch([photo(width, height)], SIZE)
    chw = batch[0]
    assert batch.shape == (1, 3, SIZE, SIZE) and batch.dtype == np.float32
    assert (transform.placement.pad_x, transform.placement.pad_y) == (pad_x, pad_y)
    assert (transform.width, transform.height) == (width, height)
    assert chw.min() >= 0.0 and chw.max() <= 1.0
    fill = np.float32(LETTERBOX_FILL / 255)
    if pad_y:
        assert (chw[:, :pad_y] == fill).all() and (chw[:, SIZE - pad_y :] == fill).all()
    if pad_x:
        assert (chw[:, :, :pad_x] == fill).all() and (chw[:, :, SIZE - pad_x :] == fill).all()


def test_the_input_is_the_core_letterbox_scaled_to_0_1_channels_first() -> None:
    rgb = photo(300, 170)
    batch, _ = letterbox_batch([rgb], SIZE)
    canvas, _ = letterbox(rgb, SIZE)
    assert np.array_equal(batch[0], canvas.transpose(2, 0, 1) / np.float32(255))


def test_an_unscaled_photo_keeps_its_exact_pixels() -> None:
    rgb = photo(SIZE, 100)
    batch, _ = letterbox_batch([rgb], SIZE)
    assert np.array_equal(batch[0, :, 30:130], rgb.transpose(2, 0, 1) / np.float32(255))


@pytest.mark.parametrize(
    ("width", "height", "red"),
    [
        (120, 75, (10, 20, 70, 50)),  # enlarged 1.33x, wide
        (90, 130, (31, 47, 62, 101)),  # enlarged 1.23x, tall
        (400, 250, (113, 40, 301, 171)),  # shrunk 0.4x: a pixel of the input is 2.5 photo pixels
    ],
)
def test_a_box_drawn_on_the_photo_maps_back_to_where_it_was(
    width: int, height: int, red: tuple[int, int, int, int]
) -> None:
    batch, (transform,) = letterbox_batch([photo(width, height, red)], SIZE)
    found = transform.to_original(np.array([red_span(batch[0])], dtype=np.float32))[0]
    tolerance = max(1.0, 1 / transform.placement.scale)
    np.testing.assert_allclose(found, red, atol=tolerance)


def test_to_original_inverts_the_placement_exactly_and_clips_to_the_photo() -> None:
    transform = LetterboxTransform(placement=Letterbox(scale=0.4, pad_x=0, pad_y=30), width=400, height=250)
    inside = np.array([[10.0, 20.0, 300.0, 200.0]])
    placed = inside * 0.4 + np.array([0, 30, 0, 30])
    np.testing.assert_allclose(transform.to_original(placed), inside)
    in_padding = np.array([[-5.0, 0.0, 170.0, 160.0]])
    np.testing.assert_allclose(transform.to_original(in_padding), [[0.0, 0.0, 400.0, 250.0]])


def test_a_batch_is_the_single_photos_stacked() -> None:
    photos = [photo(120, 75, seed=1), photo(90, 130, seed=2), photo(400, 250, seed=3)]
    batch, transforms = letterbox_batch(photos, SIZE)
    singles = [letterbox_batch([rgb], SIZE) for rgb in photos]
    assert np.array_equal(batch, np.concatenate([single for single, _ in singles]))
    assert transforms == [transform for _, (transform,) in singles]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)],
    ids=["grey", "rgba", "float"],
)
def test_anything_but_uint8_rgb_is_refused(bad: npt.NDArray[np.generic]) -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        letterbox_batch([bad], SIZE)  # type: ignore[list-item]
