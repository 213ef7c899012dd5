"""The detector: EfficientNet-Lite features -> FPN (P2-P7) -> torchvision's FCOS head and losses.

FCOS assigns each object to pyramid levels by size (anchor size = stride, objects of 4-8x the stride), so
levels start at stride 4: thin scratches of a few pixels still contain grid points of P2.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

from autoinspect.training.lite.backbone import INPUT_MEAN, INPUT_STD, LiteFeatures

STRIDES = (4, 8, 16, 32, 64, 128)


class LiteFpnBackbone(nn.Module):
    """What torchvision detectors expect of a backbone: named feature maps and ``out_channels``."""

    def __init__(self, variant: str, fpn_channels: int, *, pretrained: bool = True) -> None:
        super().__init__()
        self.features = LiteFeatures(variant, pretrained=pretrained)
        self.fpn = FeaturePyramidNetwork(
            self.features.channels, fpn_channels, extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels)
        )
        self.out_channels = fpn_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        maps = OrderedDict((f"p{i}", f) for i, f in enumerate(self.features(x), start=2))
        result: OrderedDict[str, torch.Tensor] = self.fpn(maps)
        return result


def build_detector(variant: str, num_classes: int, imgsz: int, fpn_channels: int, *, pretrained: bool = True) -> FCOS:
    """FCOS over the Lite FPN; the transform neither resizes (inputs are letterboxed to ``imgsz``) nor
    normalises differently from the exported graph."""
    anchors = AnchorGenerator(tuple((s,) for s in STRIDES), ((1.0,),) * len(STRIDES))
    return FCOS(
        LiteFpnBackbone(variant, fpn_channels, pretrained=pretrained),
        num_classes=num_classes,
        min_size=imgsz,
        max_size=imgsz,
        image_mean=list(INPUT_MEAN),
        image_std=list(INPUT_STD),
        anchor_generator=anchors,
        score_thresh=0.001,
        detections_per_img=300,
    )


def backbone_parameters(model: FCOS) -> list[nn.Parameter]:
    """The pretrained feature extractor's parameters (they train at a lower learning rate)."""
    backbone = model.backbone
    assert isinstance(backbone, LiteFpnBackbone)
    return list(backbone.features.parameters())


def set_backbone_trainable(model: FCOS, trainable: bool) -> None:
    """Freeze or unfreeze the pretrained features (the FPN and head always train)."""
    for parameter in backbone_parameters(model):
        parameter.requires_grad = trainable


def keep_backbone_statistics(model: FCOS) -> None:
    """Put the backbone's batch norms in eval mode after ``model.train()``.

    Batches of a few high-resolution photos give noisy batch statistics; re-estimating ImageNet's running
    means from them wrecked the features in the epoch the backbone was unfrozen (the loss doubled).
    """
    backbone = model.backbone
    assert isinstance(backbone, LiteFpnBackbone)
    for module in backbone.features.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
