"""What every importer produces, and the one writer that turns it into the canonical layout.

Readers only *find* images and regions (with the source's class names); mapping classes, naming files and
writing labels happen once, here, so that the three formats cannot drift apart in how they do it. A reader
that cannot use an image reports an :class:`ImportProblem` instead of raising, so one bad task does not stop
an import of thousands, and nothing is lost without a line in the summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, TypeVar

from PIL import Image
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from tqdm import tqdm

from autoinspect.data.classmap import ClassMap
from autoinspect.data.labels import format_yolo_labels
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Annotation, Box, Split
from autoinspect.errors import DataFormatError, ImageDecodeError
from autoinspect.images import EXIF_ORIENTATION_TAG, is_image_file

logger = logging.getLogger(__name__)

PROVENANCE_FILE = "provenance.jsonl"
"""In a layout's root: one JSON line per image whose label has a known origin, ``{"image": "<split>/<name>", ...}``."""
UNSPLIT = "unsplit"
"""The key of images without a split in summaries: they go straight under ``images/``."""
_TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_T = TypeVar("_T")


@dataclass(frozen=True)
class ImportedImage:
    """One source image and its regions, before class mapping."""

    path: Path
    """The source file; its bytes are copied unchanged."""
    split: Split | None
    regions: list[Annotation]
    """Labelled regions with the *source* class names; no regions means a "None" image."""
    origin: dict[str, str] | None = None
    """Where the label came from when the export says (Label Studio: task, annotation, annotator, time), written
    to the layout's :data:`PROVENANCE_FILE` and kept by the dataset version."""


class ImportProblem(BaseModel):
    """Something an import could not use, with the file it concerns."""

    file: str
    message: str


class ImportSummary(BaseModel):
    """What an import wrote and what it left out."""

    images: dict[str, int] = Field(default_factory=dict)
    """Images written per split (``train``, ``val``, ``test`` or ``unsplit``)."""
    boxes: dict[str, int] = Field(default_factory=dict)
    """Boxes written per target class."""
    dropped: dict[str, int] = Field(default_factory=dict)
    """Boxes dropped by the class map, per source class."""
    problems: list[ImportProblem] = Field(default_factory=list)


@dataclass
class ReadResult:
    """The images a reader found and the problems it met on the way."""

    images: list[ImportedImage] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    def report(self, file: str | Path, message: str) -> None:
        self.problems.append(ImportProblem(file=str(file), message=message))


def clipped_box(x1: float, y1: float, x2: float, y2: float) -> Box:
    """Clip normalised corners to the image, as tools let a region overhang the border by a little.

    Raises:
        ValueError: nothing of the region lies inside the image.
    """
    box = Box(x1=max(0.0, x1), y1=max(0.0, y1), x2=min(1.0, x2), y2=min(1.0, y2))
    if box.width <= 0 or box.height <= 0:
        raise ValueError(f"region ({x1:.4g}, {y1:.4g}, {x2:.4g}, {y2:.4g}) has no area inside the image")
    return box


def image_size(path: Path) -> tuple[int, int]:
    """Upright ``(width, height)`` from the header only, without decoding the pixels.

    Labels refer to the upright view (see :mod:`autoinspect.images`), so EXIF orientations that rotate
    by 90 degrees swap the stored sides.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = int(image.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
    except OSError as exc:
        raise ImageDecodeError(f"{path}: {exc}") from None
    return (height, width) if orientation in _TRANSPOSED_ORIENTATIONS else (width, height)


class ImageFinder:
    """Finds the image an annotation names inside a folder: by relative path first, then by unique file name.

    Exports name images by a path that rarely matches the folder the user has (an upload id, a sub-folder
    that was flattened), so the file name is the fallback; an ambiguous name is an error, never a guess.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_name: dict[str, list[Path]] = defaultdict(list)
        for path in sorted(root.rglob("*")):
            if path.is_file() and is_image_file(path):
                self._by_name[path.name].append(path)

    def find(self, reference: PurePath, *other_names: str) -> Path:
        """The image for ``reference``, trying ``other_names`` after its own file name.

        Raises:
            LookupError: no file, or several files, with any of the names.
        """
        direct = self.root / reference
        if direct.is_file():
            return direct
        for name in (reference.name, *other_names):
            matches = self._by_name.get(name, [])
            if len(matches) > 1:
                raise LookupError(f"{len(matches)} images named {name} under {self.root}; cannot tell which")
            if matches:
                return matches[0]
        raise LookupError(f"image not found under {self.root}")


