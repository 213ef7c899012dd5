"""The training flow: dataset version -> backend -> val-selected checkpoint -> calibrated ONNX -> test figures,
all recorded in one MLflow run; and the Optuna search that runs it as nested trials.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import DatasetRef, ModelMetadata, Split
from autoinspect.pipelines.labelled_photos import load_split
from autoinspect.pipelines.model_evaluation import ModelEvaluation, calibrate_and_evaluate, make_val_scorer
from autoinspect.training.base import Backend, TrainConfig
from autoinspect.training.tracking import MlflowTracker

logger = logging.getLogger(__name__)


class TrainOutcome(BaseModel):
    run_id: str
    dataset: DatasetRef
    onnx_path: Path
    evaluation: ModelEvaluation
    best_epoch: int
    best_val_score: float


def make_backend(config: TrainConfig, settings: Settings) -> Backend:
    """The backend named in the config (imported here, so each pulls its framework only when chosen)."""
    if config.backend == "yolo":
        from autoinspect.training.yolo_backend import YoloBackend

        return YoloBackend(config_dir=settings.home / "ultralytics")
    from autoinspect.training.lite.trainer import LiteBackend

    return LiteBackend()


def new_run_dir(settings: Settings, kind: str) -> Path:
    """Where one run's files go: under the home's runs folder, named by its UTC start time and ``kind`` (the
    backend, or ``int8`` for a quantized variant), so folders sort by time and never collide."""
    return settings.runs_dir / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{kind}"


def train_model(
    settings: Settings,
    dataset: str,
    config: TrainConfig,
    *,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    init_weights: Path | None = None,
    demo: bool = False,
) -> TrainOutcome:
    """Train on a dataset version (``name``, ``name@digest``), evaluate on its test split, log everything;
    ``demo`` marks a model trained on the generated synthetic sample."""
    store = DatasetStore.for_settings(settings)
    manifest = store.resolve(dataset)
    layout = store.materialise(manifest, settings.checkouts_dir)
    out_dir = new_run_dir(settings, config.backend)
    val = load_split(layout, Split.VAL)  # decoded once: scores checkpoints, then calibrates thresholds
    scorer = make_val_scorer(val, layout.names, config.imgsz, ModelMetadata.model_fields["iou_threshold"].default)
    with MlflowTracker(settings, manifest.ref, run_name=run_name, parent_run_id=parent_run_id, demo=demo) as tracker:
        result = make_backend(config, settings).train(
            layout, config, out_dir, callbacks=tracker, val_scorer=scorer, init_weights=init_weights
        )
        test = load_split(layout, Split.TEST)
        evaluation = calibrate_and_evaluate(
            result.onnx_path, val, test, out_dir / "evaluation", review_share=config.review_share
        )
        evaluation.log_to_run(settings, tracker.run_id, result.onnx_path)
        run_id = tracker.run_id
    logger.info("run %s: model %s", run_id, result.onnx_path)
    return TrainOutcome(
        run_id=run_id,
        dataset=manifest.ref,
        onnx_path=result.onnx_path,
        evaluation=evaluation,
        best_epoch=result.best_epoch,
        best_val_score=result.best_score,
    )


def search(settings: Settings, dataset: str, base: TrainConfig, trials: int) -> TrainOutcome:
    """Optuna TPE search over learning rate, weight decay and augmentation strength; each trial is a nested
    MLflow run, the objective is the val selection metric of its kept checkpoint."""
    import optuna

    manifest = DatasetStore.for_settings(settings).resolve(dataset)
    outcomes: dict[int, TrainOutcome] = {}
    with MlflowTracker(settings, manifest.ref, run_name=f"search-{trials}") as parent:

        def objective(trial: optuna.Trial) -> float:
            config = base.model_copy(update=_suggest(trial, base), deep=True)
            outcome = train_model(
                settings, manifest.digest, config, run_name=f"trial-{trial.number}", parent_run_id=parent.run_id
            )
            outcomes[trial.number] = outcome
            return outcome.best_val_score

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=base.seed))
        study.optimize(objective, n_trials=trials)
    best = outcomes[study.best_trial.number]
    logger.info(
        "search: best trial %d (%s %.4f), run %s",
        study.best_trial.number,
        base.select_metric,
        study.best_value,
        best.run_id,
    )
    return best


def _suggest(trial: Any, base: TrainConfig) -> dict[str, Any]:
    update: dict[str, Any] = {
        "lr": trial.suggest_float("lr", base.lr / 5, base.lr * 5, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
    }
    if base.backend == "lite":
        lite = base.lite.model_copy(
            update={
                "scale_jitter": trial.suggest_float("scale_jitter", 0.0, 0.5),
                "colour_jitter": trial.suggest_float("colour_jitter", 0.0, 0.5),
            }
        )
        update["lite"] = lite
    return update
