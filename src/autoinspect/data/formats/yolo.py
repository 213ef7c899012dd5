"""YOLO folders: reading the three layouts tools export, with bad label files quarantined, and the canonical one.

Accepted layouts (class names always from ``data.yaml`` at the root)::

    images/<split>/ + labels/<split>/     canonical, Ultralytics
    <split>/images/ + <split>/labels/     Roboflow, where "valid" means val
    images/ + labels/                     flat: no split yet

An image whose label file has a bad row is *not* imported: keeping its good rows, or none, would teach the
model that the damage the bad row marked is "no damage". The pair is copied (never moved) into the
quarantine folder with a ``reasons.json`` so it can be fixed and imported again.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from autoinspect.data.formats.common import ImportedImage, ReadResult
from autoinspect.data.labels import LabelProblem, LabelRowIssue, parse_yolo_labels
from autoinspect.data.layout import DATA_YAML, DatasetLayout, read_names
from autoinspect.data.quarantine import REASONS_FILE
from autoinspect.domain import Annotation, Split
from autoinspect.errors import DataFormatError
from autoinspect.images import is_image_file

logger = logging.getLogger(__name__)

_SPLIT_FOLDERS = {"train": Split.TRAIN, "val": Split.VAL, "valid": Split.VAL, "test": Split.TEST}


@dataclass(frozen=True)
class _Folder:
    split: Split | None
    images: Path
    labels: Path


def _folders(source: Path) -> list[_Folder]:
    """The image/label folder pairs of a YOLO dataset, in any of the accepted layouts."""
    found = []
    for name, split in _SPLIT_FOLDERS.items():
        for images, labels in (
            (source / "images" / name, source / "labels" / name),
            (source / name / "images", source / name / "labels"),
        ):
            if images.is_dir():
                found.append(_Folder(split, images, labels))
    flat = source / "images"
    if flat.is_dir() and any(p.is_file() and is_image_file(p) for p in flat.iterdir()):
        found.append(_Folder(None, flat, source / "labels"))
    return found


def is_yolo_folder(path: Path) -> bool:
    return path.is_dir() and ((path / DATA_YAML).is_file() or bool(_folders(path)))


def _load_labels(label: Path, names: list[str]) -> tuple[list[Annotation], list[LabelRowIssue]]:
    """The regions of a label file and the problems of its bad rows; a missing file means "no damage"."""
    try:
        text = label.read_text(encoding="utf-8") if label.is_file() else ""
    except UnicodeDecodeError:
        return [], [LabelRowIssue(0, LabelProblem.SYNTAX, "not a UTF-8 text file")]
    parsed = parse_yolo_labels(text, len(names))
    return [Annotation(label=names[row.class_id], box=row.box) for row in parsed.rows], parsed.issues


@dataclass
class _Quarantine:
    """Copies of bad label files and their images, mirroring their place in the source, and the reasons.

    The image is copied too so that whoever fixes the label can import the pair again from here.
    """

    source: Path
    root: Path
    reasons: list[dict[str, object]] = field(default_factory=list)

    def add(self, image: Path, label: Path, issues: list[LabelRowIssue]) -> None:
        for original in (image, label):
            copy = self.root / original.relative_to(self.source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, copy)
        self.reasons.extend(
            {"file": str(label), "image": str(image), "line": i.line, "problem": i.problem.value, "message": i.message}
            for i in issues
        )

    def save(self) -> None:
        """Append to an existing ``reasons.json`` so that an earlier run's reasons stay."""
        if not self.reasons:
            return
        path = self.root / REASONS_FILE
        earlier = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
        path.write_text(json.dumps([*earlier, *self.reasons], indent=2), encoding="utf-8")
        logger.warning("quarantined %d label files in %s", len({r["file"] for r in self.reasons}), self.root)


def _read_folder(folder: _Folder, names: list[str], quarantine: _Quarantine, result: ReadResult) -> None:
    if not folder.labels.is_dir():
        result.report(folder.images, f"no labels folder {folder.labels}; unlabelled images are not imported")
        return
    images = sorted(p for p in folder.images.iterdir() if p.is_file() and is_image_file(p))
    for image in tqdm(images, desc=f"reading {folder.images.name}", unit="image", disable=None):
        label = folder.labels / f"{image.stem}.txt"
        regions, issues = _load_labels(label, names)
        if issues:
            quarantine.add(image, label, issues)
            result.report(label, f"{len(issues)} bad rows, first line {issues[0].line}: {issues[0].message}")
            continue
        result.images.append(ImportedImage(path=image, split=folder.split, regions=regions))
    stems = {p.stem for p in images}
    for orphan in sorted(p for p in folder.labels.glob("*.txt") if p.stem not in stems):
        result.report(orphan, "label file has no image")


def read_yolo(source: Path, quarantine_dir: Path) -> ReadResult:
    """Read a YOLO dataset folder; bad label files go to ``quarantine_dir`` and into the problems."""
    folders = _folders(source)
    if not folders:
        raise DataFormatError(f"{source}: no images/<split>/, <split>/images/ or images/ folder with images")
    names = read_names(source / DATA_YAML)
    quarantine = _Quarantine(source, quarantine_dir)
    result = ReadResult()
    for folder in folders:
        _read_folder(folder, names, quarantine, result)
    quarantine.save()
    return result


def read_layout(root: Path) -> tuple[list[str], list[ImportedImage]]:
    """Class names and images of a canonical layout, for export; a bad label file stops the export.

    Exports are made from validated dataset versions, so a bad row here means the layout was edited by hand.
    """
    layout = DatasetLayout(root)
    names = layout.names
    images = []
    for item in layout.items():
        regions, issues = _load_labels(item.label, names)
        if issues:
            raise DataFormatError(f"{item.label}, line {issues[0].line}: {issues[0].message}; validate the dataset")
        images.append(ImportedImage(path=item.image, split=item.split, regions=regions))
    return names, images
