"""Photos as Label Studio tasks, with the model's answers as pre-annotations, for annotators to correct.

Three sources: a dataset version (every photo, or some by key), the suspects of a label-issues run (``autoinspect
data issues``), and the review queue (the served answers waiting for a person). The output folder holds:

- ``tasks.json``: Label Studio's JSON task format. ``data.image`` is a local-files URL into ``images/``,
  ``data.autoinspect`` names our photo, ``data.split`` its split; ``predictions`` holds the model's boxes
  (``model_version``, ``score`` and ``rectanglelabels`` results with their scores) and, for a labelled photo,
  its current labels as a second prediction (``model_version`` "current labels"), so the annotator starts from
  either;
- ``images/``: the photos, linked (copied where links cannot be made);
- ``label_config.xml``: the labelling interface for the classes (rectangles named ``label`` on ``image``).

Start Label Studio with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<output folder>``, create a project with ``label_config.xml`` and
import ``tasks.json``. Its JSON export imports back with ``autoinspect data import export.json --images <output
folder>``; the dataset version made from it records, per photo, the task, the annotator and the time. A task
nobody annotated is reported and left out, never imported with the model's answer as its label.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from autoinspect.config import Settings
from autoinspect.data.formats.common import image_size
from autoinspect.data.formats.labelstudio import LOCAL_FILES_URL, rectangle_result
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.versions import DatasetStore, link_or_copy
from autoinspect.domain import Annotation, Detection, Split
from autoinspect.errors import ConfigError
from autoinspect.images import decode_image
from autoinspect.inference import Detector
from autoinspect.pipelines.annotations import pending_reviews
from autoinspect.pipelines.label_issues import REPORT_JSON, LabelIssuesRun
from autoinspect.pipelines.prediction import load_detector
from autoinspect.progress import progress_bar
from autoinspect.store import ImageStore

logger = logging.getLogger(__name__)

TASKS_FILE = "tasks.json"
LABEL_CONFIG = "label_config.xml"
IMAGES = "images"
CURRENT_LABELS = "current labels"
CHUNK = 16


@dataclass(frozen=True)
class TaskPhoto:
    """One photo to send: our name for it, its file, and what is known about it."""

    key: str
    path: Path
    split: Split | None = None
    truth: list[Annotation] | None = None
    """Its current labels (``None`` when it has none yet, e.g. a served photo)."""
    answer: list[Detection] | None = None
    answer_model: str = ""
    """A model answer already known (the served one, for the review queue), instead of running a model."""


def label_config(classes: Sequence[str]) -> str:
    """Label Studio's labelling interface: a rectangle per region, one label per class."""
    labels = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in classes)
    return (
        "<View>\n"
        '  <Image name="image" value="$image" zoom="true"/>\n'
        '  <RectangleLabels name="label" toName="image">\n'
        f"{labels}\n"
        "  </RectangleLabels>\n"
        "</View>\n"
    )


def _prediction(model_version: str, regions: Sequence[Annotation], width: int, height: int) -> dict[str, object]:
    result = [rectangle_result(number, region, width, height) for number, region in enumerate(regions, 1)]
    scores = [region.confidence for region in regions if isinstance(region, Detection)]
    prediction: dict[str, object] = {"model_version": model_version, "result": result}
    if scores or model_version != CURRENT_LABELS:
        prediction["score"] = round(max(scores, default=0.0), 4)
    return prediction


