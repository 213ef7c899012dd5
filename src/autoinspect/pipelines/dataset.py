"""Data flows: validate a folder (report + quarantine), version it, and the whole preparation of a dataset.

``prepare_dataset`` is the data half of the main job: with no data given it generates the synthetic sample, so
the loop runs end to end on a fresh machine.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.data.classmap import ClassMap
from autoinspect.data.formats import ImportFormat, ImportSummary, detect_format, import_dataset
from autoinspect.data.layout import DATA_YAML, DatasetLayout
from autoinspect.data.profiling import ProfileResult, profile_dataset
from autoinspect.data.quarantine import quarantine_rejected
from autoinspect.data.scan import ScannedImage
from autoinspect.data.synthetic import generate_dataset
from autoinspect.data.validation import ValidationReport, validate_layout
from autoinspect.data.validation_report import write_report
from autoinspect.data.version_builder import build_version
from autoinspect.data.versions import DatasetStore, VersionManifest
from autoinspect.domain import Split
from autoinspect.errors import DataFormatError
from autoinspect.shared_reports import new_report_folder, publish

logger = logging.getLogger(__name__)

SYNTHETIC_IMAGES = 60


class ValidationOutcome(BaseModel):
    """Where a validation run left its report and the quarantined copies."""

    passed: bool
    report_json: Path
    report_html: Path
    quarantine: Path | None


class PreparedDataset(BaseModel):
    version: VersionManifest
    validation: ValidationOutcome
    profile: ProfileResult | None


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def validate_dataset(
    layout: DatasetLayout, settings: Settings, report_dir: Path | None = None
) -> tuple[ValidationReport, list[ScannedImage], ValidationOutcome]:
    """Validate, write the JSON + HTML report and quarantine rejected images (copies; nothing is deleted)."""
    report, scans = validate_layout(layout, settings)
    out = report_dir or new_report_folder(settings.reports_dir / "validation")
    json_path, html_path = write_report(report, out)
    publish(settings, out)
    quarantine = quarantine_rejected(report, layout, settings.quarantine_dir)
    outcome = ValidationOutcome(
        passed=report.passed, report_json=json_path, report_html=html_path, quarantine=quarantine
    )
    return report, scans, outcome


def version_dataset(
    layout: DatasetLayout, name: str, settings: Settings, *, message: str = "", allow_test_change: bool = False
) -> tuple[VersionManifest, ValidationOutcome]:
    """Validate a folder and commit what passed as the next version of ``name``."""
    report, scans, outcome = validate_dataset(layout, settings)
    store = DatasetStore.for_settings(settings)
    manifest = build_version(
        store, layout, scans, report, name, settings, message=message, allow_test_change=allow_test_change
    )
    return manifest, outcome


def as_layout(
    source: Path,
    settings: Settings,
    *,
    fmt: ImportFormat | None = None,
    class_map: ClassMap | None = None,
    images_dir: Path | None = None,
    split: Split | None = None,
) -> tuple[DatasetLayout, ImportSummary | None]:
    """Use a canonical folder as it is (no summary), or import any other export into ``<home>/imports/``."""
    chosen = fmt or detect_format(source)
    if chosen == "yolo" and class_map is None and split is None and (source / DATA_YAML).is_file():
        layout = DatasetLayout(source)
        if layout.names == settings.classes and (source / "images").is_dir():
            return layout, None
    stamp = _stamp()
    out = settings.home / "imports" / f"{source.stem}-{stamp}"
    summary = import_dataset(
        source,
        chosen,
        out,
        settings.classes,
        class_map or ClassMap.from_specs(),
        images_dir=images_dir,
        split=split,
        quarantine_dir=settings.quarantine_dir / f"import-{stamp}",
    )
    logger.info("imported %s into %s: %s", source, out, summary.model_dump())
    if not sum(summary.images.values()):
        first = "; ".join(f"{p.file}: {p.message}" for p in summary.problems[:3])
        raise DataFormatError(f"no image of {source} could be imported ({len(summary.problems)} problems: {first})")
    return DatasetLayout(out), summary


def prepare_dataset(
    settings: Settings,
    source: Path | None = None,
    *,
    name: str | None = None,
    fmt: ImportFormat | None = None,
    class_map: ClassMap | None = None,
    images_dir: Path | None = None,
    profile: bool = True,
) -> PreparedDataset:
    """Import (or generate), validate, version and profile: the data half of ``autoinspect up``."""
    if source is None:
        source = settings.home / "samples" / "synthetic"
        if not (source / DATA_YAML).is_file():
            logger.info("no data given: generating %d synthetic photos in %s", SYNTHETIC_IMAGES, source)
            generate_dataset(source, SYNTHETIC_IMAGES, seed=0, classes=settings.classes)
    layout, _ = as_layout(source, settings, fmt=fmt, class_map=class_map, images_dir=images_dir)
    manifest, outcome = version_dataset(layout, name or source.name, settings, message=f"prepared from {source}")
    profile_result = None
    if profile:
        checkout = DatasetStore.for_settings(settings).materialise(manifest, settings.checkouts_dir)
        profile_folder = settings.reports_dir / "profile" / manifest.digest[:12]
        profile_result = profile_dataset(
            checkout, profile_folder, workers=settings.worker_count, title=f"{manifest.ref.short} profile"
        )
        publish(settings, profile_folder)
    return PreparedDataset(version=manifest, validation=outcome, profile=profile_result)
