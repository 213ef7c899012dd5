"""Dataset validation: runs the checks of :mod:`autoinspect.data.checks` over one scan of a dataset folder.

Example:
    >>> report = validate_layout(DatasetLayout(path), Settings())   # doctest: +SKIP
    >>> report.passed, report.counts_by_check
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from autoinspect.config import Settings, ValidationSettings
from autoinspect.data.box_stats import ClassBoxStats, box_size_stats
from autoinspect.data.checks import CHECKS, Check, Severity
from autoinspect.data.duplicates import duplicate_components, split_protection
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.scan import ScannedImage, scan_layout

logger = logging.getLogger(__name__)

_SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}
_SAME_BOX_IOU = 0.95


class Issue(BaseModel):
    """One finding about one file."""

    file: str
    """Path relative to the dataset root of the file the finding is about (image or label)."""
    image: str | None
    """The image this finding puts at risk (relative path); ``None`` for an orphan label."""
    check: Check
    severity: Severity
    message: str
    line: int | None = None


class DuplicateGroup(BaseModel):
    files: list[str]
    splits: list[str]
    exact: bool
    """True when all members are byte-identical."""

    @property
    def leaks(self) -> bool:
        return len(set(self.splits)) > 1


class ValidationReport(BaseModel):
    """Everything validation found; serialised to ``report.json`` and rendered to ``report.html``."""

    root: str
    created_at: datetime
    settings: ValidationSettings
    classes: list[str]
    images: int
    images_per_split: dict[str, int]
    none_images_per_split: dict[str, int]
    boxes_per_class: dict[str, int]
    polygons_reduced: int
    """Label rows that were polygons and are used by their bounding box."""
    issues: list[Issue] = Field(default_factory=list)
    duplicate_groups: list[DuplicateGroup] = Field(default_factory=list)
    box_stats: list[ClassBoxStats] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]

    @property
    def passed(self) -> bool:
        return not self.errors

    @property
    def counts_by_check(self) -> dict[str, int]:
        return dict(Counter(i.check.value for i in self.issues))

    def rejected_images(self) -> set[str]:
        """Images with at least one error in them or their label: quarantined and left out of versions."""
        return {i.image for i in self.errors if i.image}


def _issue(file: str, check: Check, message: str, line: int | None = None, image: str | None = None) -> Issue:
    """A finding with the check's severity; ``image`` defaults to ``file``, and ``""`` means no image."""
    return Issue(
        file=file,
        image=(file if image is None else image) or None,
        check=check,
        severity=CHECKS[check].severity,
        message=message,
        line=line,
    )


def _image_issues(scan: ScannedImage, rel: str, settings: ValidationSettings) -> Iterator[Issue]:
    if scan.decoded is None:
        yield _issue(rel, Check.DECODE, scan.decode_error or "does not decode")
        return
    facts = scan.decoded
    if facts.format not in settings.allowed_formats:
        yield _issue(rel, Check.FORMAT, f"{facts.format} is not one of {', '.join(settings.allowed_formats)}")
    expected = _SUFFIX_FORMATS.get(scan.item.image.suffix.lower())
    if expected and expected != facts.format:
        yield _issue(rel, Check.EXTENSION, f"named {scan.item.image.suffix} but encoded as {facts.format}")
    if facts.exif_orientation != 1:
        yield _issue(rel, Check.EXIF_ORIENTATION, f"EXIF orientation {facts.exif_orientation}")
    if min(facts.width, facts.height) < settings.min_side_px:
        yield _issue(rel, Check.MIN_SIZE, f"{facts.width}x{facts.height}: shorter side below {settings.min_side_px} px")
    if facts.features.contrast < settings.min_pixel_std:
        yield _issue(
            rel,
            Check.NEAR_CONSTANT,
            f"grey-level std {facts.features.contrast:.2f} below {settings.min_pixel_std}",
        )


def _label_issues(scan: ScannedImage, image: str, rel: str, settings: ValidationSettings) -> Iterator[Issue]:
    if scan.labels is None:
        yield _issue(rel, Check.MISSING_LABEL, "no label file; read as no damage", image=image)
        return
    for problem in scan.labels.issues:
        yield _issue(rel, Check(problem.problem.value), problem.message, problem.line, image=image)
    if scan.decoded is not None:
        for row in scan.labels.rows:
            side = row.box.min_side_px(scan.decoded.width, scan.decoded.height)
            if side < settings.min_box_side_px:
                yield _issue(
                    rel,
                    Check.DEGENERATE_BOX,
                    f"box is {side:.2f} px thin (minimum {settings.min_box_side_px})",
                    image=image,
                )
    rows = scan.labels.rows
    for i, row in enumerate(rows):
        if any(o.class_id == row.class_id and o.box.iou(row.box) > _SAME_BOX_IOU for o in rows[:i]):
            yield _issue(rel, Check.DUPLICATE_BOX, f"class {row.class_id} box repeated", image=image)


