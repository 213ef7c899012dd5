"""Label Studio JSON exports (a list of tasks): import and export.

Coordinates are percentages of the image. A rotated rectangle turns about its top-left corner, clockwise, in
*pixels* (rotating in percent space would shear it on a non-square photo), and becomes the box around its four
corners. The first annotation that was not cancelled is used; predictions only for a task nobody annotated.
A task without either is unlabelled, not "None", and is reported instead of imported.

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
from autoinspect.domain import Annotation, Box, Split
from autoinspect.errors import ImageDecodeError

logger = logging.getLogger(__name__)

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-", re.IGNORECASE)
"""Label Studio prepends an 8-hex-digit id to uploaded file names: ``8f3a2b1c-car.jpg``."""


class _Result(BaseModel):
    type: str
    value: dict[str, Any]
    original_width: int | None = None
    original_height: int | None = None


class _Annotation(BaseModel):
    result: list[_Result] = []
    was_cancelled: bool = False


class _TaskData(BaseModel):
    image: str
    split: Split | None = None


class _Task(BaseModel):
    data: _TaskData
    annotations: list[_Annotation] = []
    predictions: list[_Annotation] = []


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


def _chosen_result(task: _Task) -> list[_Result]:
    """The regions to import, or ``ValueError`` for a task that was skipped or never labelled."""
    if task.annotations:
        for annotation in task.annotations:
            if not annotation.was_cancelled:
                return annotation.result
        raise ValueError("every annotation of this task was cancelled (skipped)")
    if task.predictions:
        return task.predictions[0].result
    raise ValueError("task has no annotations and no predictions: unlabelled, not imported")


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
    try:
        regions = [region for item in _chosen_result(task) for region in _regions(item, path)]
    except ValidationError as exc:
        raise ValueError(f"malformed region: {exc.errors()[0]['msg']}") from None
    return ImportedImage(path=path, split=task.data.split, regions=regions)


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


def _rectangle_result(number: int, region: Annotation, width: int, height: int) -> dict[str, Any]:
    box = region.box
    value = {
        "x": round(box.x1 * 100, 6),
        "y": round(box.y1 * 100, 6),
        "width": round(box.width * 100, 6),
        "height": round(box.height * 100, 6),
        "rotation": 0,
        "rectanglelabels": [region.label],
    }
    return {
        "id": f"r{number}",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": value,
    }


def export_labelstudio(layout_root: Path, out: Path) -> Path:
    """Write a canonical layout as Label Studio tasks; ``data.image`` is relative to ``layout_root``."""
    _, images = read_layout(layout_root)
    tasks = []
    for task_id, image in enumerate(tqdm(images, desc="exporting Label Studio", unit="image", disable=None), 1):
        width, height = image_size(image.path)
        result = [_rectangle_result(n, region, width, height) for n, region in enumerate(image.regions, 1)]
        data = {"image": image.path.relative_to(layout_root).as_posix(), "split": image.split}
        tasks.append({"id": task_id, "data": data, "annotations": [{"result": result, "was_cancelled": False}]})
    logger.info("exported %d tasks to %s", len(tasks), out)
    return write_json(out, tasks)
