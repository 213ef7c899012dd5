"""Training views at the serving scale, the presence head's cell targets, and what a watcher of a run reads."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from autoinspect.progress import progress_bar
from autoinspect.training.base import LiteConfig
from autoinspect.training.lite.augment import crop_at_serving_scale
from autoinspect.training.lite.export import ContractDetector, export_onnx
from autoinspect.training.lite.model import build_detector
from autoinspect.training.lite.presence import STRIDE, cell_targets, photo_logits, presence_loss
from autoinspect.training.progress import val_summary


def red_photo(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    rgb = np.full((height, width, 3), 90, dtype=np.uint8)
    x1, y1, x2, y2 = box
    rgb[y1:y2, x1:x2] = (255, 0, 0)
    return rgb


@pytest.mark.parametrize("seed", range(5))
def test_crop_keeps_the_serving_scale_and_the_box_on_the_damage(seed: int) -> None:
    """A 400 x 200 photo served at 640 is scaled by 1.6; the focused view holds the red patch inside its box."""
    rgb = red_photo(400, 200, (100, 50, 130, 70))
    config = LiteConfig(crop=160, scale_jitter=0.0, focus_probability=1.0)
    boxes = np.array([[100, 50, 130, 70]], dtype=np.float32)
    view, moved, labels = crop_at_serving_scale(rgb, boxes, np.array([1]), 640, config, np.random.default_rng(seed))
    assert view.shape == (160, 160, 3) and labels.tolist() == [1]
    red = (view[..., 0] > 200) & (view[..., 1] < 60)
    ys, xs = np.nonzero(red)
    np.testing.assert_allclose(moved[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1.0)
    if moved[0][0] > 0 and moved[0][2] < 160 and moved[0][1] > 0 and moved[0][3] < 160:  # not cut by the window
        (x1, y1, x2, y2) = moved[0]
        assert (x2 - x1, y2 - y1) == pytest.approx((48, 32), abs=1.0)  # 30 x 20 px scaled by 640 / 400


def test_crop_pads_a_small_photo_without_scaling_it_twice() -> None:
    """A photo smaller than the window at serving scale is placed on grey, never stretched to fill it."""
    rgb = red_photo(100, 50, (10, 10, 20, 20))
    config = LiteConfig(crop=320, scale_jitter=0.0)
    view, moved, _ = crop_at_serving_scale(
        rgb, np.array([[10, 10, 20, 20]], dtype=np.float32), np.array([0]), 200, config, np.random.default_rng(0)
    )
    assert view.shape == (320, 320, 3)
    np.testing.assert_allclose(moved[0], [20, 20, 40, 40])  # scale 200 / 100
    assert (view[100:, 200:] == 114).all()


def test_cell_targets_mark_covered_cells_and_the_centre_of_hairlines() -> None:
    boxes = torch.tensor([[0.0, 0.0, 24.0, 16.0], [41.0, 41.0, 43.0, 42.0]])
    target = cell_targets(boxes, torch.tensor([0, 1]), 2, 8, 8)
    assert target[0].sum() == 3 * 2 and target[0, :2, :3].all()  # centres 4, 12, 20 x 4, 12
    assert target[1].sum() == 1 and target[1, 42 // STRIDE, 42 // STRIDE] == 1  # too thin for any centre


def test_presence_loss_rewards_the_right_cells() -> None:
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 16.0, 16.0]]), "labels": torch.tensor([1])}]
    right = torch.full((1, 2, 4, 4), -6.0)
    right[0, 1, 1, 1] = 6.0
    wrong = torch.full((1, 2, 4, 4), -6.0)
    wrong[0, 0, 3, 3] = 6.0
    good, bad = presence_loss(right, targets), presence_loss(wrong, targets)
    assert good["presence_cells"] < bad["presence_cells"] and good["presence_photo"] < bad["presence_photo"]
    assert photo_logits(right)[0].tolist() == [-6.0, 6.0]


def test_export_has_both_outputs_and_keeps_the_exporter_quiet(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    from pathlib import Path

    import onnxruntime as ort

    torch.manual_seed(0)
    module = ContractDetector(build_detector(LiteConfig(fpn_channels=64), 2, 96, pretrained=False), 96).eval()
    images = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        _, presence = module(images)
    with caplog.at_level(logging.INFO):
        path = export_onnx(module, Path(str(tmp_path)) / "m.onnx")
    chatter = [r.name for r in caplog.records if r.name.startswith(("onnx_ir", "onnxscript", "torch.onnx"))]
    assert chatter == []
    session = ort.InferenceSession(str(path))
    assert [o.name for o in session.get_outputs()] == ["detections", "presence"]
    got = session.run(["presence"], {"images": images.numpy()})[0]
    np.testing.assert_allclose(got, presence.numpy(), atol=1e-5)
    assert got.shape == (2, 2) and ((got >= 0) & (got <= 1)).all()


def test_progress_bar_writes_lines_with_losses_to_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    """Written to a file (no terminal), the bar gives whole lines, never a ``\\r`` redraw."""
    bar = progress_bar(range(3), "epoch 1/2")
    for _ in bar:
        bar.set_postfix({"classification": "0.812"}, refresh=False)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err and "epoch 1/2" in err and "3/3" in err and "classification=0.812" in err


def test_val_summary_is_one_short_line() -> None:
    metrics = {"map50": 0.1, "map75": 0.05, "ap50/dent": 0.2, "image/damaged_caught": 0.9, "image/f1/dent": 0.7}
    assert val_summary(metrics) == "map50 0.100, ap50/dent 0.200, image/f1/dent 0.700, image/damaged_caught 0.900"
    assert val_summary({}) == "no val scorer"
