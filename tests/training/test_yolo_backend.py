"""The Ultralytics backend: offline and out of the working directory, our metric names, the ONNX contract.

The smoke run trains a from-scratch YOLO26n for two epochs on twelve 96 px synthetic panels: the model learns
nothing (scores near zero are fine), the point is that every piece around the engine works.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from PIL import Image

from autoinspect.data.layout import DatasetLayout
from autoinspect.data.synthetic import generate_dataset
from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, Split
from autoinspect.errors import ConfigError, ImageDecodeError
from autoinspect.images import decode_image, letterbox
from autoinspect.onnx_metadata import ModelFileError, parse_metadata
from autoinspect.training.base import RawPredictor, TrainConfig, TrainResult, YoloConfig
from autoinspect.training.yolo_backend import (
    YoloBackend,
    check_contract,
    order_corners,
    read_history,
    rename_metrics,
    ultralytics_device,
    write_data_view,
)
from autoinspect.training.yolo_offline import pil_untouched

IMGSZ = 64
EPOCHS = 2
SCORER_RESULT = 0.42
PILLOW_LIMIT = Image.MAX_IMAGE_PIXELS
"""Pillow's decompression-bomb limit as this module found it, before any Ultralytics code ran."""


@dataclass
class Recorder:
    """TrainingCallbacks that remember what they were told."""

    starts: int = 0
    epochs: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    results: list[TrainResult] = field(default_factory=list)

    def on_train_start(self, config: TrainConfig, layout: DatasetLayout) -> None:
        self.starts += 1

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.epochs.append((epoch, dict(metrics)))

    def on_train_end(self, result: TrainResult) -> None:
        self.results.append(result)


@dataclass
class Run:
    layout: DatasetLayout
    result: TrainResult
    recorder: Recorder
    cwd: Path
    network_attempts: list[object]
    scorer_outputs: list[tuple[int, ...]]


@pytest.fixture(scope="module")
def offline_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[object]]]:
    """An empty working directory and a socket layer that records and refuses every connection."""
    cwd = tmp_path_factory.mktemp("cwd")
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access in a test")

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket.socket, "connect", refuse)
        yield cwd, attempts


def small_config(**overrides: object) -> TrainConfig:
    values: dict[str, object] = {
        "backend": "yolo",
        "epochs": EPOCHS,
        "imgsz": IMGSZ,
        "batch": 4,
        "workers": 0,
        "device": "cpu",
    }
    return TrainConfig.model_validate(values | overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, offline_cwd: tuple[Path, list[object]]) -> Run:
    root = tmp_path_factory.mktemp("yolo")
    layout = generate_dataset(root / "data", 12, size=(96, 96))
    recorder = Recorder()
    outputs: list[tuple[int, ...]] = []

    def scorer(predict: RawPredictor) -> dict[str, float]:
        rows, presence = predict(np.zeros((3, 3, IMGSZ, IMGSZ), dtype=np.float32))
        assert presence is None
        outputs.append(rows.shape)
        return {"map50": SCORER_RESULT}

    result = YoloBackend().train(layout, small_config(), root / "run", callbacks=recorder, val_scorer=scorer)
    return Run(layout, result, recorder, *offline_cwd, outputs)


def test_nothing_is_written_outside_out_dir_and_nothing_goes_online(run: Run) -> None:
    assert list(run.cwd.iterdir()) == []
    assert run.network_attempts == []
    assert list(run.layout.root.rglob("*.cache")) == []  # Ultralytics' label caches went to the view


def test_callbacks_get_one_epoch_end_per_epoch_with_our_names(run: Run) -> None:
    assert run.recorder.starts == 1
    assert run.recorder.results == [run.result]
    assert [epoch for epoch, _ in run.recorder.epochs] == list(range(1, EPOCHS + 1))
    for _, metrics in run.recorder.epochs:
        assert {"map50", "map50_95", "precision", "recall", "loss/box", "loss/cls", "lr"} <= metrics.keys()
        assert not any("(" in key for key in metrics)


def test_history_from_results_csv_matches_the_callbacks(run: Run) -> None:
    history = run.result.history
    assert len(history) == EPOCHS
    for row, (epoch, metrics) in zip(history, run.recorder.epochs, strict=True):
        assert row["epoch"] == epoch
        assert row == pytest.approx(metrics, rel=1e-4, abs=1e-9)


def test_result_points_at_the_checkpoint_and_plots(run: Run) -> None:
    result = run.result
    assert result.weights_path.name == "best.pt" and result.weights_path.is_file()
    assert 1 <= result.best_epoch <= EPOCHS
    assert {"results.png", "confusion_matrix.png", "BoxPR_curve.png"} <= {p.name for p in result.plots}
    assert result.best_score == SCORER_RESULT  # the scorer, run once on the exported model
    assert run.scorer_outputs == [(3, run.scorer_outputs[0][1], 6)]


