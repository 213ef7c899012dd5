"""Compare two models photo by photo on a dataset split and write what a person reviews before a promotion.

Both models answer every photo through the Detector at the thresholds they serve with (the same path as the
API); :mod:`autoinspect.evaluation.comparison` ranks the photos where they differ, and the report shows each
one with both answers drawn side by side (``comparison.html``), beside the whole list (``comparison.csv``) and
the figures (``comparison.json``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from autoinspect.config import Settings
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import Detection, Split, Verdict
from autoinspect.drawing import draw_regions, jpeg_data_url
from autoinspect.evaluation.comparison import Answer, DifferenceKind, ModelComparison, PhotoDifference, compare_models
from autoinspect.html_templates import package_template
from autoinspect.inference import Detector
from autoinspect.pipelines.labelled_photos import LabelledPhoto, load_split
from autoinspect.pipelines.prediction import load_detector
from autoinspect.progress import progress_bar

SHOWN = 40
"""Differences drawn in the HTML report (the CSV lists them all)."""
IMAGE_SIDE = 640
CHUNK = 16
KIND_MEANING = {
    DifferenceKind.REGRESSED: "the baseline was right, the candidate is wrong",
    DifferenceKind.FIXED: "the baseline was wrong, the candidate is right",
    DifferenceKind.VERDICT_CHANGED: "the verdicts differ and neither is right",
    DifferenceKind.BOXES_CHANGED: "same verdict, boxes added or dropped",
}
_TEMPLATE = package_template("autoinspect.pipelines", "comparison.html")


@dataclass(frozen=True)
class _Shown:
    difference: PhotoDifference
    baseline_image: str
    candidate_image: str


def answers(detector: Detector, photos: Sequence[LabelledPhoto], name: str) -> list[Answer]:
    """Each photo's served answer (verdict and reported boxes)."""
    chunks = [photos[start : start + CHUNK] for start in range(0, len(photos), CHUNK)]
    found = []
    for chunk in progress_bar(chunks, f"{name}: {len(photos)} photos", unit="chunk"):
        found += [Answer(p.verdict, p.detections) for p in detector.predict_batch([photo.rgb for photo in chunk])]
    return found


def compare_on_dataset(
    settings: Settings, baseline: str, candidate: str, dataset: str, split: Split, out_dir: Path
) -> ModelComparison:
    """Compare ``candidate`` with ``baseline`` (each an ONNX file, registry version or alias) on one split of a
    dataset version, and write the report files into ``out_dir``."""
    store = DatasetStore.for_settings(settings)
    version = store.resolve(dataset)
    photos = load_split(store.materialise(version, settings.checkouts_dir), split)
    first = answers(load_detector(settings, baseline), photos, baseline)
    second = answers(load_detector(settings, candidate), photos, candidate)
    rows = [
        (photo.image_id, Verdict.from_labels(box.label for box in photo.truth), a, b)
        for photo, a, b in zip(photos, first, second, strict=True)
    ]
    comparison = compare_models(baseline, candidate, rows)
    write_report(comparison, photos, out_dir, f"{version.ref.short} ({split.value})")
    return comparison


def write_report(comparison: ModelComparison, photos: Sequence[LabelledPhoto], out_dir: Path, dataset: str) -> None:
    """``comparison.json``, ``comparison.csv`` and ``comparison.html`` (the first :data:`SHOWN` differences)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "comparison.json").write_text(comparison.model_dump_json(indent=1), encoding="utf-8")
    with (out_dir / "comparison.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image_id", "kind", "truth", "baseline", "candidate", "boxes_gained", "boxes_lost"])
        for d in comparison.differences:
            truth = " ".join(d.truth) if d.truth is not None else ""
            cells = [d.image_id, d.kind.value, truth, " ".join(d.baseline), " ".join(d.candidate)]
            writer.writerow([*cells, len(d.gained), len(d.lost)])
    by_id = {photo.image_id: photo for photo in photos}
    shown = [
        _Shown(d, _drawn(by_id[d.image_id], d.baseline_detections), _drawn(by_id[d.image_id], d.candidate_detections))
        for d in comparison.differences[:SHOWN]
    ]
    html = _TEMPLATE.render(comparison=comparison, shown=shown, kinds=KIND_MEANING.items(), dataset=dataset)
    (out_dir / "comparison.html").write_text(html, encoding="utf-8")


def _drawn(photo: LabelledPhoto, detections: Sequence[Detection]) -> str:
    buffer = io.BytesIO()
    Image.fromarray(photo.rgb).save(buffer, format="PNG")
    return jpeg_data_url(draw_regions(buffer.getvalue(), detections), IMAGE_SIDE, quality=85)
