"""The Ultralytics YOLO backend: trains with the Ultralytics engine and exports the model contract as ONNX.

The engine is used as it ships and steered only through its arguments, callbacks and settings (see
:mod:`.yolo_offline` for what it would otherwise do on a machine without internet). What this module adds:

* a *view* of the dataset under ``out_dir`` (symbolic links and an absolute ``data.yaml``): Ultralytics writes
  ``labels/<split>.cache`` beside the labels, and a dataset checkout must not change; the layout's own
  ``path: .`` would also resolve against the current directory;
* metric names of our own (``map50``, ``loss/box``...), one per epoch, through :class:`TrainingCallbacks`;
* an ONNX file that follows the contract of :mod:`autoinspect.domain`, checked by running it once.

Example:
    >>> result = YoloBackend().train(layout, TrainConfig(backend="yolo", epochs=30), Path("runs/7"))  # doctest: +SKIP
    >>> result.onnx_path.name, result.weights_path.name
    ('model.onnx', 'best.pt')
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ModelMetadata, Split
from autoinspect.errors import ConfigError
from autoinspect.onnx_metadata import ModelFileError, write_metadata
from autoinspect.training.base import (
    RawOutputs,
    RawPredictor,
    TrainConfig,
    TrainingCallbacks,
    TrainResult,
    ValScorer,
)
from autoinspect.training.device import resolve_device
from autoinspect.training.yolo_offline import pil_untouched, prepare_ultralytics

logger = logging.getLogger(__name__)

RUN_NAME = "yolo"
"""Ultralytics' run folder under ``out_dir``: checkpoints in ``weights/``, ``results.csv`` and plots."""
DATA_VIEW = "dataset"
CONFIG_DIR = "ultralytics"
ONNX_FILE = "model.onnx"
ONNX_OPSET = 18
"""Pinned rather than "newest the exporter knows", so a torch upgrade cannot outrun the serving ONNX Runtime."""
NMS_SCORE_FLOOR = 0.001
"""Graph-embedded NMS (models without an NMS-free head) drops boxes below this score; the Detector's calibrated
per-class thresholds sit well above it."""
PREDICT_BATCH = 8
TRAIN_SPLITS = (Split.TRAIN, Split.VAL)

METRIC_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "epoch": "epoch",
        "metrics/precision(B)": "precision",
        "metrics/recall(B)": "recall",
        "metrics/mAP50(B)": "map50",
        "metrics/mAP50-95(B)": "map50_95",
        "lr/pg0": "lr",
    }
)
"""Ultralytics' key -> ours, for everything but losses. Precision and recall are Ultralytics' own (at its max-F1
confidence), not the evaluator's figures at the operating threshold."""
LOSS_PREFIXES: Mapping[str, str] = MappingProxyType({"train/": "loss/", "val/": "val_loss/"})
"""Loss terms differ by architecture (``dfl`` in YOLO11, ``l1`` in YOLO26), so they are renamed by rule:
``train/box_loss`` -> ``loss/box``. Keys that fit neither table are dropped: MLflow refuses ``(`` in a name."""
LOSS_SUFFIX = "_loss"


def rename_metrics(raw: Mapping[str, Any]) -> dict[str, float]:
    """Ultralytics' metrics (a results.csv row, or the trainer's dicts) under AutoInspect's names.

    Example:
        >>> rename_metrics({"metrics/mAP50(B)": 0.5, "train/box_loss": 1.25, "time": 3.0})
        {'map50': 0.5, 'loss/box': 1.25}
    """
    renamed: dict[str, float] = {}
    for key, value in raw.items():
        name = key.strip()
        if name in METRIC_NAMES:
            renamed[METRIC_NAMES[name]] = float(value)
            continue
        for prefix, ours in LOSS_PREFIXES.items():
            if name.startswith(prefix) and name.endswith(LOSS_SUFFIX):
                renamed[ours + name[len(prefix) : -len(LOSS_SUFFIX)]] = float(value)
    return renamed


class _EpochRelay:
    """Ultralytics trainer events -> one ``on_epoch_end`` per epoch, and the epoch that ``best.pt`` holds.

    Ultralytics fires ``on_fit_epoch_end`` once more after the loop, for the re-validation of ``best.pt``; only an
    epoch announced by ``on_train_epoch_end`` is relayed, so that extra call is skipped.
    """

    def __init__(self, callbacks: TrainingCallbacks | None) -> None:
        self._callbacks = callbacks
        self._pending: int | None = None
        self.best_epoch = 0

    def on_train_epoch_end(self, trainer: Any) -> None:
        self._pending = int(trainer.epoch) + 1

    def on_fit_epoch_end(self, trainer: Any) -> None:
        epoch, self._pending = self._pending, None
        if epoch is None:
            return
        if trainer.fitness == trainer.best_fitness:  # the engine's own rule for overwriting best.pt
            self.best_epoch = epoch
        row = {"epoch": float(epoch)} | rename_metrics(
            {**trainer.label_loss_items(trainer.tloss), **trainer.metrics, **trainer.lr}
        )
        logger.info("epoch %d/%d: %s", epoch, trainer.epochs, row)
        if self._callbacks:
            self._callbacks.on_epoch_end(epoch, row)


