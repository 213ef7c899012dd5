"""Registering a trained run: gates against the champion, then the model version and its alias.

The first model that passes the absolute gates becomes champion; later ones that pass become challenger (the
deployment flow promotes them on online evidence); a model that fails is still registered, for the record,
with no alias, and the decision says why.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.data.profiling import features_table
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Split
from autoinspect.errors import DatasetVersionError
from autoinspect.inference import read_metadata
from autoinspect.pipelines.model_evaluation import ModelEvaluation
from autoinspect.registry.aliases import CHALLENGER, CHAMPION, promote, set_alias
from autoinspect.registry.gates import GateDecision, GateRules, check_gates
from autoinspect.registry.mlflow_registry import RegisteredModel, get_by_alias, register_model
from autoinspect.training.tracking import download_run_files

logger = logging.getLogger(__name__)

REFERENCE_FEATURES = "reference_features.csv"


class Registration(BaseModel):
    model: RegisteredModel
    decision: GateDecision
    alias: str | None
    """The alias the version received; ``None`` when it failed the gates."""


def _reference_features(settings: Settings, digest: str, folder: Path) -> Path | None:
    """Per-image features of the training photos: the reference monitoring compares live traffic against."""
    store = DatasetStore(settings.datasets_dir)
    try:
        layout = store.materialise(store.resolve(digest), settings.checkouts_dir)
    except DatasetVersionError:
        logger.warning("dataset version %s is not in this store: no reference features", digest[:12])
        return None
    path = folder / REFERENCE_FEATURES
    features_table(layout, workers=settings.worker_count, split=Split.TRAIN).to_csv(path, index=False)
    return path


def register_run(settings: Settings, run_id: str, rules: GateRules | None = None) -> Registration:
    """Register the evaluated model of a training run and give it the alias its gates earn."""
    with tempfile.TemporaryDirectory(prefix="autoinspect-run-") as tmp:
        folder = Path(tmp)
        files = download_run_files(settings, run_id, folder)
        evaluation = ModelEvaluation.model_validate_json(files.evaluation_json.read_text(encoding="utf-8"))
        candidate = evaluation.flat_metrics()
        champion = get_by_alias(settings, CHAMPION)
        decision = check_gates(candidate, champion.metrics if champion else None, rules or GateRules())
        metadata = read_metadata(files.onnx_path)
        model = register_model(
            settings,
            run_id=run_id,
            onnx_path=files.onnx_path,
            metadata=metadata,
            evaluation_json=files.evaluation_json,
            flat_metrics=candidate,
            reference_features_csv=_reference_features(settings, files.dataset.digest, folder),
            dataset=files.dataset,
            thresholds=evaluation.thresholds,
        )
    alias: str | None = None
    if not decision.passed:
        logger.warning("version %s failed the gates: %s", model.version, [c.message for c in decision.failures])
    elif champion is None:
        promote(settings, model.version, "first model to pass the gates")
        alias = CHAMPION
    else:
        set_alias(settings, CHALLENGER, model.version, reason=f"passed gates against champion v{champion.version}")
        alias = CHALLENGER
    return Registration(model=model, decision=decision, alias=alias)
