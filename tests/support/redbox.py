"""A small real ONNX detector with known outputs, and photos for it.

:class:`RedBoxModel` finds the bounding box of the pure-red pixels of its input and reports it as a fixed set of
rows chosen to exercise every post-processing rule: a duplicate to suppress, a second class to keep, a weak
candidate below the threshold but inside the review band, and padding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import torch
from PIL import Image

from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ONNX_PRESENCE, ModelMetadata
from autoinspect.onnx_metadata import write_metadata

SIZE = 160
CLASSES = ["scratch", "dent"]
METADATA = ModelMetadata(
    classes=CLASSES,
    input_size=SIZE,
    backend="test",
    score_thresholds={"scratch": 0.5, "dent": 0.5},
    iou_threshold=0.6,
    review_band=(0.25, 0.6),
)
ROWS = (
    # (shift right in box widths, score, class id)
    (0.0, 0.9, 0),  # the red box as a scratch
    (0.05, 0.8, 0),  # the same box shifted 5 %: IoU 0.9 with a better scratch, NMS drops it
    (0.0, 0.7, 1),  # the same box as a dent: another class, NMS keeps it
    (1.0, 0.3, 1),  # a weak dent just right of it: a candidate under the 0.5 threshold, in the review band
)
"""What the model outputs for a photo with red in it, plus one all-zero padding row."""
PRESENCE = (0.8, 0.3)
"""What the presence variant answers per class (scratch, dent) for a photo with red in it; 0 without."""
PRESENCE_METADATA = METADATA.model_copy(update={"presence_thresholds": {"scratch": 0.5, "dent": 0.5}})
BACKGROUND = (90, 140, 200)
RED = (255, 0, 0)


class RedBoxModel(torch.nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("index", torch.arange(size, dtype=torch.float32))
        self.size = float(size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        red = ((images[:, 0] > 0.7) & (images[:, 1] < 0.3) & (images[:, 2] < 0.3)).float()
        columns, lines = red.amax(dim=1), red.amax(dim=2)
        x1, x2 = self._span(columns)
        y1, y2 = self._span(lines)
        found = columns.amax(dim=1)
        rows = [
            torch.stack([x1 + shift * (x2 - x1), y1, x2 + shift * (x2 - x1), y2, found * score, found * class_id], 1)
            for shift, score, class_id in ROWS
        ]
        rows.append(torch.zeros_like(rows[0]))
        return torch.stack(rows, dim=1)

    def _span(self, hits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First and one-past-last index where ``hits`` is 1: pixel edges, as boxes are measured."""
        first = (self.index + (1 - hits) * self.size).amin(dim=1)
        end = ((self.index + 1) * hits).amax(dim=1)
        return first, end


class PresenceRedBoxModel(RedBoxModel):
    """The same rows, plus the optional ``presence`` output: :data:`PRESENCE` when the photo has red, else 0."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        rows = super().forward(images)
        found = rows[:, 0, 4:5] / ROWS[0][1]
        return rows, found * torch.tensor([PRESENCE])


def export(path: Path, *, batch: int | None, presence: bool = False) -> Path:
    """Export with a dynamic batch (``batch=None``) or a fixed one, and store the metadata like an exporter;
    ``presence`` exports :class:`PresenceRedBoxModel` with :data:`PRESENCE_METADATA`."""
    example = torch.zeros(batch or 2, 3, SIZE, SIZE)
    dynamic = None if batch else ({0: torch.export.Dim("batch")},)
    model = PresenceRedBoxModel(SIZE) if presence else RedBoxModel(SIZE)
    torch.onnx.export(
        model.eval(),
        (example,),
        str(path),
        input_names=[ONNX_INPUT],
        output_names=[ONNX_OUTPUT, ONNX_PRESENCE] if presence else [ONNX_OUTPUT],
        dynamic_shapes=dynamic,
        dynamo=True,
        external_data=False,  # one self-contained file, loadable from bytes as the registry hands it over
        verbose=False,
    )
    write_metadata(path, PRESENCE_METADATA if presence else METADATA)
    return path


def edited(model: Path, target: Path, *, input_name: str | None = None, metadata: str | None = None) -> Path:
    """A copy of ``model`` with its input renamed or its metadata replaced (empty string: removed)."""
    proto = onnx.load(str(model))
    if input_name is not None:
        proto.graph.input[0].name = input_name
        for node in proto.graph.node:
            node.input[:] = [input_name if name == ONNX_INPUT else name for name in node.input]
    if metadata is not None:
        del proto.metadata_props[:]
        if metadata:
            proto.metadata_props.add(key="autoinspect", value=metadata)
    onnx.save(proto, str(target))
    return target


def photo(
    width: int, height: int, red: tuple[int, int, int, int] | None = None, *, seed: int = 0
) -> npt.NDArray[np.uint8]:
    """A blue-grey photo with mild noise and, optionally, a red rectangle ``x1, y1, x2, y2`` (end exclusive)."""
    rng = np.random.default_rng(seed)
    pixels = np.broadcast_to(np.array(BACKGROUND, dtype=np.int16), (height, width, 3))
    pixels = np.clip(pixels + rng.integers(-10, 11, size=(height, width, 3)), 0, 255).astype(np.uint8)
    if red is not None:
        x1, y1, x2, y2 = red
        pixels[y1:y2, x1:x2] = RED
    return pixels


RED_BOX = (40, 40, 100, 90)


def red_dataset(root: Path) -> Path:
    """Three train photos (the first shows :data:`RED_BOX`, labelled a scratch); copies across splits would be
    rejected as leaks (the photos differ only in noise), and a Label Studio round trip needs none."""
    root.mkdir(parents=True)
    (root / "data.yaml").write_text("names:\n  0: scratch\n  1: dent\n")
    x1, y1, x2, y2 = RED_BOX
    yolo = f"0 {(x1 + x2) / 2 / SIZE} {(y1 + y2) / 2 / SIZE} {(x2 - x1) / SIZE} {(y2 - y1) / SIZE}\n"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for index in range(3):
        pixels = photo(SIZE, SIZE, RED_BOX if index == 0 else None, seed=index)
        Image.fromarray(pixels).save(root / "images" / "train" / f"train_{index}.png")
        (root / "labels" / "train" / f"train_{index}.txt").write_text(yolo if index == 0 else "")
    return root
