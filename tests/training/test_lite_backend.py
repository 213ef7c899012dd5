"""The lite backend: real pretrained weights, the exported contract, and a smoke run on synthetic photos."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from autoinspect.data.synthetic import generate_dataset
from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ONNX_PRESENCE
from autoinspect.images import decode_image, letterbox
from autoinspect.onnx_metadata import parse_metadata
from autoinspect.training.base import LiteConfig, TrainConfig
from autoinspect.training.lite.backbone import INPUT_MEAN, INPUT_STD, pretrained_classifier
from autoinspect.training.lite.export import ContractDetector, export_onnx
from autoinspect.training.lite.model import build_detector, set_backbone_trainable
from autoinspect.training.lite.trainer import LiteBackend

CAR_CLASSES = {436, 468, 511, 609, 627, 656, 661, 717, 751, 817}
"""ImageNet ids of beach wagon, cab, convertible, jeep, limousine, minivan, Model T, pickup, racer, sports car."""


@pytest.mark.parametrize("variant", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_packaged_weights_recognise_cars(variant: str, sample_root: Path) -> None:
    """The ImageNet weights really load: clean-car photos are classed as some kind of car."""
    model = pretrained_classifier(variant).eval()
    photos = sorted((sample_root / "images" / "test").glob("clean*"))[:6]
    batch = []
    for photo in photos:
        canvas, _ = letterbox(decode_image(photo).rgb, 224)
        array = (canvas.astype(np.float32) / 255 - np.array(INPUT_MEAN)) / np.array(INPUT_STD)
        batch.append(torch.from_numpy(array.astype(np.float32)).permute(2, 0, 1))
    with torch.no_grad():
        top5 = model(torch.stack(batch)).topk(5, dim=1).indices
    hits = sum(bool(set(row.tolist()) & CAR_CLASSES) for row in top5)
    assert hits >= len(photos) - 1


@pytest.mark.parametrize("mirrored", [False, True])
def test_exported_onnx_matches_torch_and_contract(tmp_path: Path, mirrored: bool) -> None:
    torch.manual_seed(0)
    model = build_detector(LiteConfig(fpn_channels=64), 2, 128, pretrained=False)
    module = ContractDetector(model, 128, mirrored=mirrored).eval()
    images = torch.rand(3, 3, 128, 128)
    with torch.no_grad():
        expected = module(images)[0].numpy()
    path = export_onnx(module, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == [ONNX_INPUT]
    assert [o.name for o in session.get_outputs()] == [ONNX_OUTPUT, ONNX_PRESENCE]
    got = session.run([ONNX_OUTPUT], {ONNX_INPUT: images.numpy()})[0]
    assert got.shape == expected.shape == (3, 300, 6)
    np.testing.assert_allclose(np.sort(got[..., 4], axis=1), np.sort(expected[..., 4], axis=1), atol=1e-5)
    assert (got[..., :4] >= 0).all() and (got[..., :4] <= 128).all()
    assert set(np.unique(got[..., 5])) <= {0.0, 1.0}


def test_mirrored_inference_answers_a_photo_and_its_mirror_image_alike() -> None:
    """Each output is the mean over the photo and its mirror image at mirrored places, so mirroring the photo
    mirrors the boxes and keeps scores and presence (except on the grid's first column, which has no partner)."""
    torch.manual_seed(0)
    model = build_detector(LiteConfig(), 2, 128, pretrained=False)
    module = ContractDetector(model, 128, mirrored=True).eval()
    image = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        (plain, presence), (mirror, mirror_presence) = module(image), module(image.flip(-1))
        single_pass_presence = ContractDetector(model, 128).eval()(image)[1]
    torch.testing.assert_close(presence, mirror_presence)
    assert not torch.allclose(presence, single_pass_presence)
    back = torch.stack([128 - mirror[0, :, 2], mirror[0, :, 1], 128 - mirror[0, :, 0], mirror[0, :, 3]], dim=-1)
    interior = (plain[0, :, 0] > 8) & (plain[0, :, 2] < 120)  # far from both edges: every such anchor has a partner
    matched = sum(bool(((back - box).abs().max(dim=1).values < 1e-3).any()) for box in plain[0, interior, :4][:20])
    assert matched == min(20, int(interior.sum())) > 0


def test_smoke_training_lowers_loss_and_exports(tmp_path: Path) -> None:
    layout = generate_dataset(tmp_path / "ds", 24, seed=0, size=(128, 128))
    config = TrainConfig(epochs=5, imgsz=128, batch=8, workers=0, lr=1e-3)
    seen: list[int] = []

    class Recorder:
        def on_train_start(self, config: TrainConfig, layout: object) -> None:
            seen.append(0)

        def on_epoch_end(self, epoch: int, metrics: object) -> None:
            seen.append(epoch)

        def on_train_end(self, result: object) -> None:
            seen.append(-1)

    scores = iter([0.1, 0.3, 0.2, 0.25, 0.15])
    result = LiteBackend().train(
        layout, config, tmp_path / "out", callbacks=Recorder(), val_scorer=lambda predict: {"map50": next(scores)}
    )
    assert seen == [0, 1, 2, 3, 4, 5, -1]
    assert result.best_epoch == 2 and math.isclose(result.best_score, 0.3)  # the best on val, not the last
    losses = [row["loss/classification"] + row["loss/bbox_regression"] for row in result.history]
    assert sum(losses[-2:]) / 2 < 0.8 * losses[0]  # it learns (single epochs are noisy at this size)
    presence = [row["loss/presence_cells"] + row["loss/presence_photo"] for row in result.history]
    assert sum(presence[-2:]) / 2 < 0.8 * presence[0]
    session = ort.InferenceSession(str(result.onnx_path))
    metadata = parse_metadata(session.get_modelmeta().custom_metadata_map, "model")
    assert metadata.classes == ["scratch", "dent"] and metadata.input_size == 128 and metadata.backend == "lite"


@pytest.mark.parametrize(("blocks", "tuned_stages"), [(0, set()), (3, {4, 5, 6}), (7, set(range(7)))])
def test_only_the_last_backbone_stages_are_tuned(blocks: int, tuned_stages: set[int]) -> None:
    model = build_detector(LiteConfig(fpn_channels=64), 2, 64, pretrained=False)
    set_backbone_trainable(model, True, blocks)
    body = model.backbone.features.body
    assert {
        i for i, stage in enumerate(body.blocks) if all(p.requires_grad for p in stage.parameters())
    } == tuned_stages
    assert all(p.requires_grad is (blocks == 7) for p in body.conv_stem.parameters())
    assert all(p.requires_grad for p in model.head.parameters()) and all(
        p.requires_grad for p in model.presence.parameters()
    )
    set_backbone_trainable(model, False, blocks)
    assert not any(p.requires_grad for p in body.parameters())
