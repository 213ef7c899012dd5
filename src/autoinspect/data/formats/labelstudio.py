"""Label Studio JSON exports (a list of tasks): import and export.

Coordinates are percentages of the image. A rotated rectangle turns about its top-left corner, clockwise, in
*pixels* (rotating in percent space would shear it on a non-square photo), and becomes the box around its four
corners. The first annotation that was not cancelled is used; predictions only for a task nobody annotated,
except in tasks AutoInspect wrote itself (``data.autoinspect``), whose predictions are the model's suggestions.
A task without a usable label is unlabelled, not "None", and is reported instead of imported. Who annotated
each task and when is kept as the image's origin (see :data:`~.common.PROVENANCE_FILE`).

Exports give every image an annotation, empty for a "None" image, and a ``split`` in ``data``, so that an
export imports back to the same dataset.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import BaseModel, TypeAdapter, ValidationError
from tqdm import tqdm

from autoinspect.data.formats.common import (
    ImageFinder,
    ImportedImage,
    ReadResult,
    clipped_box,
    image_size,
    parse_json,
    write_json,
)
from autoinspect.data.formats.yolo import read_layout
from autoinspect.domain import Annotation, Box, Detection, Split
from autoinspect.errors import ImageDecodeError

logger = logging.getLogger(__name__)

LOCAL_FILES_URL = "/data/local-files/?d="
"""How Label Studio serves a file under its ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` (the path follows)."""
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-", re.IGNORECASE)
"""Label Studio prepends an 8-hex-digit id to uploaded file names: ``8f3a2b1c-car.jpg``."""


class _Result(BaseModel):
    type: str
    value: dict[str, Any]
    original_width: int | None = None
    original_height: int | None = None


class _Annotation(BaseModel):
    id: int | str | None = None
    result: list[_Result] = []
    was_cancelled: bool = False
    completed_by: int | str | dict[str, Any] | None = None
    """A user id in Label Studio's JSON export; some versions and the SDK give the user as an object."""
    created_at: str | None = None
    updated_at: str | None = None


class _TaskData(BaseModel):
    image: str
    split: Split | None = None
    autoinspect: str | None = None
    """Which photo of ours the task shows, in tasks that :func:`labelstudio_task` wrote."""


class _Task(BaseModel):
    id: int | str | None = None
    data: _TaskData
    annotations: list[_Annotation] = []
    predictions: list[_Annotation | int] = []
    """Objects in an export of tasks; a server's JSON export lists prediction ids only."""


class _Rectangle(BaseModel):
    x: float
    y: float
    width: float
    height: float
    rotation: float = 0.0
    rectanglelabels: list[str]


class _Polygon(BaseModel):
    points: list[tuple[float, float]]
    polygonlabels: list[str]


_TASKS = TypeAdapter(list[_Task])


def _chosen(task: _Task) -> tuple[_Annotation, bool]:
    """The annotation to import and whether a person made it (else it is the first prediction); ``ValueError``
    for a task that was skipped or never labelled."""
    if task.annotations:
        for annotation in task.annotations:
            if not annotation.was_cancelled:
                return annotation, True
        raise ValueError("every annotation of this task was cancelled (skipped)")
    if task.data.autoinspect:
        raise ValueError("not annotated in Label Studio yet: the model's pre-annotation is not a label")
    predictions = [p for p in task.predictions if isinstance(p, _Annotation)]
    if predictions:
        return predictions[0], False
    raise ValueError("task has no annotations and no predictions: unlabelled, not imported")


def _annotator(completed_by: int | str | dict[str, Any] | None) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("id") or "unknown")
    return "unknown" if completed_by is None else str(completed_by)


def _origin(task: _Task, annotation: _Annotation, by_person: bool) -> dict[str, str]:
    """Who labelled the photo, when, in which task: what a dataset version keeps about each imported label."""
    origin = {
        "tool": "labelstudio",
        "task": str(task.id) if task.id is not None else "",
        "annotation": str(annotation.id) if annotation.id is not None else "",
        "annotator": _annotator(annotation.completed_by) if by_person else "prediction only",
        "annotated_at": annotation.updated_at or annotation.created_at or "",
    }
    if task.data.autoinspect:
        origin["photo"] = task.data.autoinspect
    return origin


def _rectangle_box(rect: _Rectangle, size: tuple[int, int]) -> Box:
    """The box around the rectangle after turning it ``rotation`` degrees clockwise about its top-left corner."""
    width, height = size
    x, y = rect.x / 100 * width, rect.y / 100 * height
    w, h = rect.width / 100 * width, rect.height / 100 * height
    cos, sin = math.cos(math.radians(rect.rotation)), math.sin(math.radians(rect.rotation))
    corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    xs = [(x + dx * cos - dy * sin) / width for dx, dy in corners]
    ys = [(y + dx * sin + dy * cos) / height for dx, dy in corners]
    return clipped_box(min(xs), min(ys), max(xs), max(ys))


def _regions(item: _Result, image: Path) -> list[Annotation]:
    """The regions of one result item, one per label it carries.

    Items without a region (choices, text) carry no boxes; a region of another shape, or one without a label,
    raises, since skipping it would turn a damaged photo into a "None" one.
    """
    if item.type == "rectanglelabels":
        rect = _Rectangle.model_validate(item.value)
        if item.original_width and item.original_height:
            box = _rectangle_box(rect, (item.original_width, item.original_height))
        else:
            box = _rectangle_box(rect, image_size(image))
        labels = rect.rectanglelabels
    elif item.type == "polygonlabels":
        polygon = _Polygon.model_validate(item.value)
        if not polygon.points:
            raise ValueError("polygon has no points")
        xs, ys = zip(*polygon.points, strict=True)
        box = clipped_box(min(xs) / 100, min(ys) / 100, max(xs) / 100, max(ys) / 100)
        labels = polygon.polygonlabels
    elif item.type.endswith("labels"):
        raise ValueError(f"{item.type} regions are not supported; use rectangles or polygons")
    else:
        return []
    if not labels:
        raise ValueError(f"a {item.type} region has no label")
    return [Annotation(label=label, box=box) for label in labels]


def _image_reference(reference: str) -> PurePosixPath:
    """The file path in ``data.image``: an upload URL, a ``?d=`` local-files URL or a plain path."""
    url = urlparse(reference)
    local = parse_qs(url.query).get("d")
    return PurePosixPath(local[0] if local else unquote(url.path))


def _read_task(task: _Task, finder: ImageFinder) -> ImportedImage:
    reference = _image_reference(task.data.image)
    path = finder.find(reference, _UPLOAD_PREFIX.sub("", reference.name))
    annotation, by_person = _chosen(task)
    try:
        regions = [region for item in annotation.result for region in _regions(item, path)]
    except ValidationError as exc:
        raise ValueError(f"malformed region: {exc.errors()[0]['msg']}") from None
    return ImportedImage(path=path, split=task.data.split, regions=regions, origin=_origin(task, annotation, by_person))


def read_labelstudio(tasks_file: Path, images_dir: Path) -> ReadResult:
    """Read a Label Studio JSON export whose images are found under ``images_dir``."""
    tasks = parse_json(tasks_file, _TASKS, "Label Studio JSON export")
    finder = ImageFinder(images_dir)
    result = ReadResult()
    for task in tqdm(tasks, desc="reading Label Studio", unit="task", disable=None):
        try:
            result.images.append(_read_task(task, finder))
        except (LookupError, ValueError, ImageDecodeError) as exc:
            result.report(task.data.image, str(exc))
    return result


def rectangle_result(number: int, region: Annotation, width: int, height: int) -> dict[str, Any]:
    """One region as a Label Studio ``rectanglelabels`` result item (with its ``score`` for a detection)."""
    box = region.box
    value = {
        "x": round(box.x1 * 100, 6),
        "y": round(box.y1 * 100, 6),
        "width": round(box.width * 100, 6),
        "height": round(box.height * 100, 6),
        "rotation": 0,
        "rectanglelabels": [region.label],
    }
    result: dict[str, Any] = {
        "id": f"r{number}",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": value,
    }
    if isinstance(region, Detection):
        result["score"] = round(region.confidence, 4)
    return result


def export_labelstudio(layout_root: Path, out: Path) -> Path:
    """Write a canonical layout as Label Studio tasks; ``data.image`` is relative to ``layout_root``."""
    _, images = read_layout(layout_root)
    tasks = []
    for task_id, image in enumerate(tqdm(images, desc="exporting Label Studio", unit="image", disable=None), 1):
        width, height = image_size(image.path)
        result = [rectangle_result(n, region, width, height) for n, region in enumerate(image.regions, 1)]
        data = {"image": image.path.relative_to(layout_root).as_posix(), "split": image.split}
        tasks.append({"id": task_id, "data": data, "annotations": [{"result": result, "was_cancelled": False}]})
    logger.info("exported %d tasks to %s", len(tasks), out)
    return write_json(out, tasks)
