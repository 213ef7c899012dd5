"""The detector: EfficientNet-Lite features -> FPN (P2-P7) -> torchvision's FCOS head and losses.

FCOS assigns each object to pyramid levels by size (anchor size = stride, objects of 4-8x the stride), so
levels start at stride 4: thin scratches of a few pixels still contain grid points of P2.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

from autoinspect.errors import ConfigError
from autoinspect.training.base import LiteConfig
from autoinspect.training.lite.backbone import INPUT_MEAN, INPUT_STD, LiteFeatures
from autoinspect.training.lite.presence import PresenceHead

logger = logging.getLogger(__name__)

STRIDES = (4, 8, 16, 32, 64, 128)
REGRESSION_BIAS = 1.0


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
        return self.pyramid(self.features(x))

    def pyramid(self, features: list[torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
        """The FPN levels from the backbone's maps (the export computes those once for this and the presence head)."""
        maps = OrderedDict((f"p{i}", f) for i, f in enumerate(features, start=2))
        result: OrderedDict[str, torch.Tensor] = self.fpn(maps)
        return result


def build_detector(config: LiteConfig, num_classes: int, imgsz: int, *, pretrained: bool = True) -> FCOS:
    """FCOS over the Lite FPN, with a :class:`PresenceHead` as its ``presence`` module (FCOS's own forward does not
    call it; the trainer and the export do). The transform neither resizes (inputs are letterboxed to ``imgsz``)
    nor normalises differently from the exported graph."""
    anchors = AnchorGenerator(tuple((s,) for s in STRIDES), ((1.0,),) * len(STRIDES))
    backbone = LiteFpnBackbone(config.variant, config.fpn_channels, pretrained=pretrained)
    model = FCOS(
        backbone,
        num_classes=num_classes,
        head=FCOSHead(config.fpn_channels, 1, num_classes, num_convs=config.head_convs),
        min_size=imgsz,
        max_size=imgsz,
        image_mean=list(INPUT_MEAN),
        image_std=list(INPUT_STD),
        anchor_generator=anchors,
        score_thresh=0.001,
        detections_per_img=300,
    )
    # torchvision starts the side distances at 0 behind a ReLU: boxes of no size, a GIoU loss of 1 whose gradient
    # can stay at zero for epochs (measured: stuck at 1.0 for 5 epochs under one seed). One anchor size per side
    # starts every box at twice its anchor, inside the range FCOS assigns to each level.
    nn.init.constant_(model.head.regression_head.bbox_reg.bias, REGRESSION_BIAS)
    model.presence = PresenceHead(backbone.features.channels, num_classes)
    return model


def presence_head(model: FCOS) -> PresenceHead:
    head = model.presence
    assert isinstance(head, PresenceHead)
    return head


def lite_backbone(model: FCOS) -> LiteFpnBackbone:
    backbone = model.backbone
    assert isinstance(backbone, LiteFpnBackbone)
    return backbone


def backbone_parameters(model: FCOS) -> list[nn.Parameter]:
    """The pretrained feature extractor's parameters (they train at a lower learning rate)."""
    return list(lite_backbone(model).features.parameters())


def set_backbone_trainable(model: FCOS, trainable: bool, blocks: int) -> None:
    """Freeze the pretrained features, or unfreeze their last ``blocks`` stages (all 7 and the stem: the whole
    backbone); the FPN and heads always train."""
    body = lite_backbone(model).features.body
    blocks_module = body.blocks
    assert isinstance(blocks_module, nn.Sequential)
    stages = list(blocks_module)
    tuned = {id(p) for stage in stages[len(stages) - blocks :] for p in stage.parameters()} if blocks else set()
    if blocks >= len(stages):
        tuned |= {id(p) for p in body.parameters()}
    for parameter in backbone_parameters(model):
        parameter.requires_grad = trainable and id(parameter) in tuned


def keep_backbone_statistics(model: FCOS) -> None:
    """Put the backbone's batch norms in eval mode after ``model.train()``.

    Batches of a few high-resolution photos give noisy batch statistics; re-estimating ImageNet's running
    means from them wrecked the features in the epoch the backbone was unfrozen (the loss doubled).
    """
    for module in lite_backbone(model).features.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def warm_start(model: FCOS, weights: Path) -> None:
    """Load a checkpoint of the same recipe; one saved before the presence head existed loads too (the head then
    starts from scratch), any other mismatch fails."""
    missing, unexpected = model.load_state_dict(
        torch.load(weights, map_location="cpu", weights_only=True), strict=False
    )
    if unexpected or any(not key.startswith("presence.") for key in missing):
        raise ConfigError(f"{weights} does not fit this detector: missing {missing[:3]}, unexpected {unexpected[:3]}")
    logger.info("warm start from %s%s", weights, " (presence head from scratch)" if missing else "")