class YoloBackend:
    """Implements :class:`~autoinspect.training.base.Backend` with Ultralytics YOLO.

    The checkpoint kept is Ultralytics' ``best.pt``, chosen by its own fitness (mAP50-95 on val in 8.4) whatever
    ``TrainConfig.select_metric`` says: the engine decides inside its loop and offers no hook to decide for it. A
    ``val_scorer`` is therefore not called per epoch; it scores the exported model once, so that ``best_score`` is
    measured the way the Detector will see it and compares across backends. Without one, ``best_score`` is
    Ultralytics' value of ``select_metric`` at the kept epoch (NaN when it reports no such metric).

    ``config_dir`` holds Ultralytics' settings and fonts (default ``<out_dir>/ultralytics``); Ultralytics fixes it
    at its first import, so pass one folder (e.g. ``<home>/ultralytics``) when one process trains many times.
    """

    def __init__(self, config_dir: Path | None = None) -> None:
        self._config_dir = config_dir

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
        out_dir = out_dir.resolve()
        source = _model_source(config, init_weights)
        data_yaml = write_data_view(layout, out_dir / DATA_VIEW)
        if callbacks:
            callbacks.on_train_start(config, layout)
        relay = _EpochRelay(callbacks)
        with pil_untouched():
            prepare_ultralytics(self._config_dir or out_dir / CONFIG_DIR)
            run_dir, weights = _fit(source, _train_args(config, data_yaml, out_dir), relay)
        onnx_path = export_contract_onnx(weights, config.imgsz, len(layout.names), out_dir / ONNX_FILE)
        metadata = ModelMetadata(
            classes=layout.names,
            input_size=config.imgsz,
            backend="yolo",
            score_thresholds=dict.fromkeys(layout.names, config.score_threshold),
        )
        write_metadata(onnx_path, metadata)
        history = read_history(run_dir / "results.csv")
        result = TrainResult(
            onnx_path=onnx_path,
            weights_path=weights,
            metadata=metadata,
            best_epoch=relay.best_epoch,
            best_score=_best_score(config, history, relay.best_epoch, onnx_path, val_scorer),
            history=history,
            plots=sorted(run_dir.glob("*.png")),
        )
        if callbacks:
            callbacks.on_train_end(result)
        return result


def _fit(source: str, args: dict[str, Any], relay: _EpochRelay) -> tuple[Path, Path]:
    """Train with Ultralytics and return its run folder and ``best.pt``.

    ``nms=False`` makes the per-epoch validation that picks ``best.pt`` score the one-to-one branch of an NMS-free
    head, the branch that is exported; by default (``nms=None``) Ultralytics 8.4 scores its one-to-many branch
    behind NMS, a model that is never shipped.
    """
    from ultralytics.models import YOLO

    model = YOLO(source)
    model.add_callback("on_train_epoch_end", relay.on_train_epoch_end)
    model.add_callback("on_fit_epoch_end", relay.on_fit_epoch_end)
    model.train(**args, nms=False if has_nms_free_head(model) else None)
    trainer: Any = model.trainer  # typed Optional by Ultralytics; set by train()
    return Path(trainer.save_dir), Path(trainer.best)


def write_data_view(layout: DatasetLayout, view: Path) -> Path:
    """Link the train and val images and labels under ``view`` and write an absolute ``data.yaml`` for them.

    Raises:
        ConfigError: the train or val split has no image (Ultralytics needs val to pick ``best.pt``).
    """
    shutil.rmtree(view, ignore_errors=True)  # a view left by an earlier run in this folder may list other files
    items = layout.items()
    for split in TRAIN_SPLITS:
        in_split = [item for item in items if item.split is split]
        if not in_split:
            raise ConfigError(f"{layout.root} has no {split.value} images; the yolo backend needs train and val")
        for item in in_split:
            _link(item.image, view / "images" / split.value / item.image.name)
            if item.label.is_file():  # a missing label file means "None", as Ultralytics reads it too
                _link(item.label, view / "labels" / split.value / item.label.name)
    content = {
        "path": str(view),
        **{split.value: f"images/{split.value}" for split in TRAIN_SPLITS},
        "names": dict(enumerate(layout.names)),
    }
    data_yaml = view / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return data_yaml


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source.resolve())


