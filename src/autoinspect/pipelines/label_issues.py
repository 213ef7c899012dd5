"""Find suspected label errors in a dataset version and write what an annotator reviews.

K fold models, each trained without one fold of the train and val photos, give every one of those photos an
out-of-sample prediction through the Detector (the serving path); :mod:`autoinspect.evaluation.label_issues`
ranks the labels against them with cleanlab. The test split is never read: it stays the untouched judge of
whether fixing or dropping the suspects helps. Written into the output folder: ``label_issues.html`` (each suspect
drawn and cropped), ``label_issues.csv`` (all of them), ``label_issues.json`` (the run and the figures) and
``contact_sheet.png`` (the flagged photos, worst first), beside the out-of-fold predictions, which a rerun with
the same dataset, folds and fold recipe reuses instead of training again. Given ``drop``, a new dataset version
leaves out the worst flagged train photos (recorded in its manifest as excluded, with the reason), for the
ablation.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ValidationError

from autoinspect.config import Settings
from autoinspect.data.contact_sheet import contact_sheet
from autoinspect.data.folds import assign_folds, training_layout
from autoinspect.data.layout import DatasetLayout, LayoutItem
from autoinspect.data.versions import DatasetStore, ExcludedImage, VersionManifest
from autoinspect.domain import Annotation, Box, DatasetRef, Split
from autoinspect.drawing import draw_regions, jpeg_data_url
from autoinspect.evaluation.inputs import EvalImage
from autoinspect.evaluation.label_issues import IssueKind, LabelIssue, LabelIssueReport, find_label_issues
from autoinspect.html_templates import package_template
from autoinspect.images import decode_image
from autoinspect.inference import Detector
from autoinspect.pipelines.labelled_photos import load_items
from autoinspect.pipelines.training import make_backend
from autoinspect.progress import progress_bar
from autoinspect.training.base import LiteConfig, TrainConfig

logger = logging.getLogger(__name__)

REPORT_JSON = "label_issues.json"
PREDICTIONS_JSON = "out_of_fold_predictions.json"
REPORT_CSV = "label_issues.csv"
REPORT_HTML = "label_issues.html"
CONTACT_SHEET = "contact_sheet.png"
SHOWN_PER_KIND = 15
"""Issues drawn in the HTML report for each kind, most likely first (the CSV lists them all): the kinds' scores
come from different cleanlab methods, so one list by score would show one kind only."""
CHUNK = 16
"""Held-out photos decoded at a time: full-resolution photos are tens of megabytes each."""
CROP_MARGIN = 1.5
MIN_CROP = 0.35
SHOWN_SIDE = 480
KIND_MEANING = {
    IssueKind.MISSING_BOX: "the model is confident of damage that no label box covers",
    IssueKind.DAMAGE_LABELLED_CLEAN: "the photo is labelled None but the model is confident it shows damage",
    IssueKind.WRONG_CLASS: "a confident prediction of another class covers this label box",
    IssueKind.MISPLACED_BOX: "the model's best box of this class lies elsewhere",
    IssueKind.PHOTO_CLASSES: "the classes the photo is labelled with disagree with what the model sees",
}
_TEMPLATE = package_template("autoinspect.pipelines", "label_issues.html")


def fold_recipe() -> TrainConfig:
    """The fold models' default: the default recipe with its backbone frozen, for 3 epochs. A fold model only has
    to rank labels, and K of them train in one run: on the 2-core machine this keeps 3 folds of the full split
    near half an hour (BENCHMARKS.md)."""
    return TrainConfig(epochs=3, lite=LiteConfig(backbone_lr_scale=0.0))


class LabelIssuesRun(BaseModel):
    """What ``autoinspect data issues`` did and found."""

    dataset: DatasetRef
    folds: int
    config: TrainConfig
    fold_seconds: float
    """Training the fold models and predicting (in an earlier run, when its predictions were reused)."""
    rank_seconds: float
    """cleanlab's ranking of the labels against the out-of-fold predictions."""
    report: LabelIssueReport
    splits: dict[str, str]
    """Split of each photo checked (``train`` or ``val``)."""
    cleaned: DatasetRef | None = None
    """The version without the dropped photos, when ``drop`` was given."""
    dropped: list[str] = []


@dataclass(frozen=True)
class _Shown:
    issue: LabelIssue
    image: str