def parse_json(path: Path, adapter: TypeAdapter[_T], what: str) -> _T:
    """Read and validate a JSON export, turning every failure into one readable :class:`DataFormatError`."""
    try:
        return adapter.validate_json(path.read_bytes())
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc}") from None
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'top level'}: {error['msg']}" for error in exc.errors()[:3]
        )
        raise DataFormatError(f"{path} is not a {what} ({exc.error_count()} errors): {details}") from None


def write_json(out: Path, content: Any) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(content, indent=2), encoding="utf-8")
    return out


class _Namer:
    """Keeps file names unique per split by label stem, since ``car.jpg`` and ``car.png`` share ``car.txt``.

    Names already in the folder count as taken, so importing into an existing layout never overwrites.
    """

    def __init__(self, layout: DatasetLayout) -> None:
        self._layout = layout
        self._taken: dict[Split | None, set[str]] = {}

    def claim(self, image: ImportedImage) -> str:
        if image.split not in self._taken:
            folder = self._layout.image_dir(image.split)
            existing = folder.iterdir() if folder.is_dir() else iter(())
            self._taken[image.split] = {p.stem.casefold() for p in existing if p.is_file()}
        taken = self._taken[image.split]
        name, attempt = image.path.name, 0
        while Path(name).stem.casefold() in taken:
            digest = hashlib.sha256(f"{image.path}#{attempt}".encode()).hexdigest()[:8]
            name, attempt = f"{image.path.stem}_{digest}{image.path.suffix}", attempt + 1
        taken.add(Path(name).stem.casefold())
        return name


def write_layout(
    images: Sequence[ImportedImage],
    out_root: Path,
    classes: Sequence[str],
    class_map: ClassMap,
    *,
    problems: Sequence[ImportProblem] = (),
) -> ImportSummary:
    """Copy the images into the canonical layout at ``out_root`` and write their labels.

    Class names are resolved for the whole import before the first file is written, so an unknown class
    leaves no half-written dataset behind. ``problems`` found while reading are carried into the summary.
    """
    targets = class_map.resolve((r.label for image in images for r in image.regions), classes)
    layout = DatasetLayout.create(out_root, classes)
    class_ids = {name: index for index, name in enumerate(classes)}
    namer = _Namer(layout)
    written: Counter[str] = Counter()
    boxes: Counter[str] = Counter(dict.fromkeys(classes, 0))
    dropped: Counter[str] = Counter()
    origins = []
    for image in tqdm(images, desc="writing", unit="image", disable=None):
        name = namer.claim(image)
        destination = layout.image_dir(image.split) / name
        if image.origin is not None:
            origins.append({"image": destination.relative_to(layout.image_dir(None)).as_posix(), **image.origin})
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(image.path, destination)
        rows: list[tuple[int, Box]] = []
        for region in image.regions:
            target = targets[region.label]
            if target is None:
                dropped[region.label] += 1
                continue
            boxes[target] += 1
            rows.append((class_ids[target], region.box))
        label = layout.label_path(image.split, name)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(format_yolo_labels(rows), encoding="utf-8")
        written[image.split.value if image.split else UNSPLIT] += 1
    if origins:
        lines = "".join(json.dumps(origin, sort_keys=True) + "\n" for origin in origins)
        (out_root / PROVENANCE_FILE).write_text(lines, encoding="utf-8")
    summary = ImportSummary(images=written, boxes=boxes, dropped=dropped, problems=list(problems))
    logger.info("imported %d images into %s (%d problems)", sum(written.values()), out_root, len(summary.problems))
    return summary
