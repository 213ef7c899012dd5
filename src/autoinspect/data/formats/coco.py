"""COCO detection JSON: import (one annotations file and an images folder) and export from a canonical layout.

Images listed without annotations are "None" images and are kept: they teach the model what a clean car
looks like. An image with an annotation that cannot be turned into a box is left out as a whole, for the same
reason an image with a bad YOLO row is (see :mod:`autoinspect.data.formats.yolo`).

Exports add a ``split`` key to each image (COCO allows extra keys) so that one file round-trips a dataset.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, TypeAdapter
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

Id = int | str


class _Image(BaseModel):
    id: Id
    file_name: str
    width: int | None = None
    height: int | None = None
    split: Split | None = None


class _Category(BaseModel):
    id: Id
    name: str


class _Annotation(BaseModel):
    id: Id | None = None
    image_id: Id
    category_id: Id
    bbox: list[float] | None = None
    segmentation: list[list[float]] | dict[str, Any] | None = None


class _Coco(BaseModel):
    images: list[_Image]
    annotations: list[_Annotation]
    categories: list[_Category]


_COCO = TypeAdapter(_Coco)


def _pixel_bounds(annotation: _Annotation) -> tuple[float, float, float, float]:
    """``x1, y1, x2, y2`` in pixels from the bbox, or from the polygon bounds when the bbox is missing."""
    if annotation.bbox and len(annotation.bbox) == 4:
        x, y, w, h = annotation.bbox
        return x, y, x + w, y + h
    if isinstance(annotation.segmentation, list) and any(annotation.segmentation):
        xs = [v for polygon in annotation.segmentation for v in polygon[0::2]]
        ys = [v for polygon in annotation.segmentation for v in polygon[1::2]]
        return min(xs), min(ys), max(xs), max(ys)
    raise ValueError("no bbox and no polygon segmentation (RLE masks are not supported)")


def _region(annotation: _Annotation, categories: dict[Id, str], size: tuple[int, int]) -> Annotation:
    if annotation.category_id not in categories:
        raise ValueError(f"category id {annotation.category_id} is not in categories")
    x1, y1, x2, y2 = _pixel_bounds(annotation)
    width, height = size
    box = clipped_box(x1 / width, y1 / height, x2 / width, y2 / height)
    return Annotation(label=categories[annotation.category_id], box=box)


def _read_image(
    image: _Image, annotations: list[_Annotation], categories: dict[Id, str], finder: ImageFinder
) -> ImportedImage:
    """One COCO image with its regions; raises ``LookupError``/``ValueError`` with the reason it is unusable."""
    path = finder.find(PurePosixPath(image.file_name))
    size = (image.width, image.height) if image.width and image.height else image_size(path)
    regions = []
    for annotation in annotations:
        try:
            regions.append(_region(annotation, categories, size))
        except ValueError as exc:
            raise ValueError(f"annotation id {annotation.id}: {exc}") from None
    return ImportedImage(path=path, split=image.split, regions=regions)


def read_coco(annotations_file: Path, images_dir: Path) -> ReadResult:
    """Read a COCO JSON file whose ``file_name`` entries are found under ``images_dir``."""
    coco = parse_json(annotations_file, _COCO, "COCO annotations file")
    categories = {category.id: category.name for category in coco.categories}
    by_image: dict[Id, list[_Annotation]] = defaultdict(list)
    for annotation in coco.annotations:
        by_image[annotation.image_id].append(annotation)
    finder = ImageFinder(images_dir)
    result = ReadResult()
    for image in tqdm(coco.images, desc="reading COCO", unit="image", disable=None):
        try:
            result.images.append(_read_image(image, by_image.pop(image.id, []), categories, finder))
        except (LookupError, ValueError, ImageDecodeError) as exc:
            result.report(image.file_name, str(exc))
    for image_id, orphans in by_image.items():
        result.report(annotations_file, f"{len(orphans)} annotations refer to image id {image_id}, not in images")
    return result


def _pixel_bbox(box: Box, width: int, height: int) -> list[float]:
    x1, y1, x2, y2 = box.to_pixels(width, height)
    return [round(x1, 4), round(y1, 4), round(x2 - x1, 4), round(y2 - y1, 4)]


def export_coco(layout_root: Path, out: Path) -> Path:
    """Write a canonical layout as one COCO file; ``file_name`` is relative to ``layout_root``."""
    names, images = read_layout(layout_root)
    category_ids = {name: index + 1 for index, name in enumerate(names)}
    coco_images: list[dict[str, Any]] = []
    coco_annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(tqdm(images, desc="exporting COCO", unit="image", disable=None), start=1):
        width, height = image_size(image.path)
        file_name = image.path.relative_to(layout_root).as_posix()
        coco_images.append(
            {"id": image_id, "file_name": file_name, "width": width, "height": height, "split": image.split}
        )
        for region in image.regions:
            bbox = _pixel_bbox(region.box, width, height)
            coco_annotations.append(
                {
                    "id": len(coco_annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_ids[region.label],
                    "bbox": bbox,
                    "area": round(bbox[2] * bbox[3], 4),
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    categories = [{"id": i, "name": name, "supercategory": "damage"} for name, i in category_ids.items()]
    content = {"images": coco_images, "annotations": coco_annotations, "categories": categories}
    logger.info("exported %d images, %d boxes to %s", len(coco_images), len(coco_annotations), out)
    return write_json(out, content)