def _duplicate_groups(
    scans: Sequence[ScannedImage], rels: Sequence[str], max_bits: int
) -> tuple[list[DuplicateGroup], list[Issue]]:
    """Exact copies and near-copies, grouped; a copy in another split than the kept one is a leak (error)."""
    groups: list[DuplicateGroup] = []
    issues: list[Issue] = []
    for members in duplicate_components(scans, max_bits):
        ordered = sorted(members, key=lambda i: (split_protection(scans[i].item.split), rels[i]))
        splits = [scans[i].item.split_name for i in ordered]
        exact = len({scans[i].sha256 for i in ordered}) == 1
        group = DuplicateGroup(files=[rels[i] for i in ordered], splits=splits, exact=exact)
        groups.append(group)
        keeper = ordered[0]
        for other in ordered[1:]:
            same_split = scans[other].item.split == scans[keeper].item.split
            kind = "byte-identical copy" if scans[other].sha256 == scans[keeper].sha256 else "near-copy"
            if not same_split:
                check = Check.SPLIT_LEAK
            else:
                check = Check.DUPLICATE if kind == "byte-identical copy" else Check.NEAR_DUPLICATE
            issues.append(_issue(rels[other], check, f"{kind} of {rels[keeper]}"))
    return groups, issues


def validate_scans(layout: DatasetLayout, scans: Sequence[ScannedImage], settings: Settings) -> ValidationReport:
    """Run every check over an existing scan (so callers that scanned already do not read files twice)."""
    vs = settings.validation
    names = layout.names
    rels = [str(s.item.image.relative_to(layout.root)) for s in scans]
    issues: list[Issue] = []
    for scan, rel in zip(scans, rels, strict=True):
        issues.extend(_image_issues(scan, rel, vs))
        issues.extend(_label_issues(scan, rel, str(scan.item.label.relative_to(layout.root)), vs))
        if scan.item.split is None:
            issues.append(_issue(rel, Check.NO_SPLIT, "image sits directly under images/"))
    for orphan in layout.orphan_labels():
        orphan_rel = str(orphan.relative_to(layout.root))
        issues.append(_issue(orphan_rel, Check.ORPHAN_LABEL, "no image of that name", image=""))
    groups, duplicate_issues = _duplicate_groups(scans, rels, vs.near_duplicate_bits)
    issues.extend(duplicate_issues)
    split_name = [s.item.split_name for s in scans]
    boxes: Counter[str] = Counter()
    none_images: Counter[str] = Counter()
    polygons = 0
    for scan, split in zip(scans, split_name, strict=True):
        rows = scan.labels.rows if scan.labels else []
        boxes.update(names[r.class_id] for r in rows)
        polygons += sum(r.polygon for r in rows)
        if not rows and not (scan.labels and scan.labels.issues):
            none_images[split] += 1
    return ValidationReport(
        root=str(layout.root),
        created_at=datetime.now(UTC),
        settings=vs,
        classes=names,
        images=len(scans),
        images_per_split=dict(Counter(split_name)),
        none_images_per_split=dict(none_images),
        boxes_per_class={name: boxes[name] for name in names},
        polygons_reduced=polygons,
        issues=issues,
        duplicate_groups=groups,
        box_stats=box_size_stats(scans, names),
    )


def validate_layout(layout: DatasetLayout, settings: Settings) -> tuple[ValidationReport, list[ScannedImage]]:
    """Scan and validate a dataset folder; the scan is returned too for versioning and split assignment."""
    started = time.perf_counter()
    scans = scan_layout(layout, settings.validation, settings.worker_count)
    report = validate_scans(layout, scans, settings)
    report.seconds = round(time.perf_counter() - started, 3)
    logger.info(
        "validated %d images in %.1fs: %d errors, %d warnings",
        report.images,
        report.seconds,
        len(report.errors),
        len(report.issues) - len(report.errors),
    )
    return report, scans
