"""Photos stored by content hash, so the log, the review queue and new annotations can point at the same bytes."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ImageStore:
    """A content-addressed folder: ``root/ab/abcdef...`` holds the bytes whose sha256 is ``abcdef...``.

    Content addressing makes ``put`` idempotent (the same photo sent twice is stored once) and lets replicas share
    one folder without coordination; the two-character fan-out keeps directories small.

    Example:
        >>> import tempfile
        >>> store = ImageStore(Path(tempfile.mkdtemp()))
        >>> store.get(store.put(b"jpeg bytes"))
        b'jpeg bytes'
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 (hex).

        The bytes go to a temporary file in the target folder and are renamed into place, so a reader never sees
        a partial image and two replicas storing the same photo at once both succeed.
        """
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.exists():
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        logger.debug("stored image %s (%d bytes)", sha, len(data))
        return sha

    def path(self, sha: str) -> Path:
        """Where the image with this hash lives (whether or not it is stored).

        Raises:
            ValueError: ``sha`` is not 64 lowercase hex digits (it may come from a request: no path tricks).
        """
        if not _SHA256.fullmatch(sha):
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return self.root / sha[:2] / sha

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
        return self.path(sha).read_bytes()
