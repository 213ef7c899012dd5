"""Immutable, content-addressed dataset versions.

::

    <home>/datasets/objects/ab/ab12...   every image and label file once, by sha256, read-only
    <home>/datasets/versions/<digest>.json  a manifest: classes, one row per image (split, hashes, counts)
    <home>/datasets/refs/<name>.json        the history of a dataset name, newest last

The digest is the sha256 of the canonical manifest content (classes and rows), so the same data always gets the
same digest and a training run that records it can be reproduced exactly. A new version never edits an old one:
adding annotations writes a new manifest whose ``parent`` is the previous digest. The gold test split stays as it
is unless the caller explicitly allows a change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from autoinspect.data.layout import DATA_YAML, DatasetLayout
from autoinspect.data.scan import ScannedImage
from autoinspect.domain import DatasetRef, Split
from autoinspect.errors import DatasetVersionError

logger = logging.getLogger(__name__)

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
EMPTY_LABEL_SHA = hashlib.sha256(b"").hexdigest()


class VersionItem(BaseModel):
    """One image of a version and its label file, by content."""

    model_config = ConfigDict(frozen=True)

    split: Split
    name: str
    """File name inside ``images/<split>/``."""
    image_sha256: str
    label_sha256: str
    """sha256 of the label file (of the empty file for an undamaged car)."""
    phash: str
    """Upright 64-bit perceptual hash, hex: lets later additions detect near-copies of these photos."""
    boxes: dict[str, int]
    """Boxes per class name."""


class ExcludedImage(BaseModel):
    name: str
    reason: str


class VersionManifest(BaseModel):
    name: str
    digest: str
    parent: str | None
    created_at: datetime
    message: str
    classes: list[str]
    items: list[VersionItem]
    excluded: list[ExcludedImage] = Field(default_factory=list)
    """Images offered but left out (failed validation, or would have changed the test split)."""
    provenance: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per image sha256, where the label this version added or changed came from, when the folder said (an
    annotation tool's ``provenance.jsonl``: task, annotator, time); not part of the digest."""

    @property
    def ref(self) -> DatasetRef:
        return DatasetRef(name=self.name, digest=self.digest)

    def split_counts(self) -> dict[str, int]:
        return dict(Counter(item.split.value for item in self.items))

    def box_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter[str]] = {}
        for item in self.items:
            counts.setdefault(item.split.value, Counter()).update(item.boxes)
        return {split: dict(c) for split, c in counts.items()}


