"""The int8 variant of a trained model as a model version of its own: quantized, evaluated, gated, registered.

A float model's run is the input. Its int8 variant (:mod:`autoinspect.training.quantization`, calibrated on the
run's own val photos) gets an MLflow run of its own, tagged with the float run it came from, and goes through
the same evaluation step as any trained model: thresholds calibrated on val, figures measured on the same test
split, latency timed through the Detector. It is registered only when it loses no more than
``settings.quantization`` allows against its float model (the quantization gate); after that the usual gates
against the champion give it its alias, exactly as for a trained run. A refused variant keeps its run and its
evaluation, so what it lost stays visible.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Split
from autoinspect.inference import letterbox_batch, read_metadata
from autoinspect.pipelines.labelled_photos import load_split
from autoinspect.pipelines.model_evaluation import DEFAULT_REVIEW_SHARE, ModelEvaluation, calibrate_and_evaluate
from autoinspect.pipelines.registration import Registration, register_run
from autoinspect.pipelines.training import new_run_dir
from autoinspect.registry.gates import GateDecision, GateRules, check_gates
from autoinspect.registry.model_files import ONNX_FILE
from autoinspect.training.quantization import quantize_model
from autoinspect.training.tracking import (
    TAG_BACKEND,
    TAG_PRECISION,
    TAG_QUANTIZED_FROM,
    MlflowTracker,
    download_run_files,
)

logger = logging.getLogger(__name__)

GATE_FILE = "quantization_gate.json"


class QuantizationOutcome(BaseModel):
    """What ``autoinspect quantize`` did: the int8 run, its figures beside the float model's, and the decision."""

    run_id: str
    source_run_id: str
    onnx_path: Path
    evaluation: ModelEvaluation
    source_metrics: dict[str, float]
    """The float model's flat test metrics, as its run recorded them."""
    decision: GateDecision
    """The quantization gate: the int8 figures against the float model's."""
    registration: Registration | None
    """``None`` when the gate refused the variant or registration was not asked for."""


def quantization_rules(settings: Settings) -> GateRules:
    """The quantization gate as promotion-gate rules with the float model in the champion's place: no absolute
    floor, each class's AP50 and presence F1 and both verdict figures may drop by the configured amounts at most."""
    limits = settings.quantization
    return GateRules(
        max_ap50_drop=limits.max_ap50_drop,
        max_clean_none_rate_drop=limits.max_verdict_drop,
        max_damaged_caught_drop=limits.max_verdict_drop,
        max_presence_f1_drop=limits.max_presence_f1_drop,
    )


def quantize_run(
    settings: Settings, run_id: str, *, calibration_photos: int | None = None, register: bool = True
) -> QuantizationOutcome:
    """Quantize the model of a finished training run, evaluate it as that run was, gate it against it and
    (``register``) register it when it passes.

    Raises:
        ConfigError: the run has no evaluated model.
        DatasetVersionError: the run's dataset version is not in this home's store.
    """
    count = calibration_photos or settings.quantization.calibration_photos
    with tempfile.TemporaryDirectory(prefix="autoinspect-quantize-") as tmp:
        files = download_run_files(settings, run_id, Path(tmp))
        source = ModelEvaluation.model_validate_json(files.evaluation_json.read_text(encoding="utf-8"))
        store = DatasetStore.for_settings(settings)
        layout = store.materialise(store.resolve(files.dataset.digest), settings.checkouts_dir)
        val, test = load_split(layout, Split.VAL), load_split(layout, Split.TEST)
        size = read_metadata(files.onnx_path).input_size
        batch, _ = letterbox_batch([photo.rgb for photo in val[:count]], size)
        out_dir = new_run_dir(settings, "int8")
        target = out_dir / ONNX_FILE
        with MlflowTracker(settings, files.dataset, run_name=f"int8 of {run_id[:8]}", demo=files.demo) as tracker:
            metadata = quantize_model(files.onnx_path, [batch[i : i + 1] for i in range(len(batch))], target)
            tracker.annotate(
                tags={TAG_QUANTIZED_FROM: run_id, TAG_PRECISION: metadata.precision, TAG_BACKEND: metadata.backend},
                params={"quantization.calibration_photos": str(len(batch)), "quantization.source_run": run_id},
            )
            review_share = float(files.params.get("review_share", DEFAULT_REVIEW_SHARE))
            evaluation = calibrate_and_evaluate(target, val, test, out_dir / "evaluation", review_share=review_share)
            rules = quantization_rules(settings)
            decision = check_gates(evaluation.flat_metrics(), source.flat_metrics(), rules, against="float model")
            gate_file = out_dir / "evaluation" / GATE_FILE
            gate_file.write_text(decision.model_dump_json(indent=1), encoding="utf-8")
            evaluation.log_to_run(settings, tracker.run_id, target)
            tracker.log_file(gate_file)
            int8_run = tracker.run_id
    failures = [check.message for check in decision.failures]
    if failures:
        logger.warning("int8 variant of run %s refused: %s", run_id, "; ".join(failures))
    registration = register_run(settings, int8_run) if register and decision.passed else None
    return QuantizationOutcome(
        run_id=int8_run,
        source_run_id=run_id,
        onnx_path=target,
        evaluation=evaluation,
        source_metrics=source.flat_metrics(),
        decision=decision,
        registration=registration,
    )
