"""The photo classifier: its logistic fit, what it learns from real photos, and its place in the exported graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import ONNX_INPUT, ONNX_PRESENCE, Split
from autoinspect.training.base import LiteConfig, TrainConfig
from autoinspect.training.lite.backbone import INPUT_MEAN, INPUT_STD
from autoinspect.training.lite.dataset import LayoutSplit
from autoinspect.training.lite.export import ContractDetector, export_onnx
from autoinspect.training.lite.model import build_detector
from autoinspect.training.lite.photo_classifier import PhotoClassifier, fit_logistic, fit_photo_classifier
from autoinspect.training.lite.presence import photo_logits


def test_logistic_fit_separates_a_rare_class_and_answers_constant_classes() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=generator)
    rare = (x[:, 0] > 1.3).float()  # about one photo in ten
    y = torch.stack([rare, torch.ones(400), torch.zeros(400)], dim=1)
    weight, bias = fit_logistic(x, y, l2=0.01)
    logits = x @ weight.T + bias
    assert weight.shape == (3, 5) and bias.shape == (3,)
    assert weight[0, 0] > 5 * weight[0, 1:].abs().max()  # the one feature that decides it
    # class-balanced: at log-odds 0 both the rare positives and the common negatives are mostly right
    assert (logits[rare > 0, 0] > 0).float().mean() > 0.9 and (logits[rare == 0, 0] < 0).float().mean() > 0.9
    assert (logits[:, 1] > 10).all() and (logits[:, 2] < -10).all()


def test_stronger_penalty_shrinks_the_weights() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(200, 4, generator=generator)
    y = (x[:, :1] + 0.5 * torch.randn(200, 1, generator=generator) > 0).float()
    loose, _ = fit_logistic(x, y, l2=0.001)
    tight, _ = fit_logistic(x, y, l2=1.0)
    assert tight.norm() < 0.5 * loose.norm()


def test_fitted_on_real_photos_it_tells_damaged_from_clean_on_unseen_ones(sample_root: Path) -> None:
    """ImageNet features of the whole photo carry the verdict (the reason the classifier exists): fitted on the
    sample's train split at a small size, it ranks the unseen test photos far better than chance."""
    layout = DatasetLayout(sample_root)
    config = TrainConfig(imgsz=160)
    classifier = fit_photo_classifier(layout, config)
    assert classifier is not None
    test = LayoutSplit(layout, Split.TEST, config.imgsz, config.lite, augment=False)
    mean, std = torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), torch.tensor(INPUT_STD).view(1, 3, 1, 1)
    images = torch.stack([test[i][0] for i in range(len(test))])
    damaged = np.array([len(test[i][1]["labels"]) > 0 for i in range(len(test))])
    with torch.no_grad():
        logits = classifier((images - mean) / std)
    score = logits.amax(dim=1).numpy()
    ordered = (score[damaged][:, None] > score[~damaged][None, :]).mean()  # ROC AUC: pairs ranked right
    assert ordered > 0.8
    assert fit_photo_classifier(layout, TrainConfig(imgsz=160, lite=LiteConfig(photo_weight=0))) is None


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_the_graph_blends_the_two_presence_estimates_by_weight(weight: float, tmp_path: Path) -> None:
    """The exported presence is sigmoid((1 - w) * best cell + w * photo classifier), in ONNX Runtime too; with
    weight 0 the classifier's backbone is not in the file at all."""
    torch.manual_seed(0)
    model = build_detector(LiteConfig(), 2, 96, pretrained=False).eval()
    photo = PhotoClassifier("efficientnet_lite0", 2, pretrained=False)
    torch.nn.init.normal_(photo.linear.weight, std=0.5)
    module = ContractDetector(model, 96, photo=photo, photo_weight=weight).eval()
    images = torch.rand(2, 3, 96, 96)
    x = (images - module.mean) / module.std
    with torch.no_grad():
        cells = photo_logits(module.presence(module.backbone.features(x)))
        expected = torch.sigmoid((1 - weight) * cells + weight * photo(x)).numpy()
    path = export_onnx(module, tmp_path / "m.onnx")
    got = ort.InferenceSession(str(path)).run([ONNX_PRESENCE], {ONNX_INPUT: images.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    alone = export_onnx(ContractDetector(model, 96).eval(), tmp_path / "alone.onnx")
    photo_bytes = sum(p.numel() * 4 for p in photo.body.parameters())
    grew = path.stat().st_size - alone.stat().st_size
    assert grew == 0 if weight == 0 else grew > photo_bytes * 0.9


def test_box_scores_are_weighed_by_their_class_presence(tmp_path: Path) -> None:
    """With ``box_presence_weight`` w each box scores ``score ** (1 - w) * presence ** w``, in ONNX Runtime too."""
    torch.manual_seed(1)
    model = build_detector(LiteConfig(), 2, 96, pretrained=False).eval()
    module = ContractDetector(model, 96, box_presence_weight=0.4).eval()
    images = torch.rand(2, 3, 96, 96)
    x = (images - module.mean) / module.std
    with torch.no_grad():
        features = module.backbone.features(x)
        out = module.head(list(module.backbone.pyramid(features).values()))
        presence = torch.sigmoid(photo_logits(module.presence(features)))
        raw = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["bbox_ctrness"]))
        expected = (raw.pow(0.6) * presence.unsqueeze(1).pow(0.4)).flatten(1).topk(module.top_k, dim=1).values
    got = ort.InferenceSession(str(export_onnx(module, tmp_path / "m.onnx"))).run(None, {ONNX_INPUT: images.numpy()})
    np.testing.assert_allclose(got[0][..., 4], expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(got[1], presence.numpy(), atol=1e-5)