def _model_source(config: TrainConfig, init_weights: Path | None) -> str:
    """What to build the model from: the warm-start checkpoint first, else ``config.yolo.model``.

    A ``.pt`` that is not a local file is refused here: Ultralytics would take a known name such as
    ``yolo26n.pt`` for an asset to download, and fail offline with a less helpful message.
    """
    source = str(init_weights) if init_weights is not None else config.yolo.model
    if source.endswith(".pt") and not Path(source).is_file():
        raise ConfigError(f"weights {source} not found: pass a local .pt, or an architecture .yaml to start afresh")
    if init_weights is not None:
        logger.info("warm start from %s (instead of %s)", init_weights, config.yolo.model)
    return source


def ultralytics_device(name: str) -> str:
    """Our device name (``auto``, ``cpu``, ``cuda``, ``cuda:1``) as Ultralytics spells it (``cpu``, ``0``, ``1``)."""
    device = resolve_device(name)
    return str(device.index or 0) if device.type == "cuda" else device.type


def _amp(device: str) -> bool | str:
    """Mixed precision without Ultralytics' AMP check, which downloads ``yolo26n.pt`` to compare against.

    ``bf16`` skips that check and needs no loss scaling; GPUs without native bfloat16 train in FP32.
    """
    import torch

    return "bf16" if device.isdigit() and torch.cuda.is_bf16_supported(including_emulation=False) else False


def _train_args(config: TrainConfig, data_yaml: Path, out_dir: Path) -> dict[str, Any]:
    """``YOLO.train`` arguments.

    ``optimizer=auto`` ignores ``lr0``, so the optimizer is named: AdamW with the momentum and bias warm-up that
    ``auto`` itself picks for small datasets (the default bias warm-up from 0.1 suits SGD, not Adam's step size).
    Ultralytics scales ``weight_decay`` by ``batch / 64``, its nominal batch.
    """
    device = ultralytics_device(config.device)
    return {
        "data": str(data_yaml),
        "epochs": config.epochs,
        "imgsz": config.imgsz,
        "batch": config.batch,
        "optimizer": "AdamW",
        "lr0": config.lr,
        "momentum": 0.9,
        "warmup_bias_lr": 0.0,
        "weight_decay": config.weight_decay,
        "seed": config.seed,
        "device": device,
        "amp": _amp(device),
        "workers": config.workers,
        "patience": config.patience,
        "project": str(out_dir),
        "name": RUN_NAME,
        "exist_ok": True,
        "plots": True,
    }


def read_history(results_csv: Path) -> list[dict[str, float]]:
    """One row per epoch from Ultralytics' ``results.csv``, renamed like the per-epoch callbacks."""
    with results_csv.open(encoding="utf-8", newline="") as handle:
        return [rename_metrics(row) for row in csv.DictReader(handle)]


def _best_score(
    config: TrainConfig,
    history: list[dict[str, float]],
    best_epoch: int,
    onnx_path: Path,
    val_scorer: ValScorer | None,
) -> float:
    if val_scorer is not None:
        return float(val_scorer(onnx_predictor(onnx_path))[config.select_metric])
    row = next((r for r in history if r.get("epoch") == best_epoch), {})
    return row.get(config.select_metric, math.nan)


def export_contract_onnx(weights: Path, imgsz: int, n_classes: int, target: Path) -> Path:
    """Export ``weights`` with Ultralytics' ONNX exporter, then make the file follow the model contract.

    YOLO26 heads are NMS-free: ``nms=False`` exports the one-to-one branch, ``[N, K, 6]`` best first with K =
    min(300, anchors), and a dynamic batch. Older heads (YOLOv8, YOLO11) need ``nms=True`` to get the same rows;
    Ultralytics unrolls its NMS loop over the batch it traced, so those are exported with a fixed batch of 1
    (a larger batch would fail loudly, never return zeros). The exporter names the output ``output0`` and leaves
    the input size dynamic; both are set to the contract here.
    """
    with pil_untouched():
        return _export(weights, imgsz, n_classes, target)


def _export(weights: Path, imgsz: int, n_classes: int, target: Path) -> Path:
    """:func:`export_contract_onnx`'s work, run inside :func:`pil_untouched`."""
    from ultralytics.models import YOLO

    model = YOLO(str(weights))
    nms_free = has_nms_free_head(model)
    exported = model.export(
        format="onnx",
        imgsz=imgsz,
        dynamic=nms_free,
        batch=1,
        nms=not nms_free,
        conf=NMS_SCORE_FLOOR,
        simplify=True,
        opset=ONNX_OPSET,
        device="cpu",
    )
    Path(exported).replace(target)
    _apply_contract(target, imgsz)
    check_contract(target, imgsz, n_classes)
    logger.info("exported %s (%s)", target, "NMS-free head, any batch" if nms_free else "NMS in the graph, batch 1")
    return target


