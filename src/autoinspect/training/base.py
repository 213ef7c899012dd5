"""The interface every training backend implements, and the run configuration they share.

A backend trains on a dataset checkout (canonical YOLO layout), keeps the checkpoint that scores best on val,
and exports it as ONNX following the contract in :mod:`autoinspect.domain` (``images`` -> ``detections``), so
evaluation and serving never need to know which backend made a model. Trackers (MLflow) and the val scorer are
passed in as callbacks: the backend knows nothing about them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import ModelMetadata

BackendName = Literal["lite", "yolo"]

RawOutputs = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]
"""``[N, K, 6]`` detections and, for a model with the presence output, ``[N, C]`` presence (else ``None``)."""
RawPredictor = Callable[[npt.NDArray[np.float32]], RawOutputs]
"""Runs the model as exported: ``[N, 3, S, S]`` letterboxed RGB in [0, 1] -> its :data:`RawOutputs`."""

ValScorer = Callable[[RawPredictor], Mapping[str, float]]
"""Scores a model on the val split through the same post-processing the Detector uses; must return at least
the key named by ``TrainConfig.select_metric``. The pipeline builds it; backends only call it."""


class LiteConfig(BaseModel):
    """Options of the pretrained EfficientNet-Lite detector."""

    model_config = ConfigDict(extra="forbid")

    variant: Literal["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"] = "efficientnet_lite0"
    fpn_channels: int = Field(64, ge=64, multiple_of=32)
    """FPN and head width; FCOS's head uses GroupNorm with 32 groups, so at least two channels per group."""
    head_convs: int = Field(2, ge=1, le=4)
    """3x3 convolutions in each of FCOS's two head branches before its outputs. The head runs on every pyramid
    level, stride 4 included, so at 96 channels and 4 convolutions it costs about four fifths of the whole
    network's FLOPs (``benchmarks/model_flops.py``)."""
    freeze_backbone_epochs: int = 1
    """Epochs with the pretrained backbone frozen, so the random head does not wreck its features first."""
    backbone_lr_scale: float = Field(0.1, ge=0, le=1)
    """The pretrained backbone learns at this fraction of ``lr`` after the frozen epochs: it needs adjusting, not
    relearning. 0 keeps it frozen for the whole run."""
    tune_blocks: int = Field(7, ge=0, le=7)
    """How many of the backbone's last stages (EfficientNet-Lite has 7; strides 2, 4, 8, 16, 16, 32, 32) are
    fine-tuned after the frozen epochs; the earlier ones and the stem stay frozen (7: all of it). Measured on 2
    cores with the light head at 384 px: a batch took about 1.8 s frozen and 2.8 s tuned, with 3 stages or all 7
    alike, so the default tunes all of it; fewer stages are there to try against overfitting."""
    weight_average_decay: float = Field(0.995, ge=0, lt=1)
    """Decay of the moving average of the weights that is validated, kept and exported
    (:mod:`~autoinspect.training.lite.weight_average`); 0 keeps the last step's weights."""
    crop: int | None = Field(None, ge=32)
    """Side of the training views, cut at the serving scale (see :mod:`~autoinspect.training.lite.augment`);
    ``None`` (the default) trains on whole photos at ``imgsz``. 320 of a 640 model costs a quarter of a whole
    photo per view; in the one full-split run measured (with a frozen backbone) its boxes were worse (BENCHMARKS.md)."""
    scale_jitter: float = Field(0.25, ge=0, lt=1)
    """Training views are scaled by a factor drawn log-uniformly from [1 / (1 + j), 1 + j] around serving scale."""
    focus_probability: float = Field(0.7, ge=0, le=1)
    """Share of training views placed over a damage box (the rest anywhere on the photo)."""
    colour_jitter: float = 0.3
    """Brightness, contrast and saturation factors are drawn from [1 - j, 1 + j]."""
    photo_weight: float = Field(0.5, ge=0, le=1)
    """Share of the photo classifier (:mod:`~autoinspect.training.lite.photo_classifier`) in each class's presence
    log-odds, the rest being the presence head's best cell; 0 leaves the classifier out of the graph. Measured on
    the full split in BENCHMARKS.md."""
    box_presence_weight: float = Field(0.0, ge=0, lt=1)
    """Each box's score becomes ``score ** (1 - w) * presence ** w`` (the presence of its class in the photo), so
    boxes on photos that do not show the class rank below those on photos that do; 0 keeps the detector's score."""
    mirrored_inference: bool = False
    """Run each photo also mirrored left to right and average every box, score and presence with its mirror
    image's (:class:`~autoinspect.training.lite.export.ContractDetector`): twice the inference cost."""
    photo_l2: float = Field(0.1, gt=0)
    """L2 penalty of the photo classifier's logistic regressions (on the standardised pooled features)."""

    def train_size(self, imgsz: int) -> int:
        """Side of the square training inputs for a model served at ``imgsz``."""
        return min(self.crop, imgsz) if self.crop else imgsz


class YoloConfig(BaseModel):
    """Options of the Ultralytics backend."""

    model_config = ConfigDict(extra="forbid")

    model: str = "yolo26n.yaml"
    """A local ``.pt`` (pretrained weights, if you have them) or an architecture ``.yaml`` (from scratch)."""


class TrainConfig(BaseModel):
    """One training run; parsed from YAML (``autoinspect train --config run.yaml``) or built by the search."""

    model_config = ConfigDict(extra="forbid")

    backend: BackendName = "lite"
    epochs: int = Field(10, ge=1)
    """The default recipe is sized for a 2-core CPU: 10 epochs of the lite backend at 384 px on ~800 photos aim at
    under an hour, evaluation included (BENCHMARKS.md has the timed run). On a GPU give more (``--epochs 60``)."""
    imgsz: int = Field(384, ge=32)
    batch: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 0
    device: str = "auto"
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:1``..."""
    workers: int = Field(2, ge=0)
    patience: int = Field(10, ge=1)
    """Stop after this many epochs without a better val score."""
    select_metric: str = "map50"
    """The val metric that picks the checkpoint to export."""
    score_threshold: float = Field(0.25, gt=0, lt=1)
    """Default operating threshold written into the model until calibration on val replaces it."""
    review_share: float = Field(0.15, ge=0, lt=1)
    """Share of photos a presence model sends to a person for review: the margin around its thresholds is
    calibrated on val to flag this share, the photos nearest a decision (the evaluation reports the test share)."""
    lite: LiteConfig = Field(default_factory=LiteConfig)
    yolo: YoloConfig = Field(default_factory=YoloConfig)


class TrainingCallbacks(Protocol):
    """Events a backend reports; the MLflow tracker implements them."""

    def on_train_start(self, config: TrainConfig, layout: DatasetLayout) -> None: ...

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None: ...

    def on_train_end(self, result: TrainResult) -> None: ...


class TrainResult(BaseModel):
    """What a backend leaves behind in its output folder."""

    onnx_path: Path
    weights_path: Path
    """The framework checkpoint of the exported model (for warm starts)."""
    metadata: ModelMetadata
    best_epoch: int
    best_score: float
    """``select_metric`` of the kept epoch on val; NaN when no val scorer was given (the last epoch is kept)."""
    history: list[dict[str, float]]
    """One row per epoch: ``epoch``, losses, val metrics."""
    plots: list[Path] = Field(default_factory=list)


class Backend(Protocol):
    def train(
        self,
        layout: DatasetLayout,
        config: TrainConfig,
        out_dir: Path,
        *,
        callbacks: TrainingCallbacks | None = None,
        val_scorer: ValScorer | None = None,
        init_weights: Path | None = None,
    ) -> TrainResult: ...
