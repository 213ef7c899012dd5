"""A split of a dataset checkout as torch samples: letterboxed image tensor and FCOS targets in input pixels."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from autoinspect.data.layout import DatasetLayout, LayoutItem
from autoinspect.domain import Split
from autoinspect.images import decode_image, letterbox
from autoinspect.training.base import LiteConfig
from autoinspect.training.lite.augment import Boxes, augment

Sample = tuple[torch.Tensor, dict[str, torch.Tensor]]


def _labels(item: LayoutItem, n_classes: int, width: int, height: int) -> tuple[Boxes, npt.NDArray[np.int64]]:
    rows = item.read_labels(n_classes).rows
    boxes = np.array([r.box.to_pixels(width, height) for r in rows], dtype=np.float32).reshape(-1, 4)
    return boxes, np.array([r.class_id for r in rows], dtype=np.int64)


def to_input(rgb: npt.NDArray[np.uint8], imgsz: int) -> tuple[torch.Tensor, float, int, int]:
    """Letterbox and scale to [0, 1] CHW: exactly what the exported graph receives."""
    canvas, placement = letterbox(rgb, imgsz)
    tensor = torch.from_numpy(canvas).permute(2, 0, 1).float().div_(255)
    return tensor, placement.scale, placement.pad_x, placement.pad_y


class LayoutSplit(Dataset[Sample]):
    """The images of one split; with ``augment`` each access draws a new random view of ``config.train_size``
    pixels (see :mod:`.augment`), without it the whole photo letterboxed to ``imgsz``."""

    def __init__(
        self, layout: DatasetLayout, split: Split, imgsz: int, config: LiteConfig, *, augment: bool, seed: int = 0
    ) -> None:
        self.items = [item for item in layout.items() if item.split is split]
        self.n_classes = len(layout.names)
        self.imgsz = imgsz
        self.size = config.train_size(imgsz) if augment else imgsz
        self.config = config
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        rgb = decode_image(item.image).rgb
        boxes, labels = _labels(item, self.n_classes, rgb.shape[1], rgb.shape[0])
        if self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            rgb, boxes, labels = augment(rgb, boxes, labels, self.imgsz, self.config, rng)
        tensor, scale, pad_x, pad_y = to_input(rgb, self.size)
        placed = boxes * scale + np.array([pad_x, pad_y, pad_x, pad_y], dtype=np.float32)
        return tensor, {"boxes": torch.from_numpy(placed).float(), "labels": torch.from_numpy(labels)}


def collate(batch: list[Sample]) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    return [b[0] for b in batch], [b[1] for b in batch]
