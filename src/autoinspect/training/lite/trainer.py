"""Training loop of the lite backend: AdamW, warm-up + cosine schedule, frozen backbone first, a moving average
of the weights, checkpoint by val.

The checkpoint that is exported is the one with the best ``select_metric`` on val, computed through the exported
module itself (see :mod:`.export`) and the caller's scorer; the measured failure mode of this detector on ~600
photos is memorising the train split, so the last epoch is rarely the best one.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import DataLoader
from torchvision.models.detection import FCOS

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import ModelMetadata, Split
from autoinspect.errors import ConfigError
from autoinspect.onnx_metadata import write_metadata
from autoinspect.progress import progress_bar
from autoinspect.training.base import (
    RawOutputs,
    RawPredictor,
    TrainConfig,
    TrainingCallbacks,
    TrainResult,
    ValScorer,
)
from autoinspect.training.device import resolve_device
from autoinspect.training.lite.dataset import LayoutSplit, collate
from autoinspect.training.lite.export import ContractDetector, contract_detector, export_onnx
from autoinspect.training.lite.model import (
    backbone_parameters,
    build_detector,
    keep_backbone_statistics,
    lite_backbone,
    presence_head,
    set_backbone_trainable,
    warm_start,
)
from autoinspect.training.lite.photo_classifier import PhotoClassifier, fit_photo_classifier
from autoinspect.training.lite.presence import FeatureTap, presence_loss
from autoinspect.training.lite.weight_average import WeightAverage
from autoinspect.training.progress import val_summary

logger = logging.getLogger(__name__)

WARMUP_FRACTION = 0.05
PREDICT_BATCH = 8
GRAD_CLIP = 10.0
WEIGHTS_FILE = "best.pt"
ONNX_FILE = "model.onnx"


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _schedule(step: int, total: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 5%."""
    warmup = max(1, int(total * WARMUP_FRACTION))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def torch_predictor(module: ContractDetector, device: torch.device) -> RawPredictor:
    """The exported module as a numpy function, in eval mode and without gradients."""

    def predict(batch: npt.NDArray[np.float32]) -> RawOutputs:
        module.eval()
        detections, presence = [], []
        with torch.no_grad():
            for start in range(0, len(batch), PREDICT_BATCH):
                rows, probabilities = module(torch.from_numpy(batch[start : start + PREDICT_BATCH]).to(device))
                detections.append(rows.float().cpu().numpy())
                presence.append(probabilities.float().cpu().numpy())
        if not detections:
            return np.zeros((0, 0, 6), dtype=np.float32), None
        return np.concatenate(detections), np.concatenate(presence)

    return predict