def content_digest(classes: Sequence[str], items: Sequence[VersionItem]) -> str:
    """sha256 of the canonical JSON of what a version holds (not when or why it was made)."""
    rows = sorted((i.model_dump(mode="json") for i in items), key=lambda r: (r["split"], r["name"]))
    canonical = json.dumps({"classes": list(classes), "items": rows}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def item_from_scan(scan: ScannedImage, split: Split, names: Sequence[str], name: str | None = None) -> VersionItem:
    """The manifest row of a scanned image that passed validation."""
    if scan.decoded is None:
        raise DatasetVersionError(f"{scan.item.image} did not decode; it cannot enter a version")
    rows = scan.labels.rows if scan.labels else []
    return VersionItem(
        split=split,
        name=name or scan.item.image.name,
        image_sha256=scan.sha256,
        label_sha256=scan.label_sha256 or EMPTY_LABEL_SHA,
        phash=f"{int(scan.decoded.hashes[0]):016x}",
        boxes=dict(Counter(names[r.class_id] for r in rows)),
    )


class DatasetStore:
    """The dataset versions under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def _objects(self) -> Path:
        return self.root / "objects"

    @property
    def _versions(self) -> Path:
        return self.root / "versions"

    @property
    def _refs(self) -> Path:
        return self.root / "refs"

    def object_path(self, sha256: str) -> Path:
        return self._objects / sha256[:2] / sha256

    def put_file(self, source: Path | None, sha256: str) -> None:
        """Store a file's bytes under its hash (``None``: the empty label file); existing objects are kept."""
        target = self.object_path(sha256)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        if source is None:
            if sha256 != EMPTY_LABEL_SHA:
                raise DatasetVersionError(f"no file given for object {sha256}")
            partial.write_bytes(b"")
        else:
            shutil.copyfile(source, partial)
        partial.chmod(_READ_ONLY)
        partial.replace(target)

    def names(self) -> list[str]:
        return sorted(p.stem for p in self._refs.glob("*.json")) if self._refs.is_dir() else []

    def history(self, name: str) -> list[VersionManifest]:
        """Versions of a dataset name, oldest first."""
        ref_file = self._refs / f"{name}.json"
        if not ref_file.is_file():
            return []
        digests: list[str] = json.loads(ref_file.read_text(encoding="utf-8"))["versions"]
        return [self.load(d) for d in digests]

    def load(self, digest: str) -> VersionManifest:
        path = self._versions / f"{digest}.json"
        if not path.is_file():
            raise DatasetVersionError(f"no dataset version {digest}")
        return VersionManifest.model_validate_json(path.read_text(encoding="utf-8"))

    def resolve(self, ref: str) -> VersionManifest:
        """``name`` (latest), ``name@<digest prefix>`` or a digest prefix."""
        name, _, prefix = ref.partition("@")
        if name in self.names():
            versions = self.history(name)
            if not prefix:
                return versions[-1]
            matches = [v for v in versions if v.digest.startswith(prefix)]
        else:
            prefix = prefix or name
            files = sorted(self._versions.glob(f"{prefix}*.json")) if self._versions.is_dir() and prefix else []
            matches = [self.load(f.stem) for f in files]
        if len(matches) != 1:
            known = ", ".join(self.names()) or "none yet"
            found = "no" if not matches else "several"
            raise DatasetVersionError(f"{found} dataset versions match {ref!r} (datasets: {known})")
        return matches[0]

    def commit(
        self,
        name: str,
        classes: Sequence[str],
        items: Sequence[VersionItem],
        files: dict[str, tuple[Path, Path | None]],
        *,
        parent: str | None,
        message: str,
        excluded: Sequence[ExcludedImage] = (),
        provenance: dict[str, dict[str, str]] | None = None,
    ) -> VersionManifest:
        """Store new files (``image sha -> (image path, label path)``) and write the manifest.

        Committing content equal to an existing version returns that version instead of a duplicate.
        """
        if not items:
            raise DatasetVersionError("a dataset version needs at least one image")
        digest = content_digest(classes, items)
        history = [v.digest for v in self.history(name)]
        if (self._versions / f"{digest}.json").is_file():
            existing = self.load(digest)
            if digest not in history:
                self._write_ref(name, [*history, digest])
            return existing
        for item in items:
            image, label = files.get(item.image_sha256, (None, None))
            if not self.object_path(item.image_sha256).exists():
                self.put_file(image, item.image_sha256)
            if not self.object_path(item.label_sha256).exists():
                self.put_file(None if item.label_sha256 == EMPTY_LABEL_SHA else label, item.label_sha256)
        manifest = VersionManifest(
            name=name,
            digest=digest,
            parent=parent,
            created_at=datetime.now(UTC),
            message=message,
            classes=list(classes),
            items=sorted(items, key=lambda i: (i.split.value, i.name)),
            excluded=list(excluded),
            provenance=provenance or {},
        )
        self._versions.mkdir(parents=True, exist_ok=True)
        path = self._versions / f"{digest}.json"
        path.write_text(manifest.model_dump_json(indent=1), encoding="utf-8")
        path.chmod(_READ_ONLY)
        self._write_ref(name, [*history, digest])
        logger.info("dataset version %s: %d images %s", manifest.ref.short, len(items), manifest.split_counts())
        return manifest

    def _write_ref(self, name: str, digests: list[str]) -> None:
        self._refs.mkdir(parents=True, exist_ok=True)
        (self._refs / f"{name}.json").write_text(json.dumps({"versions": digests}, indent=1), encoding="utf-8")

    def checkout(self, ref: str, out: Path) -> DatasetLayout:
        """Materialise a version as a canonical layout (hard links to the read-only objects where possible)."""
        manifest = self.resolve(ref)
        if out.exists() and any(out.iterdir()):
            raise DatasetVersionError(f"{out} is not empty; check out into a new folder")
        layout = DatasetLayout.create(out, manifest.classes)
        for item in manifest.items:
            image_target = layout.image_dir(item.split) / item.name
            link_or_copy(self.object_path(item.image_sha256), image_target)
            link_or_copy(self.object_path(item.label_sha256), layout.label_path(item.split, item.name))
        logger.info("checked out %s into %s", manifest.ref.short, out)
        return layout

    def materialise(self, manifest: VersionManifest, checkouts: Path) -> DatasetLayout:
        """The checkout of a version under ``checkouts/<digest>``, made once and reused (training reads it)."""
        out = checkouts / manifest.digest[:16]
        if (out / DATA_YAML).is_file():
            return DatasetLayout(out)
        return self.checkout(manifest.digest, out)


def link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
