"""The presence head: per class, the probability that the photo shows that damage at all.

Why a head of its own: a photo's verdict ("None", scratch, dent) is what the business reads, and a box detector
answers it only through its best box score, which on ~800 photos is noisy (a single false box on a clean car
flips the verdict). Here a small dense classifier scores every stride-8 cell of the pretrained backbone's
features (strides 8 and 16, the latter upsampled) and the photo's presence is its best cell: a maximum, so the
head trains on the detector's small crops and answers on the whole photo alike. Each cell is supervised by the
damage boxes that cover it (a box smaller than a cell marks the cell of its centre), and the maximum by the
photo's label.

It reads the backbone's features, detached: with the backbone frozen (the CPU recipe) they are exactly the
ImageNet features, which the detector cannot have fitted to the train split, and the head adds only a few
milliseconds to the exported graph, which computes the backbone once for both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from torchvision.ops import sigmoid_focal_loss

STRIDE = 8
"""Cell size of the presence map, in input pixels."""
LEVELS = (1, 2)
"""Which of the backbone's feature maps (strides 4, 8, 16, 32) the head reads: strides 8 and 16."""
HIDDEN = 64


class PresenceHead(nn.Module):
    """Backbone features -> ``[N, C, H/8, W/8]`` cell logits; :func:`photo_logits` pools them per photo."""

    def __init__(self, channels: list[int], num_classes: int) -> None:
        super().__init__()
        width = sum(channels[level] for level in LEVELS)
        # ImageNet activations run to several units on hundreds of channels: unnormalised, the first steps swing
        # the cell logits so far that the focal loss climbed from 1 to 9 on the smoke set; each cell's feature
        # vector is normalised instead (per cell, so a crop and a whole photo are treated alike).
        self.norm = nn.LayerNorm(width)
        self.cells = nn.Sequential(
            nn.Conv2d(width, HIDDEN, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(HIDDEN, HIDDEN, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(HIDDEN, num_classes, kernel_size=1),
        )
        last = self.cells[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        nn.init.constant_(last.bias, -4.0)  # damage covers few cells: start every cell near "no damage"

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        fine = features[LEVELS[0]]
        coarse = functional.interpolate(features[LEVELS[1]], size=fine.shape[-2:], mode="nearest")
        stacked = torch.cat([fine, coarse], dim=1)
        normalised = self.norm(stacked.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        logits: torch.Tensor = self.cells(normalised)
        return logits


class FeatureTap:
    """Keeps the last output of a module (the backbone, inside FCOS's training forward), so the presence head
    reads the features FCOS computed instead of a second backbone pass, the costliest part of a step."""

    def __init__(self, module: nn.Module) -> None:
        self.features: list[torch.Tensor] = []
        self._handle = module.register_forward_hook(self._keep)

    def _keep(self, _module: nn.Module, _inputs: object, output: list[torch.Tensor]) -> None:
        self.features = output

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._handle.remove()


def photo_logits(cell_logits: torch.Tensor) -> torch.Tensor:
    """``[N, C]``: each photo's best cell per class."""
    return cell_logits.flatten(2).amax(dim=2)


def cell_targets(boxes: torch.Tensor, labels: torch.Tensor, num_classes: int, height: int, width: int) -> torch.Tensor:
    """``[C, H, W]`` 0/1 map of the cells whose centre lies in a box of each class; a box too small to hold a
    cell centre marks the cell that holds its own centre, so hairline scratches are never left out."""
    target = torch.zeros(num_classes, height, width)
    centres_x = (torch.arange(width, dtype=torch.float32) + 0.5) * STRIDE
    centres_y = (torch.arange(height, dtype=torch.float32) + 0.5) * STRIDE
    for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist(), strict=True):
        inside_x = (centres_x >= x1) & (centres_x <= x2)
        inside_y = (centres_y >= y1) & (centres_y <= y2)
        if inside_x.any() and inside_y.any():
            target[label] = torch.maximum(target[label], (inside_y[:, None] & inside_x[None, :]).float())
        else:
            column = min(int((x1 + x2) / 2 // STRIDE), width - 1)
            row = min(int((y1 + y2) / 2 // STRIDE), height - 1)
            target[label, row, column] = 1
    return target


def presence_loss(cell_logits: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Cell loss (focal, since damage covers a few cells of thousands) and photo loss on the best cell."""
    num_classes, height, width = cell_logits.shape[1:]
    cells = torch.stack(
        [cell_targets(t["boxes"].cpu(), t["labels"].cpu(), num_classes, height, width) for t in targets]
    ).to(cell_logits.device)
    photos = cells.flatten(2).amax(dim=2)
    cell_loss = sigmoid_focal_loss(cell_logits, cells, reduction="sum") / cells.sum().clamp(min=1.0)
    photo_loss = functional.binary_cross_entropy_with_logits(photo_logits(cell_logits), photos)
    return {"presence_cells": cell_loss, "presence_photo": photo_loss}