def has_nms_free_head(model: Any) -> bool:
    """Whether a loaded ``YOLO`` model has a one-to-one (NMS-free) detection branch, as YOLO26 heads do."""
    return getattr(model.model.model[-1], "one2one_cv2", None) is not None


def _apply_contract(path: Path, imgsz: int) -> None:
    """Rename the graph's input and output to the contract's names, fix the input to ``[N, 3, S, S]`` and order
    each box's corners (:func:`order_corners`)."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ModelFileError(f"{path}: expected one input and one output, got {len(graph.input)}, {len(graph.output)}")
    _rename_value(graph, graph.input[0].name, ONNX_INPUT)
    _rename_value(graph, graph.output[0].name, ONNX_OUTPUT)
    for dim in graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_value = imgsz
    order_corners(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def order_corners(graph: Any) -> None:
    """Make the ``[N, K, 6]`` output's boxes read ``x1 <= x2, y1 <= y2`` whatever the head predicted.

    A YOLO26 head regresses each box's four side distances directly (no distribution over bins, which keeps
    them positive), so an undertrained model can predict a negative side and a box whose corners cross; the
    contract wants ordered corners. Ordering them in the graph (min and max of each pair) keeps such a model
    servable, leaves every well-formed box as it was, and costs four element-wise operations on 300 rows.
    """
    from onnx import helper, numpy_helper

    raw = f"{ONNX_OUTPUT}_unordered"
    _rename_value(graph, ONNX_OUTPUT, raw)
    graph.output[0].name = ONNX_OUTPUT
    pieces = ["corner_x1", "corner_y1", "corner_x2", "corner_y2", "score_class"]
    sizes = numpy_helper.from_array(np.array([1, 1, 1, 1, 2], dtype=np.int64), name="corner_split_sizes")
    graph.initializer.append(sizes)
    graph.node.extend(
        [
            helper.make_node("Split", [raw, sizes.name], pieces, axis=2),
            helper.make_node("Min", ["corner_x1", "corner_x2"], ["ordered_x1"]),
            helper.make_node("Min", ["corner_y1", "corner_y2"], ["ordered_y1"]),
            helper.make_node("Max", ["corner_x1", "corner_x2"], ["ordered_x2"]),
            helper.make_node("Max", ["corner_y1", "corner_y2"], ["ordered_y2"]),
            helper.make_node(
                "Concat", ["ordered_x1", "ordered_y1", "ordered_x2", "ordered_y2", "score_class"], [ONNX_OUTPUT], axis=2
            ),
        ]
    )  # the output keeps its declared type and shape, [N, K, 6] float


def _rename_value(graph: Any, old: str, new: str) -> None:
    """Rename a top-level value wherever the graph produces or consumes it."""
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def check_contract(path: Path, imgsz: int, n_classes: int) -> None:
    """Run the exported file once and check its rows read as ``x1, y1, x2, y2, score, class_id``, best first.

    Raises:
        ModelFileError: names, shape or values do not follow the contract.
    """
    predict = onnx_predictor(path)
    images = np.random.default_rng(0).random((2, 3, imgsz, imgsz), dtype=np.float32)
    out, _ = predict(images)
    if out.ndim != 3 or out.shape[0] != len(images) or out.shape[2] != 6:
        raise ModelFileError(f"{path}: output shape {out.shape}, expected [{len(images)}, K, 6]")
    x1, y1, x2, y2, scores, class_ids = np.moveaxis(out, 2, 0)
    problems = {
        "x2 < x1 or y2 < y1": bool((x2 < x1).any() or (y2 < y1).any()),
        "score outside [0, 1]": bool((scores < 0).any() or (scores > 1).any()),
        "rows not sorted by score": bool((np.diff(scores, axis=1) > 1e-6).any()),
        "class id not in 0..n-1": not np.isin(class_ids, np.arange(n_classes)).all(),
    }
    if failed := [name for name, bad in problems.items() if bad]:
        raise ModelFileError(f"{path}: output does not follow the contract: {', '.join(failed)}")


def onnx_predictor(path: Path) -> RawPredictor:
    """The exported file as a :data:`RawPredictor`, fed in chunks its input accepts (a fixed batch or 8)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch_dim = session.get_inputs()[0].shape[0]
    chunk = batch_dim if isinstance(batch_dim, int) else PREDICT_BATCH

    def predict(batch: npt.NDArray[np.float32]) -> RawOutputs:
        outputs = [
            np.asarray(session.run([ONNX_OUTPUT], {ONNX_INPUT: batch[start : start + chunk]})[0], dtype=np.float32)
            for start in range(0, len(batch), chunk)
        ]
        return (np.concatenate(outputs) if outputs else np.zeros((0, 0, 6), dtype=np.float32)), None

    return predict
