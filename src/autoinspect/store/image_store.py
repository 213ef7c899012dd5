"""Photos stored by content hash, so the log, the review queue and new annotations can point at the same bytes."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from autoinspect.config import Settings
from autoinspect.object_storage import ObjectStore, object_store

logger = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ImageStore:
    """Content-addressed photos: key ``ab/abcdef...`` holds the bytes whose sha256 is ``abcdef...``, in a local
    folder or an S3 bucket (:mod:`~autoinspect.object_storage`).

    Content addressing makes ``put`` idempotent (the same photo sent twice is stored once) and lets replicas share
    one store without coordination; the two-character fan-out keeps directories small.

    Example:
        >>> import tempfile
        >>> store = ImageStore(Path(tempfile.mkdtemp()))
        >>> store.get(store.put(b"jpeg bytes"))
        b'jpeg bytes'
    """

    def __init__(self, objects: ObjectStore | Path, cache: Path | None = None) -> None:
        """``objects``: the store, or a local folder; ``cache``: where remote photos are downloaded for tools
        that need a file (:meth:`local_file`; a local store needs none)."""
        self.objects = object_store(objects)
        self.cache = cache

    @classmethod
    def for_settings(cls, settings: Settings) -> ImageStore:
        """The store ``settings.storage.images_url`` names (``<home>/images`` by default)."""
        objects = object_store(settings.images_location, endpoint_url=settings.storage.s3_endpoint_url)
        return cls(objects, settings.cache_dir / "images")

    @property
    def location(self) -> str:
        return self.objects.location

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 (hex); a photo stored before is not written again."""
        sha = hashlib.sha256(data).hexdigest()
        if self.objects.create(self.key(sha), data):
            logger.debug("stored image %s (%d bytes)", sha, len(data))
        return sha

    @staticmethod
    def key(sha: str) -> str:
        """The object key of the image with this hash (whether or not it is stored).

        Raises:
            ValueError: ``sha`` is not 64 lowercase hex digits (it may come from a request: no path tricks).
        """
        if not _SHA256.fullmatch(sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return f"{sha[:2]}/{sha}"

    def find(self, sha: str | None) -> bytes | None:
        """The stored bytes, or ``None`` (logged) when there is no hash or its photo is missing or unreadable: for
        the pages and reports that show a photo when they can and say so when they cannot."""
        if sha is None:
            return None
        try:
            return self.get(sha)
        except (OSError, ValueError) as error:
            logger.warning("stored photo %s unreadable: %s", sha, error)
            return None

    def get(self, sha: str) -> bytes:
        """The stored bytes.

        Raises:
            FileNotFoundError: no image with this hash is stored.
        """
        return self.objects.read(self.key(sha))

    def local_file(self, sha: str) -> Path | None:
        """A local file with the photo (the stored file itself, or a cached download), ``None`` if not stored.

        Raises:
            ValueError: the store is remote and was given no cache folder.
        """
        return self.objects.local_file(self.key(sha), self.cache)