def fold_predictions(
    layout: DatasetLayout,
    items: Sequence[LayoutItem],
    config: TrainConfig,
    settings: Settings,
    folds: int,
    work_dir: Path,
) -> list[EvalImage]:
    """Each item's truth with the candidates and presence of the fold model that did not train on it."""
    assignment = assign_folds(items, len(layout.names), folds, seed=config.seed)
    backend = make_backend(config, settings)
    found: dict[str, EvalImage] = {}
    for fold in progress_bar(range(folds), f"{folds} fold models", unit="fold"):
        held = [item for item, f in zip(items, assignment, strict=True) if f == fold]
        kept = [item for item, f in zip(items, assignment, strict=True) if f != fold]
        logger.info("fold %d/%d: training on %d photos, predicting %d", fold + 1, folds, len(kept), len(held))
        fold_dir = work_dir / f"fold-{fold}"
        result = backend.train(training_layout(kept, layout.names, fold_dir / "data"), config, fold_dir / "model")
        detector = Detector(result.onnx_path)
        for start in range(0, len(held), CHUNK):
            photos = load_items(layout, held[start : start + CHUNK], desc=f"fold {fold + 1}: predict")
            for photo, prediction in zip(photos, detector.predict_batch([p.rgb for p in photos]), strict=True):
                found[photo.image_id] = photo.with_predictions(prediction.candidates, prediction.presence)
    return [found[item.key] for item in items]


def find_dataset_label_issues(
    settings: Settings, dataset: str, config: TrainConfig, *, folds: int, out_dir: Path, drop: int = 0
) -> LabelIssuesRun:
    """Rank suspected label errors of a dataset version's train and val photos and write the report into
    ``out_dir``; with ``drop`` > 0 also commit a version without the ``drop`` worst flagged train photos."""
    started = time.perf_counter()
    store = DatasetStore.for_settings(settings)
    manifest = store.resolve(dataset)
    layout = store.materialise(manifest, settings.checkouts_dir)
    items = [item for item in layout.items() if item.split in (Split.TRAIN, Split.VAL)]
    cache = _cached_predictions(out_dir, manifest.digest, folds, config)
    if cache is None:
        images = fold_predictions(layout, items, config, settings, folds, out_dir / "folds")
        seconds = round(time.perf_counter() - started, 1)
        cache = _PredictionCache(dataset=manifest.digest, folds=folds, config=config, images=images, seconds=seconds)
        (out_dir / PREDICTIONS_JSON).write_text(cache.model_dump_json(), encoding="utf-8")
    ranking = time.perf_counter()
    report = find_label_issues(cache.images, layout.names)
    run = LabelIssuesRun(
        dataset=manifest.ref,
        folds=folds,
        config=config,
        fold_seconds=cache.seconds,
        rank_seconds=round(time.perf_counter() - ranking, 1),
        report=report,
        splits={item.key: item.split_name for item in items},
    )
    if drop:
        run = _drop_worst(store, manifest, run, drop)
    write_report(run, layout, out_dir)
    return run


class _PredictionCache(BaseModel):
    """The out-of-fold predictions of a run, reused by a rerun with the same dataset, folds and fold recipe (to
    drop a different number of photos without training the fold models again)."""

    dataset: str
    folds: int
    config: TrainConfig
    images: list[EvalImage]
    seconds: float
    """How long training the fold models and predicting took."""


def _cached_predictions(out_dir: Path, digest: str, folds: int, config: TrainConfig) -> _PredictionCache | None:
    path = out_dir / PREDICTIONS_JSON
    if not path.is_file():
        return None
    try:
        cache = _PredictionCache.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        logger.warning(
            "%s is not a predictions file this version reads (%d errors): training again", path, exc.error_count()
        )
        return None
    if (cache.dataset, cache.folds, cache.config) != (digest, folds, config):
        return None
    logger.info("reusing the out-of-fold predictions in %s (same dataset, folds and fold recipe)", path)
    return cache


def _drop_worst(store: DatasetStore, manifest: VersionManifest, run: LabelIssuesRun, drop: int) -> LabelIssuesRun:
    """Commit ``manifest`` less the ``drop`` worst flagged train photos as ``<name>-cleaned`` (val and test kept:
    they calibrate and judge)."""
    worst = [key for key in run.report.flagged if run.splits[key] == Split.TRAIN.value][:drop]
    reasons = {key: _reason(run.report, key) for key in worst}
    kept = [item for item in manifest.items if f"{item.split.value}/{item.name}" not in reasons]
    cleaned = store.commit(
        f"{manifest.name}-cleaned",
        manifest.classes,
        kept,
        {},
        parent=manifest.digest,
        message=f"{manifest.ref.short} without the {len(worst)} train photos whose labels cleanlab ranked worst "
        f"(autoinspect data issues, {run.folds} folds)",
        excluded=[ExcludedImage(name=key, reason=reason) for key, reason in reasons.items()],
    )
    logger.info("dropped %d photos: version %s", len(worst), cleaned.ref.short)
    return run.model_copy(update={"cleaned": cleaned.ref, "dropped": worst})


