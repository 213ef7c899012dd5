"""K folds of a layout's labelled photos, and the training layout that leaves one fold out.

Out-of-sample predictions for every photo (what label-error ranking needs) come from K models, each trained
without one fold and predicting it. Folds are stratified by what a photo shows (each class set, "None" included)
so every model sees clean and damaged photos alike, and assigned by a hash of the photo's key so the same photo
falls in the same fold on every run and on every machine.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from autoinspect.data.layout import DatasetLayout, LayoutItem
from autoinspect.data.versions import link_or_copy
from autoinspect.domain import Split
from autoinspect.errors import ConfigError


def _stable_hash(text: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def assign_folds(items: Sequence[LayoutItem], n_classes: int, folds: int, *, seed: int = 0) -> list[int]:
    """The fold (``0..folds-1``) of each item: per class set, items in hash order are dealt round-robin."""
    if folds < 2:
        raise ConfigError(f"at least 2 folds are needed for out-of-sample predictions, got {folds}")
    if len(items) < folds:
        raise ConfigError(f"{len(items)} photos cannot make {folds} folds")
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[tuple(sorted({row.class_id for row in item.read_labels(n_classes).rows}))].append(index)
    assignment = [0] * len(items)
    dealt = 0
    for key in sorted(groups):
        for index in sorted(groups[key], key=lambda i: _stable_hash(items[i].key, seed)):
            assignment[index] = dealt % folds
            dealt += 1
    return assignment


def training_layout(items: Sequence[LayoutItem], names: Sequence[str], root: Path) -> DatasetLayout:
    """A layout whose train split holds ``items`` (linked, not copied) and nothing else: a fold's training data.

    Files are renamed ``<split>__<name>`` so a train and a val photo with the same file name do not collide.
    """
    if root.exists():
        shutil.rmtree(root)
    layout = DatasetLayout.create(root, names)
    for item in items:
        name = f"{item.split_name}__{item.image.name}"
        link_or_copy(item.image, layout.image_dir(Split.TRAIN) / name)
        if item.label.is_file():
            link_or_copy(item.label, layout.label_path(Split.TRAIN, name))
    return layout
