"""Immutable objects by key, in a local folder or an S3 bucket: what the content-addressed stores are built on.

A content-addressed object must never be overwritten or seen half-written, whoever writes it: two API replicas
storing the same photo at once, a retried upload, a host that crashed mid-write. Locally that is a temporary file
hard-linked into place (the link fails if the key exists); on S3 it is a conditional write, ``If-None-Match: *``,
which AWS S3, MinIO and moto honour atomically.

Why boto3 for S3 rather than fsspec/s3fs or obstore: it exposes conditional writes directly (``IfNoneMatch``), it is
the client MLflow's S3 artifact store already uses (one dependency, one credential chain: ``AWS_*`` variables,
profiles, instance roles), and its errors carry the S3 error codes that tell "already there" from "refused".

Example:
    >>> import tempfile
    >>> objects = object_store(tempfile.mkdtemp())
    >>> objects.create("ab/abc", b"bytes"), objects.create("ab/abc", b"other"), objects.read("ab/abc")
    (True, False, b'bytes')
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_ALREADY_THERE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


def check_key(key: str) -> str:
    """``key`` if it is a relative path of plain names (no ``..``, no leading ``/``); else ``ValueError``."""
    if not _KEY.fullmatch(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"not an object key: {key!r}")
    return key


class ObjectStore(ABC):
    """Write-once objects under string keys such as ``ab/ab12...``."""

    location: str
    """Where the objects are, for messages: a folder or ``s3://bucket/prefix``."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless something is there already; whether this call wrote it. Readers
        never see part of an object."""

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The object's bytes; ``FileNotFoundError`` when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def local_file(self, key: str, cache: Path) -> Path | None:
        """A local file holding the object (for tools that open files), or ``None`` when there is no object.
        Remote objects are downloaded once into ``cache`` under the same key; objects never change, so a cached
        copy never goes stale."""
        target = cache / check_key(key)
        if target.is_file():
            return target
        try:
            data = self.read(key)
        except FileNotFoundError:
            return None
        LocalObjects(cache).create(key, data)
        return target


class LocalObjects(ObjectStore):
    """Objects as files under a folder (the embedded default; a shared volume in a single-host stack)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def create(self, key: str, data: bytes) -> bool:
        target = self.path(key)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.link(temporary, target)  # fails if the key appeared meanwhile: never an overwrite
        except FileExistsError:
            return False
        finally:
            Path(temporary).unlink(missing_ok=True)
        return True

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def local_file(self, key: str, cache: Path) -> Path | None:
        """The object's own file: nothing to download."""
        path = self.path(key)
        return path if path.is_file() else None


class S3Objects(ObjectStore):
    """Objects in an S3 bucket (AWS, MinIO, any S3 API with conditional writes) under a key prefix."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        """``client``: a boto3 S3 client."""
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.location = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{check_key(key)}" if self.prefix else check_key(key)

    def create(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
        except ClientError as error:
            if _code(error) in _ALREADY_THERE:
                return False
            raise
        return True

    def read(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as error:
            if _code(error) in _MISSING:
                raise FileNotFoundError(f"{self.location}/{key}") from error
            raise
        return body

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise
        return True


def _code(error: Exception) -> str:
    response: dict[str, Any] = getattr(error, "response", {})
    return str(response.get("Error", {}).get("Code", ""))


def object_store(location: str | Path, *, endpoint_url: str | None = None) -> ObjectStore:
    """The store at ``location``: ``s3://bucket/prefix`` (credentials from the usual AWS chain; ``endpoint_url``
    for MinIO or another S3 API) or a local folder."""
    text = str(location)
    if not text.startswith("s3://"):
        return LocalObjects(Path(text))
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {text!r}")
    import boto3

    return S3Objects(bucket, prefix, boto3.client("s3", endpoint_url=endpoint_url))
