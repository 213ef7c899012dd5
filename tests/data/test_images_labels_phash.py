"""Decoding, label parsing and perceptual hashes: the pieces validation is built from."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from autoinspect.data.labels import LabelProblem, format_yolo_labels, parse_yolo_labels
from autoinspect.data.phash import dihedral_hashes, near_duplicate_pairs
from autoinspect.domain import Box
from autoinspect.errors import ImageDecodeError
from autoinspect.images import decode_image


def _jpeg(array: np.ndarray, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", **save)
    return buffer.getvalue()


@pytest.fixture
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((10, 10, 1))).astype(np.uint8)
    return base


def test_decode_reasons(photo: np.ndarray) -> None:
    data = _jpeg(photo)
    assert decode_image(data).rgb.shape == photo.shape
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"")
    with pytest.raises(ImageDecodeError, match="pixels, above the limit"):
        decode_image(data, max_pixels=1000)


def test_exif_orientation_is_applied(photo: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    decoded = decode_image(_jpeg(photo, exif=exif.tobytes()))
    assert decoded.exif_orientation == 6
    assert decoded.rgb.shape[:2] == (photo.shape[1], photo.shape[0])


def test_capped_decoding_keeps_the_photo_upright_and_reports_its_own_size(photo: np.ndarray) -> None:
    big = np.kron(photo, np.ones((4, 4, 1), dtype=np.uint8))  # 480 x 640
    exif = Image.Exif()
    exif[0x0112] = 6
    full = decode_image(_jpeg(big, exif=exif.tobytes(), quality=95))
    capped = decode_image(_jpeg(big, exif=exif.tobytes(), quality=95), max_side=160)
    assert (capped.source_width, capped.source_height) == (480, 640) == (full.width, full.height)
    assert capped.rgb.shape == (160, 120, 3)
    shrunk = np.asarray(Image.fromarray(full.rgb).resize((120, 160), Image.Resampling.BILINEAR), dtype=np.int16)
    assert np.abs(capped.rgb.astype(np.int16) - shrunk).mean() < 8  # the same picture (turned: ~60), at 1/4 scale
    small = decode_image(_jpeg(photo), max_side=1000)
    assert small.rgb.shape == photo.shape and (small.source_width, small.source_height) == (160, 120)


def test_a_jpeg_counts_at_the_scale_it_is_decoded_at_and_other_formats_whole() -> None:
    flat = np.full((2400, 3200, 3), 90, dtype=np.uint8)  # 7.7 MP
    jpeg = _jpeg(flat)
    decoded = decode_image(jpeg, max_pixels=1_000_000, max_side=800)  # decoded at 1/4: 0.48 MP
    assert decoded.rgb.shape == (600, 800, 3) and decoded.source_width == 3200
    with pytest.raises(ImageDecodeError, match=r"above the limit of 1,000,000 \(decoded at 1600x1200\)"):
        decode_image(jpeg, max_pixels=1_000_000, max_side=1600)
    png = io.BytesIO()
    Image.fromarray(flat).save(png, format="PNG")
    with pytest.raises(ImageDecodeError, match="7,680,000 pixels, above the limit"):
        decode_image(png.getvalue(), max_pixels=1_000_000, max_side=800)
    assert decode_image(png.getvalue(), max_side=800).rgb.shape == (600, 800, 3)


def test_label_rows_boxes_polygons_and_problems() -> None:
    text = "\n".join(
        [
            "0 0.5 0.5 0.2 0.4",
            "1 0.1 0.1 0.3 0.1 0.2 0.4",
            "0 0.5 0.5 0.0 0.1",
            "x 0.5 0.5 0.1 0.1",
            "0 0.5 0.5 0.1",
            "2 0.5 0.5 0.1 0.1",
            "1 0.5 0.5 0.1 0.1 0.9",
            "",
        ]
    )
    parsed = parse_yolo_labels(text, n_classes=2)
    assert [r.class_id for r in parsed.rows] == [0, 1]
    assert parsed.rows[1].polygon and parsed.rows[1].box == Box(x1=0.1, y1=0.1, x2=0.3, y2=0.4)
    assert [(i.line, i.problem) for i in parsed.issues] == [
        (3, LabelProblem.DEGENERATE),
        (4, LabelProblem.SYNTAX),
        (5, LabelProblem.SYNTAX),
        (6, LabelProblem.CLASS_ID),
        (7, LabelProblem.SYNTAX),
    ]
    written = format_yolo_labels((r.class_id, r.box) for r in parsed.rows)
    again = parse_yolo_labels(written, n_classes=2)
    assert [r.class_id for r in again.rows] == [0, 1]
    assert all(a.box.iou(b.box) > 0.9999 for a, b in zip(again.rows, parsed.rows, strict=True))


def test_rounding_slack_is_clipped_but_real_overflow_is_not() -> None:
    parsed = parse_yolo_labels("0 0.9 0.5 0.2001 0.2\n0 0.9 0.5 0.3 0.2\n", n_classes=1)
    assert len(parsed.rows) == 1 and parsed.rows[0].box.x2 == 1.0
    assert parsed.issues[0].problem is LabelProblem.COORDINATES


def test_phash_matches_flips_and_rotations_not_other_photos(photo: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    other = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((10, 10, 1))).astype(np.uint8)
    variants = [
        photo,
        np.ascontiguousarray(photo[:, ::-1]),
        np.ascontiguousarray(np.rot90(photo)),
        np.ascontiguousarray(np.rot90(photo, 3)[::-1]),
        decode_image(_jpeg(photo, quality=60)).rgb,
        other,
    ]
    hashes = [dihedral_hashes(v) for v in variants]
    pairs = {(p.first, p.second) for p in near_duplicate_pairs(hashes, max_bits=4)}
    copies = {(a, b) for a in range(5) for b in range(a + 1, 5)}
    assert pairs == copies