class LiteBackend:
    """Implements :class:`~autoinspect.training.base.Backend` for the EfficientNet-Lite FCOS detector."""

    def train(
        self,
        layout: DatasetLayout,
        config: TrainConfig,
        out_dir: Path,
        *,
        callbacks: TrainingCallbacks | None = None,
        val_scorer: ValScorer | None = None,
        init_weights: Path | None = None,
    ) -> TrainResult:
        _seed(config.seed)
        device = resolve_device(config.device)
        classes = layout.names
        data = LayoutSplit(layout, Split.TRAIN, config.imgsz, config.lite, augment=True, seed=config.seed)
        if not len(data):
            raise ConfigError(f"{layout.root} has no train images")
        model = build_detector(config.lite, len(classes), data.size, pretrained=init_weights is None)
        if init_weights is not None:
            warm_start(model, init_weights)
        model.to(device)
        average = WeightAverage(model, config.lite.weight_average_decay)
        loader = DataLoader(
            data,
            batch_size=config.batch,
            shuffle=True,
            num_workers=config.workers,
            collate_fn=collate,
            drop_last=len(data) > config.batch,
            persistent_workers=False,
        )
        pretrained = {id(p) for p in backbone_parameters(model)}
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in pretrained], "lr": config.lr},
            {"params": backbone_parameters(model), "lr": config.lr * config.lite.backbone_lr_scale},
        ]
        optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
        total_steps = config.epochs * len(loader)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _schedule(step, total_steps))
        out_dir.mkdir(parents=True, exist_ok=True)
        weights = out_dir / WEIGHTS_FILE
        if callbacks:
            callbacks.on_train_start(config, layout)
        history: list[dict[str, float]] = []
        best_score, best_epoch, stale = -math.inf, 0, 0
        for epoch in range(1, config.epochs + 1):
            data.epoch = epoch
            set_backbone_trainable(
                model,
                epoch > config.lite.freeze_backbone_epochs and config.lite.backbone_lr_scale > 0,
                config.lite.tune_blocks,
            )
            losses = self._epoch(model, average, loader, optimizer, scheduler, device, epoch, config.epochs)
            metrics = dict(self._validate(average.model, config, device, val_scorer))
            row = {"epoch": float(epoch), **losses, **metrics, "lr": optimizer.param_groups[0]["lr"]}
            history.append(row)
            if callbacks:
                callbacks.on_epoch_end(epoch, row)
            # without a scorer the last epoch is kept; with one, the best on val
            score = metrics[config.select_metric] if val_scorer is not None else float(epoch)
            if score > best_score:
                best_score, best_epoch, stale = score, epoch, 0
                torch.save(average.model.state_dict(), weights)
            else:
                stale += 1
            logger.info("epoch %d/%d val: %s; kept epoch %d", epoch, config.epochs, val_summary(metrics), best_epoch)
            if stale >= config.patience:
                logger.info("no better %s for %d epochs: stopping", config.select_metric, stale)
                break
        best_score = best_score if val_scorer is not None else math.nan
        photo = fit_photo_classifier(layout, config)
        result = self._export(model, photo, weights, config, classes, out_dir, best_epoch, best_score, history)
        if callbacks:
            callbacks.on_train_end(result)
        return result

    @staticmethod
    def _epoch(
        model: FCOS,
        average: WeightAverage,
        loader: DataLoader[object],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        epoch: int,
        epochs: int,
    ) -> dict[str, float]:
        model.train()
        keep_backbone_statistics(model)
        totals: dict[str, float] = {}
        batches = 0
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
        bar = progress_bar(loader, f"epoch {epoch}/{epochs}")
        presence_ids = {id(p) for p in presence_head(model).parameters()}
        detector_parameters = [p for p in model.parameters() if id(p) not in presence_ids]
        with FeatureTap(lite_backbone(model).features) as tap:
            for images, targets in bar:
                images = [i.to(device, non_blocking=True) for i in images]
                targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
                with autocast:
                    loss_parts = model(images, targets)
                    cells = presence_head(model)([f.detach() for f in tap.features])
                    loss_parts |= presence_loss(cells, targets)
                loss = sum(loss_parts.values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # clipped apart: one norm over both would let a burst in the presence head shrink the detector's step
                torch.nn.utils.clip_grad_norm_(detector_parameters, GRAD_CLIP)
                torch.nn.utils.clip_grad_norm_(presence_head(model).parameters(), GRAD_CLIP)
                optimizer.step()
                scheduler.step()
                average.update(model)
                batches += 1
                for name, value in loss_parts.items():
                    totals[f"loss/{name}"] = totals.get(f"loss/{name}", 0.0) + float(value.detach())
                bar.set_postfix(
                    {name.removeprefix("loss/"): f"{value / batches:.3f}" for name, value in totals.items()},
                    refresh=False,
                )
        return {name: value / max(batches, 1) for name, value in totals.items()}

    @staticmethod
    def _validate(
        model: FCOS, config: TrainConfig, device: torch.device, val_scorer: ValScorer | None
    ) -> Mapping[str, float]:
        if val_scorer is None:
            return {}
        module = contract_detector(model, config, None).to(device)  # the photo classifier comes after training
        return val_scorer(torch_predictor(module, device))

    @staticmethod
    def _export(
        model: FCOS,
        photo: PhotoClassifier | None,
        weights: Path,
        config: TrainConfig,
        classes: list[str],
        out_dir: Path,
        best_epoch: int,
        best_score: float,
        history: list[dict[str, float]],
    ) -> TrainResult:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.cpu().eval()
        module = contract_detector(model, config, photo)
        onnx_path = export_onnx(module, out_dir / ONNX_FILE)
        metadata = ModelMetadata(
            classes=classes,
            input_size=config.imgsz,
            backend="lite",
            score_thresholds=dict.fromkeys(classes, config.score_threshold),
        )
        write_metadata(onnx_path, metadata)
        return TrainResult(
            onnx_path=onnx_path,
            weights_path=weights,
            metadata=metadata,
            best_epoch=best_epoch,
            best_score=best_score,
            history=history,
        )