def test_onnx_follows_the_contract(run: Run) -> None:
    session = ort.InferenceSession(str(run.result.onnx_path), providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    assert [model_input.name, *model_input.shape[1:]] == [ONNX_INPUT, 3, IMGSZ, IMGSZ]
    assert isinstance(model_input.shape[0], str)  # dynamic batch (YOLO26's NMS-free head)
    assert [o.name for o in session.get_outputs()] == [ONNX_OUTPUT]
    (out,) = session.run(None, {ONNX_INPUT: np.zeros((2, 3, IMGSZ, IMGSZ), dtype=np.float32)})
    assert out.shape[0] == 2 and out.shape[2] == 6
    metadata = parse_metadata(session.get_modelmeta().custom_metadata_map, "test")
    assert metadata.classes == run.layout.names == ["scratch", "dent"]
    assert (metadata.input_size, metadata.backend) == (IMGSZ, "yolo")
    assert metadata.score_thresholds == {"scratch": 0.25, "dent": 0.25}


def test_onnx_rows_are_what_ultralytics_predicts(run: Run) -> None:
    """The columns really are x1, y1, x2, y2, score, class in input pixels: Ultralytics' own predictor, given
    the same letterboxed photo and the same (one-to-one, ``nms=False``) branch, returns the same rows; it clips
    boxes to the image, the contract does not."""
    from ultralytics.models import YOLO

    photo = sorted(run.layout.image_dir(Split.VAL).iterdir())[0]
    canvas, _ = letterbox(decode_image(photo).rgb, IMGSZ)
    images = (canvas.transpose(2, 0, 1)[None] / 255.0).astype(np.float32)
    session = ort.InferenceSession(str(run.result.onnx_path), providers=["CPUExecutionProvider"])
    rows = session.run(None, {ONNX_INPUT: images})[0][0]
    bgr = np.ascontiguousarray(canvas[..., ::-1])
    with pil_untouched():
        model = YOLO(str(run.result.weights_path))
        predicted = model.predict(bgr, imgsz=IMGSZ, conf=0.0, nms=False, device="cpu", verbose=False)
    expected = predicted[0].boxes.data.numpy()[:20]
    assert len(expected) > 0
    clipped = np.concatenate([rows[:, :4].clip(0, IMGSZ), rows[:, 4:]], axis=1)
    for want in expected:
        close = np.abs(clipped - want) <= np.array([0.5, 0.5, 0.5, 0.5, 1e-4, 0.0])
        assert close.all(axis=1).any(), f"no ONNX row matches the prediction {want}"
    assert list(run.cwd.iterdir()) == []


def test_pillow_is_left_as_it_was_after_training(run: Run) -> None:
    """Ultralytics wraps Image.open and lifts the bomb limit process-wide; after training both are Pillow's own
    again, so a server in the same process still answers a non-image with the reason and refuses bombs."""
    assert Image.open.__module__ == "PIL.Image" and Image.MAX_IMAGE_PIXELS == PILLOW_LIMIT
    with pytest.raises(ImageDecodeError, match="not a recognised image"):
        decode_image(b"GIF89a" + b"x" * 50)


def test_rename_metrics_keeps_our_names_only() -> None:
    raw = {
        " epoch": 3,
        "metrics/mAP50-95(B)": 0.25,
        "val/dfl_loss": 1.5,
        "lr/pg0": 0.001,
        "lr/pg1": 0.002,
        "time": 12.0,
    }
    assert rename_metrics(raw) == {"epoch": 3.0, "map50_95": 0.25, "val_loss/dfl": 1.5, "lr": 0.001}


def test_read_history_parses_results_csv(tmp_path: Path) -> None:
    csv_file = tmp_path / "results.csv"
    csv_file.write_text(
        "epoch,time,train/box_loss,metrics/mAP50(B),lr/pg0\n1,2.5,3.25,0,0.001\n2,5,3,0.125,0.0009\n",
        encoding="utf-8",
    )
    assert read_history(csv_file) == [
        {"epoch": 1.0, "loss/box": 3.25, "map50": 0.0, "lr": 0.001},
        {"epoch": 2.0, "loss/box": 3.0, "map50": 0.125, "lr": 0.0009},
    ]


def test_data_view_links_train_and_val_without_touching_the_dataset(tmp_path: Path) -> None:
    layout = generate_dataset(tmp_path / "data", 10, size=(64, 64))
    before = sorted(p.relative_to(layout.root) for p in layout.root.rglob("*"))
    data_yaml = write_data_view(layout, tmp_path / "view")
    content = data_yaml.read_text(encoding="utf-8")
    assert f"path: {tmp_path / 'view'}" in content and "test:" not in content
    linked = sorted((tmp_path / "view" / "images").rglob("*.jpg"))
    originals = [item.image for item in layout.items() if item.split in (Split.TRAIN, Split.VAL)]
    assert sorted(p.resolve() for p in linked) == sorted(p.resolve() for p in originals)
    assert all(p.is_symlink() for p in linked)
    assert sorted(p.relative_to(layout.root) for p in layout.root.rglob("*")) == before


def test_a_dataset_without_val_is_refused(tmp_path: Path) -> None:
    layout = generate_dataset(tmp_path / "data", 4, size=(64, 64), splits={Split.TRAIN: 1.0})
    with pytest.raises(ConfigError, match="no val images"):
        write_data_view(layout, tmp_path / "view")


def test_weights_that_would_need_a_download_are_refused(tmp_path: Path) -> None:
    layout = generate_dataset(tmp_path / "data", 4, size=(64, 64))
    config = small_config(yolo=YoloConfig(model="yolo26n.pt"))
    with pytest.raises(ConfigError, match="not found"):
        YoloBackend().train(layout, config, tmp_path / "run")


@pytest.mark.parametrize(("ours", "theirs"), [("cpu", "cpu"), ("cuda", "0"), ("cuda:1", "1")])
def test_device_names(ours: str, theirs: str) -> None:
    assert ultralytics_device(ours) == theirs


def _constant_model(path: Path, rows: npt.NDArray[np.float32]) -> Path:
    """An ONNX file that answers ``rows`` for every image of the batch."""
    value = helper.make_tensor("rows", TensorProto.FLOAT, [1, *rows.shape], rows.flatten().tolist())
    nodes = [
        helper.make_node("Constant", [], ["rows"], value=value),
        helper.make_node("Shape", [ONNX_INPUT], ["shape"], start=0, end=1),
        helper.make_node(
            "Constant", [], ["tail"], value=helper.make_tensor("t", TensorProto.INT64, [2], [*rows.shape])
        ),
        helper.make_node("Concat", ["shape", "tail"], ["target"], axis=0),
        helper.make_node("Expand", ["rows", "target"], [ONNX_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["N", 3, IMGSZ, IMGSZ])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["N", *rows.shape])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_check_contract_accepts_padding_and_refuses_swapped_corners(tmp_path: Path) -> None:
    good = np.array([[10, 10, 20, 30, 0.9, 1], [5, 5, 9, 9, 0.3, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32)
    check_contract(_constant_model(tmp_path / "good.onnx", good), IMGSZ, 2)
    swapped = good[:, [2, 3, 0, 1, 4, 5]]  # x2, y2, x1, y1: what a layout change in the exporter would look like
    with pytest.raises(ModelFileError, match="x2 < x1"):
        check_contract(_constant_model(tmp_path / "bad.onnx", swapped), IMGSZ, 2)
    unsorted = good[[1, 0, 2]]
    with pytest.raises(ModelFileError, match="not sorted"):
        check_contract(_constant_model(tmp_path / "unsorted.onnx", unsorted), IMGSZ, 2)


def test_crossed_corners_of_an_undertrained_head_are_ordered_in_the_graph(tmp_path: Path) -> None:
    """A YOLO26 head regresses side distances directly, so an undertrained one can cross a box's corners (a full
    CPU-budget run failed its export on that); the exported graph orders them and the contract check passes."""
    crossed = np.array([[20, 30, 10, 10, 0.9, 1], [5, 5, 9, 9, 0.3, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32)
    path = _constant_model(tmp_path / "crossed.onnx", crossed)
    model = onnx.load(str(path))
    order_corners(model.graph)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    check_contract(path, IMGSZ, 2)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = session.run([ONNX_OUTPUT], {ONNX_INPUT: np.zeros((2, 3, IMGSZ, IMGSZ), np.float32)})[0]
    expected = crossed.copy()
    expected[0, :4] = [10, 10, 20, 30]  # the crossed box ordered, the others as they were
    np.testing.assert_array_equal(rows, np.stack([expected, expected]))


@pytest.mark.slow
def test_yolo11_head_exports_nms_in_graph_and_warm_starts(
    tmp_path: Path, offline_cwd: tuple[Path, list[object]]
) -> None:
    """An NMS-based head (YOLO11) gets ``nms=True`` and a fixed batch of 1; ``init_weights`` starts the next run
    from its weights (with a learning rate too small to move them, they come back unchanged)."""
    layout = generate_dataset(tmp_path / "data", 12, size=(96, 96))
    first = YoloBackend().train(layout, small_config(epochs=1, yolo=YoloConfig(model="yolo11n.yaml")), tmp_path / "a")
    session = ort.InferenceSession(str(first.onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, IMGSZ, IMGSZ]
    assert session.get_outputs()[0].shape == [1, 300, 6]
    assert math.isclose(first.best_score, first.history[first.best_epoch - 1]["map50"])  # no scorer: Ultralytics'

    from ultralytics.models import YOLO  # only now: the backend must be the first to import Ultralytics

    second = YoloBackend().train(
        layout, small_config(epochs=1, lr=1e-12), tmp_path / "b", init_weights=first.weights_path
    )
    before = YOLO(str(first.weights_path)).model.state_dict()
    after = YOLO(str(second.weights_path)).model.state_dict()
    weights = [name for name, tensor in before.items() if tensor.ndim == 4]
    assert weights and all(np.allclose(before[n].float(), after[n].float(), atol=1e-3) for n in weights)
    cwd, attempts = offline_cwd
    assert list(cwd.iterdir()) == [] and attempts == []