def _reason(report: LabelIssueReport, key: str) -> str:
    kinds = sorted({issue.kind.value for issue in report.issues if issue.image_id == key})
    return f"suspected label error ({', '.join(kinds)}); label quality {report.quality[key]:.3f}"


def _window(issue: LabelIssue) -> Box:
    """The part of the photo shown for an issue: the suspect box and :data:`CROP_MARGIN` times its size around
    it, at least :data:`MIN_CROP` of the photo each way (a 10-pixel scratch needs its surroundings to be judged);
    the whole photo for a photo-level issue."""
    if issue.box is None:
        return Box(x1=0, y1=0, x2=1, y2=1)
    box = issue.box
    half_w = max(box.width * (0.5 + CROP_MARGIN), MIN_CROP / 2)
    half_h = max(box.height * (0.5 + CROP_MARGIN), MIN_CROP / 2)
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    return Box(x1=max(0.0, cx - half_w), y1=max(0.0, cy - half_h), x2=min(1.0, cx + half_w), y2=min(1.0, cy + half_h))


def _inside(region: Annotation, window: Box) -> Annotation | None:
    """``region`` in the window's coordinates, clipped to it; ``None`` when it lies outside."""
    box = region.box
    x1, y1 = max(box.x1, window.x1), max(box.y1, window.y1)
    x2, y2 = min(box.x2, window.x2), min(box.y2, window.y2)
    if x2 <= x1 or y2 <= y1:
        return None
    w, h = window.width, window.height
    inner = Box(x1=(x1 - window.x1) / w, y1=(y1 - window.y1) / h, x2=(x2 - window.x1) / w, y2=(y2 - window.y1) / h)
    return region.model_copy(update={"box": inner})


def _drawn(layout: DatasetLayout, item: LayoutItem, issue: LabelIssue) -> str:
    """The part of the photo around the suspect, scaled to :data:`SHOWN_SIDE`, with the label boxes and the
    suspect box (captioned with its kind) drawn at that scale, so small damage and its captions stay legible."""
    names = layout.names
    truth = item.annotations(names)
    suspect = [Annotation(label=f"? {issue.kind.value}", box=issue.box)] if issue.box else []
    window = _window(issue)
    photo = Image.fromarray(decode_image(item.image).rgb)
    crop = photo.crop(
        (window.x1 * photo.width, window.y1 * photo.height, window.x2 * photo.width, window.y2 * photo.height)
    )
    scale = SHOWN_SIDE / max(crop.size)
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    encoded = io.BytesIO()
    crop.save(encoded, format="PNG")
    regions = [inner for region in (*truth, *suspect) if (inner := _inside(region, window)) is not None]
    return jpeg_data_url(draw_regions(encoded.getvalue(), regions, names), SHOWN_SIDE, 85)


def _first_of(run: LabelIssuesRun, kind: IssueKind) -> list[LabelIssue]:
    return [issue for issue in run.report.issues if issue.kind is kind][:SHOWN_PER_KIND]


def write_report(run: LabelIssuesRun, layout: DatasetLayout, out_dir: Path) -> None:
    """The JSON, CSV, HTML and contact sheet of a run (see the module docstring)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_JSON).write_text(run.model_dump_json(indent=1), encoding="utf-8")
    (out_dir / REPORT_CSV).write_text(issues_csv(run), encoding="utf-8")
    by_key = {item.key: item for item in layout.items()}
    groups = [
        (kind.value, meaning, [_Shown(i, _drawn(layout, by_key[i.image_id], i)) for i in _first_of(run, kind)])
        for kind, meaning in KIND_MEANING.items()
    ]
    html = _TEMPLATE.render(run=run, counts=run.report.counts(), groups=groups, shown_per_kind=SHOWN_PER_KIND)
    (out_dir / REPORT_HTML).write_text(html, encoding="utf-8")
    flagged = [by_key[key] for key in run.report.flagged]
    if flagged:
        contact_sheet(layout, out_dir / CONTACT_SHEET, items=flagged)
    logger.info("label issues report: %s", out_dir / REPORT_HTML)


def issues_csv(run: LabelIssuesRun) -> str:
    """One row per issue, most likely first: the photo, its split, kind, class, box and cleanlab's score."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["rank", "image", "split", "kind", "class", "score", "x1", "y1", "x2", "y2", "model says"])
    for rank, issue in enumerate(run.report.issues, start=1):
        corners = (
            [f"{v:.4f}" for v in (issue.box.x1, issue.box.y1, issue.box.x2, issue.box.y2)] if issue.box else [""] * 4
        )
        writer.writerow(
            [
                rank,
                issue.image_id,
                run.splits[issue.image_id],
                issue.kind.value,
                issue.label,
                f"{issue.score:.4f}",
                *corners,
                issue.suggestion,
            ]
        )
    return buffer.getvalue()
