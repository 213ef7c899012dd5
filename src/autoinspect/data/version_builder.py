"""Turns a validated dataset folder into the next version of a dataset name.

Rules, in the order they are applied to each image of the folder:

1. images that failed validation are left out and listed in the manifest's ``excluded``;
2. an image already in the parent version (same bytes) keeps its split; a changed label file is a correction
   and replaces the old one, except in the test split, which changes only with ``allow_test_change``;
3. a new image that is a copy or near-copy of a parent image goes where that image is, so nothing leaks (a copy
   of a test photo is left out unless the test split may change);
4. any other new image keeps the split of its folder (``train``/``val``); one in ``test`` or without a split is
   assigned by its content hash, to train or val only, unless the test split may change.

The first version of a name takes the folder's splits as they are (it defines the gold test split). Where the
folder has a ``provenance.jsonl`` (an import that knew who labelled each photo), the manifest keeps the origin of
every label this version adds or changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import numpy as np

from autoinspect.config import Settings
from autoinspect.data.formats.common import PROVENANCE_FILE
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.scan import ScannedImage
from autoinspect.data.splits import assign_splits, split_for_digest
from autoinspect.data.validation import ValidationReport
from autoinspect.data.versions import (
    DatasetStore,
    ExcludedImage,
    VersionItem,
    VersionManifest,
    item_from_scan,
)
from autoinspect.domain import Split
from autoinspect.errors import DatasetVersionError

logger = logging.getLogger(__name__)


def _nearest_parent(scan: ScannedImage, parent: Sequence[VersionItem], max_bits: int) -> VersionItem | None:
    if scan.decoded is None or not parent:
        return None
    upright = np.array([int(i.phash, 16) for i in parent], dtype=np.uint64)
    distances = np.bitwise_count(upright[:, None] ^ scan.decoded.hashes[None, :]).min(axis=1)
    best = int(distances.argmin())
    return parent[best] if distances[best] <= max_bits else None


def _unique_name(name: str, sha256: str, taken: set[tuple[Split, str]], split: Split) -> str:
    if (split, name) not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}_{sha256[:8]}{dot}{suffix}"


def read_provenance(layout: DatasetLayout) -> dict[str, dict[str, str]]:
    """The folder's ``provenance.jsonl`` (written by an import that knew who labelled what) by image key; a line
    that is not a JSON object with an ``image`` is skipped with a warning, never fatal: the labels still count."""
    path = layout.root / PROVENANCE_FILE
    if not path.is_file():
        return {}
    found = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            image = str(row.pop("image"))
            found[image] = {str(k): str(v) for k, v in row.items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("%s line %d is not provenance; ignored", path, number)
    return found


def build_version(
    store: DatasetStore,
    layout: DatasetLayout,
    scans: Sequence[ScannedImage],
    report: ValidationReport,
    name: str,
    settings: Settings,
    *,
    message: str = "",
    allow_test_change: bool = False,
) -> VersionManifest:
    """Create the next version of ``name`` from a folder that :func:`validate_layout` has just scanned."""
    names = layout.names
    history = store.history(name)
    parent = history[-1] if history else None
    if parent and parent.classes != names:
        raise DatasetVersionError(f"{layout.root} has classes {names}; dataset {name!r} has {parent.classes}")
    rejected = report.rejected_images()
    excluded = [
        ExcludedImage(name=rel, reason="; ".join(i.message for i in report.errors if i.image == rel))
        for rel in sorted(rejected)
    ]
    accepted = [s for s in scans if str(s.item.image.relative_to(layout.root)) not in rejected]
    max_bits = settings.validation.near_duplicate_bits
    test_may_change = allow_test_change or parent is None
    items: dict[str, VersionItem] = {i.image_sha256: i for i in parent.items} if parent else {}
    parent_items = list(items.values())
    fresh_splits = assign_splits(accepted, settings.splits, max_bits, allow_test=test_may_change)
    files = {s.sha256: (s.item.image, s.item.label if s.item.label.is_file() else None) for s in accepted}
    taken = {(i.split, i.name) for i in parent_items}
    origins = read_provenance(layout)
    provenance: dict[str, dict[str, str]] = {}
    for index, scan in enumerate(accepted):
        rel = str(scan.item.image.relative_to(layout.root))
        known = items.get(scan.sha256)
        twin = known or _nearest_parent(scan, parent_items, max_bits)
        if twin is not None:
            split = twin.split
        elif index in fresh_splits:
            split = fresh_splits[index]
        elif scan.item.split is Split.TEST and not test_may_change:
            split = split_for_digest(scan.sha256, settings.splits, allow_test=False)
        else:
            split = scan.item.split or Split.TRAIN
        if split is Split.TEST and not test_may_change and (known is None or known.label_sha256 != scan.label_sha256):
            what = "would change the labels of" if known else "is a copy of"
            excluded.append(ExcludedImage(name=rel, reason=f"{what} a gold test photo; test split is fixed"))
            continue
        if known is not None and known.label_sha256 == scan.label_sha256:
            continue
        item_name = known.name if known else _unique_name(scan.item.image.name, scan.sha256, taken, split)
        items[scan.sha256] = item_from_scan(scan, split, names, item_name)
        taken.add((split, item_name))
        if scan.item.key in origins:
            provenance[scan.sha256] = origins[scan.item.key]
    return store.commit(
        name,
        names,
        list(items.values()),
        files,
        parent=parent.digest if parent else None,
        message=message,
        excluded=excluded,
        provenance=provenance,
    )
