"""Import annotation exports (YOLO, COCO, Label Studio) into the canonical layout, and export it back.

Example:
    >>> detect_format(Path("no-such-export.txt"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    autoinspect.errors.DataFormatError: cannot tell the format of no-such-export.txt: ...
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Literal

from autoinspect.data.classmap import ClassMap
from autoinspect.data.formats.coco import export_coco, read_coco
from autoinspect.data.formats.common import ImportedImage, ImportProblem, ImportSummary, write_layout
from autoinspect.data.formats.labelstudio import export_labelstudio, read_labelstudio
from autoinspect.data.formats.yolo import is_yolo_folder, read_yolo
from autoinspect.domain import Split
from autoinspect.errors import DataFormatError

ImportFormat = Literal["yolo", "coco", "labelstudio"]
ExportFormat = Literal["coco", "labelstudio"]

__all__ = [
    "ExportFormat",
    "ImportFormat",
    "ImportProblem",
    "ImportSummary",
    "ImportedImage",
    "detect_format",
    "export_dataset",
    "import_dataset",
    "write_layout",
]


def detect_format(source: Path) -> ImportFormat:
    """Tell the format of an export from its shape, so that the user rarely has to say it."""
    if is_yolo_folder(source):
        return "yolo"
    if source.is_file() and source.suffix.lower() == ".json":
        try:
            content = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFormatError(f"cannot read {source} as JSON: {exc}") from None
        if isinstance(content, dict) and {"images", "annotations"} <= content.keys():
            return "coco"
        if isinstance(content, list) and all(isinstance(task, dict) and "data" in task for task in content):
            return "labelstudio"
    raise DataFormatError(
        f"cannot tell the format of {source}: expected a YOLO folder (data.yaml or images/), a COCO .json "
        "(with images and annotations) or a Label Studio .json export (a list of tasks); name the format"
    )


def import_dataset(
    source: Path,
    fmt: ImportFormat,
    out_root: Path,
    classes: list[str],
    class_map: ClassMap,
    *,
    images_dir: Path | None = None,
    split: Split | None = None,
    quarantine_dir: Path,
) -> ImportSummary:
    """Import ``source`` into a canonical layout at ``out_root``.

    Args:
        images_dir: where COCO and Label Studio images are; defaults to the JSON file's folder.
        split: put every image in this split, over what the source says; by default the source's split
            (YOLO folders, the ``split`` key of AutoInspect's own exports) or none, for a later split step.
        quarantine_dir: where bad YOLO label files are copied, with ``reasons.json``.
    """
    if fmt == "yolo":
        read = read_yolo(source, quarantine_dir)
    elif fmt == "coco":
        read = read_coco(source, images_dir or source.parent)
    else:
        read = read_labelstudio(source, images_dir or source.parent)
    images = [replace(image, split=split) for image in read.images] if split else read.images
    return write_layout(images, out_root, classes, class_map, problems=read.problems)


def export_dataset(layout_root: Path, fmt: ExportFormat, out: Path) -> Path:
    """Write the canonical layout at ``layout_root`` as one COCO or Label Studio JSON file at ``out``.

    Image paths in the file are relative to ``layout_root``: import it with ``images_dir=layout_root``.
    """
    exporter = export_coco if fmt == "coco" else export_labelstudio
    return exporter(layout_root, out)
