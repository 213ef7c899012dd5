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

import fcntl
import logging
import os
import re
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_ALREADY_THERE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
UPDATE_ATTEMPTS = 20
"""A mutable object (a dataset name's history) changed by someone else between our read and our write this many
times in a row means something is wrong, not busy."""

Change = Callable[[bytes | None], bytes]
"""The new content of a mutable object from its current content (``None``: there is none yet)."""


def check_key(key: str) -> str:
    """``key`` if it is a relative path of plain names (no ``..``, no leading ``/``); else ``ValueError``."""
    if not _KEY.fullmatch(key) or any(part in {".", ".."} for part in key.split("/")):
        raise ValueError(f"not an object key: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A key prefix: a folder (``versions/``) or the start of keys (``versions/ab``)."""
    check_key(prefix.rstrip("/") or "x")
    return prefix


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

    @abstractmethod
    def keys(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix``, sorted."""

    @abstractmethod
    def update(self, key: str, change: Change) -> bytes:
        """Replace a mutable object (the only kind of write that replaces) with ``change(current content)``,
        atomically against other writers, on any host: ``change`` runs again on the newer content when someone
        else wrote in between. Returns what was written."""

    def local_file(self, key: str, cache: Path | None) -> Path | None:
        """A local file holding the object (for tools that open files), or ``None`` when there is no object.
        Remote objects are downloaded once into ``cache`` under the same key; objects never change, so a cached
        copy never goes stale. A remote store given no cache refuses (``ValueError``) rather than fill whatever
        folder the process happens to run in."""
        if cache is None:
            raise ValueError(f"a local copy of {key} from {self.location} needs a cache folder")
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
        temporary = _written_beside(target, data)
        try:
            temporary.chmod(_READ_ONLY)  # objects never change
            os.link(temporary, target)  # fails if the key appeared meanwhile: never an overwrite
        except FileExistsError:
            return False
        finally:
            temporary.unlink(missing_ok=True)
        return True

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self, prefix: str) -> list[str]:
        folder, _, start = check_prefix(prefix).rpartition("/")
        base = self.root / folder if folder else self.root
        if not base.is_dir():
            return []
        return sorted(
            str(path.relative_to(self.root))
            for path in base.rglob(f"{start}*")
            if path.is_file() and not path.name.startswith(".") and str(path.relative_to(self.root)).startswith(prefix)
        )

    def update(self, key: str, change: Change) -> bytes:
        """Read, change and replace under an exclusive lock of the key's lock file (processes of this host)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with (target.parent / f".{target.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            new = change(target.read_bytes() if target.is_file() else None)
            temporary = _written_beside(target, new)
            try:
                temporary.replace(target)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        return new

    def local_file(self, key: str, cache: Path | None) -> Path | None:
        """The object's own file: nothing to download, no cache needed."""
        path = self.path(key)
        return path if path.is_file() else None


def _written_beside(target: Path, data: bytes) -> Path:
    """A hidden temporary file in ``target``'s folder holding ``data``, on disk (fsync) before it is renamed or
    linked to ``target``: a crash leaves the old object or the new one, never part of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


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

    def keys(self, prefix: str) -> list[str]:
        full = f"{self.prefix}/{check_prefix(prefix)}" if self.prefix else check_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
        return sorted(item["Key"][strip:] for page in pages for item in page.get("Contents", []))

    def update(self, key: str, change: Change) -> bytes:
        """Compare-and-swap on the object's ETag (``If-Match``; ``If-None-Match: *`` for a new one)."""
        from botocore.exceptions import ClientError

        for _ in range(UPDATE_ATTEMPTS):
            try:
                current = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                old: bytes | None = current["Body"].read()
                condition = {"IfMatch": current["ETag"]}
            except ClientError as error:
                if _code(error) not in _MISSING:
                    raise
                old, condition = None, {"IfNoneMatch": "*"}
            new = change(old)
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=new, **condition)
            except ClientError as error:
                if _code(error) in _ALREADY_THERE:
                    logger.info("%s/%s changed while we wrote it: again", self.location, key)
                    continue
                raise
            return new
        raise RuntimeError(f"{self.location}/{key} changed under us {UPDATE_ATTEMPTS} times in a row")


def _code(error: Exception) -> str:
    response: dict[str, Any] = getattr(error, "response", {})
    return str(response.get("Error", {}).get("Code", ""))


def object_store(location: str | Path | ObjectStore, *, endpoint_url: str | None = None) -> ObjectStore:
    """The store at ``location``: ``s3://bucket/prefix`` (credentials from the usual AWS chain; ``endpoint_url``
    for MinIO or another S3 API) or a local folder; a store given is returned as it is."""
    if isinstance(location, ObjectStore):
        return location
    text = str(location)
    if not text.startswith("s3://"):
        return LocalObjects(Path(text))
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {text!r}")
    import boto3

    return S3Objects(bucket, prefix, boto3.client("s3", endpoint_url=endpoint_url))
