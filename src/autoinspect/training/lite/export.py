"""The lite detector as the model contract wants it: letterboxed [0, 1] RGB in, ``[N, K, 6]`` detections and
``[N, C]`` presence probabilities out (see :mod:`.presence`, blended with :mod:`.photo_classifier` when there is one).

Decoding (FCOS box coder, ``sqrt(cls * centerness)`` scores, top-K over all levels and classes) happens inside
the graph, so the ONNX file is a complete detector; class-wise NMS is left to the Detector, which applies it
to every backend alike. The same module runs in torch during training to score checkpoints on val, so the
checkpoint is chosen on exactly what gets exported.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.image_list import ImageList

from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ONNX_PRESENCE
from autoinspect.training.base import TrainConfig
from autoinspect.training.lite.backbone import INPUT_MEAN, INPUT_STD
from autoinspect.training.lite.model import lite_backbone, presence_head
from autoinspect.training.lite.photo_classifier import PhotoClassifier
from autoinspect.training.lite.presence import photo_logits
from autoinspect.training.progress import quiet_loggers

logger = logging.getLogger(__name__)

TOP_K = 300
OPSET = 18
MAX_BATCH = 256
EXPORTER_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx")
"""The exporter's optimisation passes log hundreds of INFO lines per export ("Removed 988 unused nodes")."""


