"""Immutable, content-addressed dataset versions, in a local folder or an S3 bucket (``storage.datasets_url``).

::

    <home>/datasets/objects/ab/ab12...   every image and label file once, by sha256, written once
    <home>/datasets/versions/<digest>.json  a manifest: classes, one row per image (split, hashes, counts)
    <home>/datasets/refs/<name>.json        the history of a dataset name, newest last (the one mutable object)

In object storage the keys are the same under the URL's prefix: a version committed on one host is trained from on
another, which downloads each object it lacks once into its cache (objects never change, so no copy goes stale)
and checks it out from there.

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
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from autoinspect.config import Settings
from autoinspect.data.layout import DATA_YAML, DatasetLayout
from autoinspect.data.scan import ScannedImage
from autoinspect.domain import DatasetRef, Split
from autoinspect.errors import DatasetVersionError
from autoinspect.object_storage import ObjectStore, object_store

logger = logging.getLogger(__name__)

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
    """The dataset versions in one folder or bucket."""

    def __init__(self, root: ObjectStore | Path, cache: Path | None = None) -> None:
        """``root``: the object store, or a local folder; ``cache``: where objects of a remote store are
        downloaded for checkouts (default: beside each checkout)."""
        self.objects = object_store(root)
        self.cache = cache

    @classmethod
    def for_settings(cls, settings: Settings) -> DatasetStore:
        """The store ``settings.storage.datasets_url`` names (``<home>/datasets`` by default)."""
        objects = object_store(settings.datasets_location, endpoint_url=settings.storage.s3_endpoint_url)
        return cls(objects, settings.cache_dir / "datasets")

    @staticmethod
    def object_key(sha256: str) -> str:
        return f"objects/{sha256[:2]}/{sha256}"

    def put_file(self, source: Path | None, sha256: str) -> None:
        """Store a file's bytes under its hash (``None``: the empty label file); existing objects are kept."""
        if source is None and sha256 != EMPTY_LABEL_SHA:
            raise DatasetVersionError(f"no file given for object {sha256}")
        self.objects.create(self.object_key(sha256), b"" if source is None else source.read_bytes())

    def names(self) -> list[str]:
        return [key.removeprefix("refs/").removesuffix(".json") for key in self.objects.keys("refs/")]

    def history(self, name: str) -> list[VersionManifest]:
        """Versions of a dataset name, oldest first."""
        return [self.load(d) for d in self._digests(name)]

    def _digests(self, name: str) -> list[str]:
        try:
            content = self.objects.read(f"refs/{name}.json")
        except FileNotFoundError:
            return []
        return _ref_digests(content)

    def load(self, digest: str) -> VersionManifest:
        try:
            content = self.objects.read(f"versions/{digest}.json")
        except FileNotFoundError:
            raise DatasetVersionError(f"no dataset version {digest}") from None
        return VersionManifest.model_validate_json(content)

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
            keys = self.objects.keys(f"versions/{prefix}") if prefix and "/" not in prefix else []
            matches = [self.load(key.removeprefix("versions/").removesuffix(".json")) for key in keys]
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
        if self.objects.exists(f"versions/{digest}.json"):
            self._append_ref(name, digest)
            return self.load(digest)
        for item in items:
            image, label = files.get(item.image_sha256, (None, None))
            if not self.objects.exists(self.object_key(item.image_sha256)):
                self.put_file(image, item.image_sha256)
            if not self.objects.exists(self.object_key(item.label_sha256)):
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
        self.objects.create(f"versions/{digest}.json", manifest.model_dump_json(indent=1).encode("utf-8"))
        self._append_ref(name, digest)
        logger.info("dataset version %s: %d images %s", manifest.ref.short, len(items), manifest.split_counts())
        return manifest

    def _append_ref(self, name: str, digest: str) -> None:
        """Add ``digest`` to the name's history unless it is there; safe against another host appending at once."""

        def append(content: bytes | None) -> bytes:
            digests = _ref_digests(content) if content is not None else []
            return json.dumps({"versions": digests if digest in digests else [*digests, digest]}, indent=1).encode()

        self.objects.update(f"refs/{name}.json", append)

    def checkout(self, ref: str, out: Path) -> DatasetLayout:
        """Materialise a version as a canonical layout (hard links to the read-only objects where possible)."""
        manifest = self.resolve(ref)
        if out.exists() and any(out.iterdir()):
            raise DatasetVersionError(f"{out} is not empty; check out into a new folder")
        layout = DatasetLayout.create(out, manifest.classes)
        for item in manifest.items:
            link_or_copy(self._local_object(item.image_sha256, out), layout.image_dir(item.split) / item.name)
            link_or_copy(self._local_object(item.label_sha256, out), layout.label_path(item.split, item.name))
        logger.info("checked out %s into %s", manifest.ref.short, out)
        return layout

    def _local_object(self, sha256: str, out: Path) -> Path:
        """A local file of the object (in a remote store's cache, downloaded once)."""
        local = self.objects.local_file(self.object_key(sha256), self.cache or out.parent / ".objects-cache")
        if local is None:
            raise DatasetVersionError(f"object {sha256} is missing from {self.objects.location}")
        return local

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


def _ref_digests(content: bytes) -> list[str]:
    digests: list[str] = json.loads(content)["versions"]
    return digests
