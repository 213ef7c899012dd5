"""Registering a trained run: gates against the champion, then the model version and its alias.

The first model that passes the absolute gates becomes champion; later ones that pass become challenger (the
deployment flow promotes them on online evidence); a model that fails is still registered, for the record,
with no alias, and the decision says why. The absolute floors come from ``settings.gates``; ``force`` gives a
model that fails them its alias anyway, recorded as forced (``autoinspect up`` forces its synthetic demo model,
which is marked as a demo wherever it is shown).
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
    """The alias the version received; ``None`` when it failed the gates (and was not forced)."""
    forced: bool = False
    """The alias was given although the gates failed."""


def gate_rules(settings: Settings, **drops: float | None) -> GateRules:
    """The project's gates: the absolute floors of ``settings.gates`` and, optionally, the allowed drops."""
    floors = settings.gates
    return GateRules(
        min_map50=floors.min_map50,
        min_damaged_caught=floors.min_damaged_caught,
        min_clean_none_rate=floors.min_clean_none_rate,
        **{name: value for name, value in drops.items() if value is not None},
    )


def _reference_features(settings: Settings, digest: str, folder: Path) -> Path | None:
    """Per-image features of the training photos: the reference monitoring compares live traffic against."""
    store = DatasetStore.for_settings(settings)
    try:
        layout = store.materialise(store.resolve(digest), settings.checkouts_dir)
    except DatasetVersionError:
        logger.warning("dataset version %s is not in this store: no reference features", digest[:12])
        return None
    path = folder / REFERENCE_FEATURES
    features_table(layout, workers=settings.worker_count, split=Split.TRAIN).to_csv(path, index=False)
    return path


def register_run(
    settings: Settings, run_id: str, rules: GateRules | None = None, *, force: bool = False
) -> Registration:
    """Register the evaluated model of a training run and give it the alias its gates earn (or, with ``force``,
    the alias it would have earned had it passed)."""
    with tempfile.TemporaryDirectory(prefix="autoinspect-run-") as tmp:
        folder = Path(tmp)
        files = download_run_files(settings, run_id, folder)
        evaluation = ModelEvaluation.model_validate_json(files.evaluation_json.read_text(encoding="utf-8"))
        candidate = evaluation.flat_metrics()
        champion = get_by_alias(settings, CHAMPION)
        decision = check_gates(candidate, champion.metrics if champion else None, rules or gate_rules(settings))
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
            demo=files.demo,
        )
    failures = [check.message for check in decision.failures]
    if not decision.passed:
        logger.warning("version %s failed the gates: %s", model.version, failures)
        if not force:
            return Registration(model=model, decision=decision, alias=None)
    passed = "passed the gates" if decision.passed else f"forced past the gates ({'; '.join(failures)})"
    if champion is None:
        promote(settings, model.version, f"first model: {passed}")
        alias = CHAMPION
    else:
        set_alias(settings, CHALLENGER, model.version, reason=f"{passed} against champion v{champion.version}")
        alias = CHALLENGER
    return Registration(model=model, decision=decision, alias=alias, forced=not decision.passed)