def _anchors(model: FCOS, imgsz: int) -> torch.Tensor:
    """The fixed anchor grid of a square input (one anchor per location and level)."""
    dummy = torch.zeros(1, 3, imgsz, imgsz, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()  # batch norm in train mode refuses the 1 x 1 top level of a single dummy image
    with torch.no_grad():
        features = list(model.backbone(dummy).values())
        anchors: list[torch.Tensor] = model.anchor_generator(ImageList(dummy, [(imgsz, imgsz)]), features)
    model.train(was_training)
    return anchors[0]


def mirror_partners(anchors: torch.Tensor, imgsz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each anchor, the index of the anchor of the same size whose centre is its mirror image across the
    vertical middle (``x -> imgsz - x``), and whether there is one (the grid's first column has none: its mirror
    image falls on the far edge).

    Example:
        >>> grid = torch.tensor([[-2.0, -2, 2, 2], [2, -2, 6, 2], [6, -2, 10, 2]])  # centres x = 0, 4, 8
        >>> mirror_partners(grid, 12)
        (tensor([0, 2, 1]), tensor([False,  True,  True]))
    """
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).tolist()
    sizes = (anchors[:, 2] - anchors[:, 0]).tolist()
    where = {(size, cx, cy): index for index, (size, (cx, cy)) in enumerate(zip(sizes, centres, strict=True))}
    partners = [where.get((size, imgsz - cx, cy), -1) for size, (cx, cy) in zip(sizes, centres, strict=True)]
    found = torch.tensor([partner >= 0 for partner in partners])
    index = torch.tensor([partner if partner >= 0 else own for own, partner in enumerate(partners)])
    return index, found


class ContractDetector(nn.Module):
    """Wraps a trained FCOS into the contract's single input and output.

    With ``mirrored`` each photo also runs mirrored left to right, and every anchor's box and score are the mean of
    its own and those of its mirror-image anchor in the mirrored pass (mapped back); presence log-odds are averaged
    too. Twice the cost of a photo, for a two-view average of every output at the same place.
    """

    anchor_centres: torch.Tensor
    anchor_sizes: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    mirror_index: torch.Tensor
    has_mirror: torch.Tensor

    def __init__(
        self,
        model: FCOS,
        imgsz: int,
        top_k: int = TOP_K,
        *,
        photo: PhotoClassifier | None = None,
        photo_weight: float = 0.0,
        box_presence_weight: float = 0.0,
        mirrored: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = lite_backbone(model)
        self.head = model.head
        self.presence = presence_head(model)
        self.photo = photo if photo_weight > 0 else None
        self.photo_weight = photo_weight
        self.box_presence_weight = box_presence_weight
        anchors = _anchors(model, imgsz)
        self.register_buffer("anchor_centres", (anchors[:, :2] + anchors[:, 2:]) / 2)
        self.register_buffer("anchor_sizes", anchors[:, 2:] - anchors[:, :2])
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(INPUT_STD).view(1, 3, 1, 1))
        mirror_index, has_mirror = mirror_partners(anchors.cpu(), imgsz)
        self.register_buffer("mirror_index", mirror_index.to(anchors.device))
        self.register_buffer("has_mirror", has_mirror.view(1, -1, 1).to(anchors.device))
        self.mirrored = mirrored
        self.imgsz = imgsz
        self.top_k = min(top_k, anchors.shape[0] * model.head.classification_head.num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``detections`` ``[N, K, 6]`` and ``presence`` ``[N, C]``, from one pass of the backbone (two mirrored)."""
        x = (images - self.mean) / self.std
        if not self.mirrored:
            boxes, scores, presence_logits = self._outputs(x)
        else:
            count = x.shape[0]
            boxes, scores, presence_logits = self._outputs(torch.cat([x, x.flip(-1)]))
            flipped = boxes[count:]
            back = torch.stack(
                [self.imgsz - flipped[..., 2], flipped[..., 1], self.imgsz - flipped[..., 0], flipped[..., 3]], dim=-1
            )
            paired_boxes = (boxes[:count] + back[:, self.mirror_index]) / 2
            paired_scores = (scores[:count] + scores[count:][:, self.mirror_index]) / 2
            boxes = torch.where(self.has_mirror, paired_boxes, boxes[:count])
            scores = torch.where(self.has_mirror, paired_scores, scores[:count])
            presence_logits = (presence_logits[:count] + presence_logits[count:]) / 2
        presence = torch.sigmoid(presence_logits)
        if self.box_presence_weight > 0:  # a box of a class the photo likely does not show loses score
            weight = self.box_presence_weight
            scores = scores.pow(1 - weight) * presence.unsqueeze(1).pow(weight)
        n_classes = scores.shape[-1]
        top_scores, flat_index = scores.flatten(1).topk(self.top_k, dim=1)
        anchor_index = torch.div(flat_index, n_classes, rounding_mode="floor")
        classes = (flat_index % n_classes).to(boxes.dtype)
        picked = torch.gather(boxes, 1, anchor_index.unsqueeze(-1).expand(-1, -1, 4))
        detections = torch.cat([picked, top_scores.unsqueeze(-1), classes.unsqueeze(-1)], dim=-1)
        return detections, presence

    def _outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decoded boxes ``[N, A, 4]``, scores ``[N, A, C]`` and presence log-odds ``[N, C]`` of normalised
        inputs, from one pass of the backbone."""
        features = self.backbone.features(x)
        out = self.head(list(self.backbone.pyramid(features).values()))
        presence_logits = photo_logits(self.presence(features))
        if self.photo is not None:
            presence_logits = (1 - self.photo_weight) * presence_logits + self.photo_weight * self.photo(x)
        rel = out["bbox_regression"]  # N x A x 4: distances to the sides, in anchor sizes
        centres, sizes = self.anchor_centres, self.anchor_sizes
        boxes = torch.cat([centres - rel[..., :2] * sizes, centres + rel[..., 2:] * sizes], dim=-1)
        scores = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["bbox_ctrness"]))
        return boxes.clamp(0, self.imgsz), scores, presence_logits


def contract_detector(model: FCOS, config: TrainConfig, photo: PhotoClassifier | None) -> ContractDetector:
    """The module to export for a trained model, with the recipe's presence blend and box rescoring."""
    return ContractDetector(
        model,
        config.imgsz,
        photo=photo,
        photo_weight=config.lite.photo_weight,
        box_presence_weight=config.lite.box_presence_weight,
        mirrored=config.lite.mirrored_inference,
    )


def export_onnx(module: ContractDetector, path: Path) -> Path:
    """Write one self-contained ONNX file (weights inline, as the registry and ``Detector(bytes)`` expect) with a
    dynamic batch dimension, through torch's ``torch.export``-based exporter."""
    module = module.eval().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(2, 3, module.imgsz, module.imgsz)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with quiet_loggers(EXPORTER_LOGGERS):
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT, ONNX_PRESENCE],
            dynamic_shapes={"images": {0: batch}},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    logger.info("exported %s", path)
    return path