def write_tasks(
    photos: Sequence[TaskPhoto], classes: Sequence[str], out_dir: Path, *, detector: Detector | None, model: str
) -> Path:
    """Write ``tasks.json``, ``images/`` and ``label_config.xml`` into ``out_dir``; ``detector`` (named ``model``)
    answers the photos that bring no answer of their own."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = []
    chunks = [photos[start : start + CHUNK] for start in range(0, len(photos), CHUNK)]
    for chunk in progress_bar(chunks, f"Label Studio tasks: {len(photos)} photos", unit="chunk"):
        # pixels only when a model answers; otherwise the header gives the (upright) size the boxes need
        answers = detector.predict_decoded([decode_image(p.path) for p in chunk]) if detector else [None] * len(chunk)
        for photo, answer in zip(chunk, answers, strict=True):
            target = out_dir / IMAGES / photo.key
            if not target.exists():
                link_or_copy(photo.path, target)
            width, height = (answer.width, answer.height) if answer is not None else image_size(photo.path)
            predictions = []
            if photo.answer is not None:
                predictions.append(_prediction(photo.answer_model, photo.answer, width, height))
            elif answer is not None:
                predictions.append(_prediction(model, answer.detections, width, height))
            if photo.truth is not None:
                predictions.append(_prediction(CURRENT_LABELS, photo.truth, width, height))
            data = {"image": LOCAL_FILES_URL + f"{IMAGES}/{photo.key}", "autoinspect": photo.key}
            if photo.split is not None:
                data["split"] = photo.split.value
            tasks.append({"data": data, "predictions": predictions})
    (out_dir / LABEL_CONFIG).write_text(label_config(classes), encoding="utf-8")
    path = out_dir / TASKS_FILE
    path.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    logger.info("wrote %d Label Studio tasks to %s", len(tasks), path)
    return path


def dataset_photos(layout: DatasetLayout, keys: Sequence[str] | None = None) -> list[TaskPhoto]:
    """The photos of a checkout (those named by ``keys``, in that order, when given) with their labels."""
    names = layout.names
    by_key = {item.key: item for item in layout.items()}
    chosen = [by_key[key] for key in keys] if keys is not None else list(by_key.values())
    return [
        TaskPhoto(
            key=item.key,
            path=item.image,
            split=item.split,
            truth=item.annotations(names),
        )
        for item in chosen
    ]


def review_photos(settings: Settings, limit: int) -> list[TaskPhoto]:
    """The review queue's photos that were kept, with the answer that was served (the oldest first)."""
    images = ImageStore.for_settings(settings)
    photos, missing = [], 0
    for entry in reversed(pending_reviews(settings, limit)):
        path = images.local_file(entry.image_sha256) if entry.image_sha256 else None
        if path is None:
            missing += 1
            continue
        photos.append(
            TaskPhoto(
                key=f"queue/{entry.request_id}{path.suffix}",
                path=path,
                answer=list(entry.detections),
                answer_model=f"served: {entry.model_version}",
            )
        )
    if missing:
        logger.warning("%d answers in the review queue have no kept photo (store.keep_images): not sent", missing)
    return photos


def export_tasks(
    settings: Settings,
    out_dir: Path,
    *,
    dataset: str | None = None,
    issues: Path | None = None,
    review: bool = False,
    model: str | None = None,
    limit: int = 500,
) -> Path:
    """Tasks for one source: ``dataset`` (a version), ``issues`` (a label-issues report folder: its flagged
    photos, worst first) or ``review`` (the queue, up to ``limit`` answers); ``model`` (a file, version or alias)
    pre-annotates dataset photos."""
    if sum((dataset is not None, issues is not None, review)) != 1:
        raise ConfigError("name exactly one source: a dataset version, a label-issues report or the review queue")
    detector = load_detector(settings, model) if model and not review else None
    store = DatasetStore.for_settings(settings)
    if review:
        return write_tasks(review_photos(settings, limit), settings.classes, out_dir, detector=None, model="")
    keys = None
    if issues is not None:
        run = LabelIssuesRun.model_validate_json((issues / REPORT_JSON).read_text(encoding="utf-8"))
        dataset, keys = run.dataset.digest, run.report.flagged
    manifest = store.resolve(str(dataset))
    layout = store.materialise(manifest, settings.checkouts_dir)
    return write_tasks(dataset_photos(layout, keys), layout.names, out_dir, detector=detector, model=model or "")
