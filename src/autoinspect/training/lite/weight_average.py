"""An exponential moving average of the detector's weights, which is what gets validated and exported.

On ~600 training photos the val AP of the raw weights swings from epoch to epoch (BENCHMARKS.md, row D:
0.122, 0.119, 0.106, 0.106, 0.127, 0.148, 0.136): each AdamW step moves the weights towards the last few
batches. Averaging the recent steps' weights is the standard cure in detectors (YOLO keeps one always); it costs
one in-place interpolation per parameter and step.

The decay follows TensorFlow's ``ExponentialMovingAverage(num_updates=...)``: ``min(decay, (1 + t) / (10 + t))``
after ``t`` steps, so the average spans about the last ``t / 9`` steps early on (the first steps' random-head
weights are forgotten fast) and at most ``1 / (1 - decay)`` steps.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """A frozen copy of ``model`` that tracks its weights; ``decay`` 0 makes it a plain copy of the last step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    def rate(self) -> float:
        """The weight kept from the average at the next update."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights; buffers (batch-norm statistics) are copied."""
        keep = self.rate()
        self.updates += 1
        for average, current in zip(self.model.parameters(), model.parameters(), strict=True):
            average.lerp_(current.detach(), 1.0 - keep)
        for average_buffer, buffer in zip(self.model.buffers(), model.buffers(), strict=True):
            average_buffer.copy_(buffer)
