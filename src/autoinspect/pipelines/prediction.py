"""Loading a model by what a user types (an ONNX path, a registry version or alias) and predicting files."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Split
from autoinspect.errors import ImageDecodeError
from autoinspect.evaluation import EvaluationResult
from autoinspect.inference import Detector, Prediction
from autoinspect.pipelines.labelled_photos import load_split
from autoinspect.pipelines.model_evaluation import evaluate_detector
from autoinspect.progress import progress_bar
from autoinspect.registry.mlflow_registry import download_model_files

logger = logging.getLogger(__name__)


def is_model_file(model: str) -> bool:
    """An ONNX path rather than a registry version or alias."""
    return model.endswith(".onnx") or Path(model).is_file()


def load_detector(settings: Settings, model: str) -> Detector:
    """``model`` is an ``.onnx`` file, a registry version number, or an alias such as ``champion``."""
    if is_model_file(model):
        return Detector(Path(model))
    ref: int | str = int(model) if model.isdigit() else model
    # A private folder per load: parallel jobs (batch shards) never read a file another one is rewriting, and the
    # session holds the model in memory once built, so the download can go.
    with tempfile.TemporaryDirectory(prefix="autoinspect-model-") as folder:
        files = download_model_files(settings, ref, Path(folder))
        return Detector(files.onnx, thresholds=files.read_thresholds())


class FilePrediction(BaseModel):
    """The answer for one file, or why there is none (a bad file never stops the others)."""

    file: str
    prediction: Prediction | None = None
    error: str | None = None


def predict_files(
    detector: Detector, files: Iterable[Path | str], read_remote: Callable[[str], bytes] | None = None
) -> list[FilePrediction]:
    """Each photo's answer, or why it has none; a bar shows photos done, rate and ETA. Local paths are read here;
    ``s3://`` URLs through ``read_remote`` (a photo gone from the bucket is an error line, like a corrupt one)."""
    names = [str(file) for file in files]
    results = []
    for name in progress_bar(names, "photos", unit="photo"):
        try:
            if name.startswith("s3://") and read_remote is not None:
                prediction = detector.predict_bytes(read_remote(name))
            else:
                prediction = detector.predict_file(Path(name))
            results.append(FilePrediction(file=name, prediction=prediction))
        except (ImageDecodeError, FileNotFoundError) as exc:
            logger.warning("%s: %s", name, exc)
            results.append(FilePrediction(file=name, error=str(exc)))
    return results


def evaluate_model(settings: Settings, model: str, dataset: str, split: Split) -> EvaluationResult:
    """A model's figures on one split of a dataset version, at the thresholds it serves with."""
    store = DatasetStore.for_settings(settings)
    layout = store.materialise(store.resolve(dataset), settings.checkouts_dir)
    detector = load_detector(settings, model)
    return evaluate_detector(detector, load_split(layout, split), detector.thresholds)
