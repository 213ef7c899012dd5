"""The canonical dataset folder: the YOLO layout that every importer writes and every later stage reads.

::

    root/data.yaml                 names (class id -> name) and split folders
    root/images/<split>/<name>.jpg train | val | test; images straight under images/ have no split yet
    root/labels/<split>/<name>.txt one row per region; an empty or missing file means "None"

The same layout is what Ultralytics trains on, so a materialised dataset version needs no conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autoinspect.data.labels import ParsedLabels, parse_yolo_labels
from autoinspect.domain import Annotation, Split
from autoinspect.errors import DataFormatError
from autoinspect.images import is_image_file

DATA_YAML = "data.yaml"


@dataclass(frozen=True)
class LayoutItem:
    """One image of a layout with where its label file is (or would be)."""

    split: Split | None
    image: Path
    label: Path

    def read_labels(self, n_classes: int) -> ParsedLabels:
        """Parse the label file; a missing one means "None" (no damage), as the layout defines."""
        if not self.label.is_file():
            return ParsedLabels()
        return parse_yolo_labels(self.label.read_text(encoding="utf-8"), n_classes)

    def annotations(self, names: Sequence[str]) -> list[Annotation]:
        """The label file's regions with their class names (``names`` in id order): the photo's truth."""
        return [Annotation(label=names[row.class_id], box=row.box) for row in self.read_labels(len(names)).rows]

    @property
    def split_name(self) -> str:
        """The split as reports show it; images straight under ``images/`` are "unsplit"."""
        return self.split.value if self.split else "unsplit"

    @property
    def key(self) -> str:
        """Split-qualified relative name, unique within a layout (e.g. ``train/car_01.jpg``)."""
        return f"{self.split.value}/{self.image.name}" if self.split else self.image.name


def read_names(data_yaml: Path) -> list[str]:
    """Class names in id order from a YOLO ``data.yaml`` (``names`` as a list or an id -> name mapping)."""
    try:
        content: Any = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataFormatError(f"cannot read {data_yaml}: {exc}") from None
    names = content.get("names") if isinstance(content, dict) else None
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return list(names)
    if isinstance(names, dict):
        try:
            ordered = sorted((int(k), str(v)) for k, v in names.items())
        except (TypeError, ValueError):
            raise DataFormatError(f"{data_yaml}: class ids in 'names' must be integers") from None
        if [k for k, _ in ordered] != list(range(len(ordered))):
            raise DataFormatError(f"{data_yaml}: class ids in 'names' must be 0..n-1 without gaps")
        return [v for _, v in ordered]
    raise DataFormatError(f"{data_yaml}: no 'names' list or mapping")


class DatasetLayout:
    """A dataset folder in the canonical layout."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, root: Path, names: Sequence[str]) -> DatasetLayout:
        """Start a new layout (the folder may exist but must not already hold a different ``data.yaml``)."""
        root.mkdir(parents=True, exist_ok=True)
        data_yaml = root / DATA_YAML
        if data_yaml.exists() and read_names(data_yaml) != list(names):
            raise DataFormatError(f"{data_yaml} already names classes {read_names(data_yaml)}, not {names}")
        content = {
            "path": ".",
            **{split.value: f"images/{split.value}" for split in Split},
            "names": dict(enumerate(names)),
        }
        data_yaml.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        return cls(root)

    @property
    def names(self) -> list[str]:
        data_yaml = self.root / DATA_YAML
        if not data_yaml.is_file():
            raise DataFormatError(f"{self.root} has no {DATA_YAML}: not a dataset folder")
        return read_names(data_yaml)

    def image_dir(self, split: Split | None) -> Path:
        return self.root / "images" / split.value if split else self.root / "images"

    def label_path(self, split: Split | None, image_name: str) -> Path:
        folder = self.root / "labels" / split.value if split else self.root / "labels"
        return folder / f"{Path(image_name).stem}.txt"

    def items(self) -> list[LayoutItem]:
        """All images, split folders first, sorted so that every run sees the same order."""
        found: list[LayoutItem] = []
        for split in (*Split, None):
            folder = self.image_dir(split)
            if not folder.is_dir():
                continue
            for image in sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)):
                found.append(LayoutItem(split, image, self.label_path(split, image.name)))
        return found

    def orphan_labels(self) -> list[Path]:
        """Label files with no image beside them: usually a renamed or deleted photo."""
        expected = {item.label for item in self.items()}
        labels = self.root / "labels"
        if not labels.is_dir():
            return []
        return sorted(p for p in labels.rglob("*.txt") if p not in expected)
