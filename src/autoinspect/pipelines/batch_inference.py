"""Batch inference over a folder of photos or an object-storage prefix, in shards: plan, predict each shard, merge.

Why shards: a folder of a hundred thousand intake photos is cut into fixed lists of files so each list can run
anywhere and be retried alone (one Airflow mapped task per shard, or one after the other in the local runner,
:func:`run_batch`). Each shard writes its own JSON-lines file, so shards never share a writer, and writes it
atomically under a name derived from its file list, so a retried shard replaces its own output and never leaves
half a file for the merge to read. A corrupt photo becomes a line with an ``error``; it never stops its shard.

Every shard predicts through the same :class:`~autoinspect.inference.Detector` as the API, and on the same model
version: :func:`pin_model` turns an alias such as ``champion`` into its version number once, before the shards
start, so a promotion in the middle of a batch cannot give one batch two models.

Photos, shard files and the merged output can each be local paths or ``s3://`` URLs (``storage.s3_endpoint_url``
for MinIO): with photos and results in object storage, shards run on workers that share no disk, as Airflow's
Celery or Kubernetes executors place them (``storage.results_url``, :func:`run_folder`).

Example::

    shards = plan_shards(Path("intake/2025-06-01"), shard_size=500)
    parts = [predict_shard(settings, files, model="3", out_dir=Path("out/parts")) for files in shards]
    summary = merge_shards(parts, Path("out/predictions.jsonl"))
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from autoinspect.config import Settings
from autoinspect.domain import NONE_VERDICT, Detection
from autoinspect.errors import ConfigError, DataFormatError
from autoinspect.images import IMAGE_SUFFIXES, is_image_file
from autoinspect.inference import Detector
from autoinspect.object_storage import ObjectStore, object_store
from autoinspect.pipelines.prediction import FilePrediction, is_model_file, load_detector, predict_files
from autoinspect.registry.mlflow_registry import get_version

logger = logging.getLogger(__name__)

SHARD_PREFIX = "shard-"

Location = Path | str
"""A local path, or an ``s3://bucket/key`` URL."""


class BatchLine(BaseModel):
    """One photo's line in a shard file and in the merged output."""

    file: str
    verdict: list[str] | None = None
    """``["None"]`` or the damage classes found (as the API answers); ``None`` when the photo could not be read.
    Shard files of earlier releases held the string ``"None"``: it is read as ``["None"]``."""
    damaged: bool | None = None
    confidence: float | None = None
    needs_review: bool | None = None
    detections: list[Detection] = Field(default_factory=list)
    error: str | None = None
    """Why there is no verdict (corrupt, truncated, not an image...)."""

    @classmethod
    def from_result(cls, result: FilePrediction) -> BatchLine:
        if result.prediction is None:
            return cls(file=result.file, error=result.error)
        prediction = result.prediction
        return cls(
            file=result.file,
            verdict=prediction.verdict.names,
            damaged=not prediction.verdict.is_none,
            confidence=prediction.max_score,
            needs_review=prediction.needs_review,
            detections=prediction.detections,
        )

    @field_validator("verdict", mode="before")
    @classmethod
    def _one_type(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @property
    def verdict_key(self) -> str | None:
        """``"None"``, a class name, or class names joined by ``+`` (``dent+scratch``)."""
        return None if self.verdict is None else "+".join(self.verdict)


class BatchSummary(BaseModel):
    """What a batch found, counted over the merged output."""

    output: str
    """Where the merged lines are: a path or an ``s3://`` URL."""
    files: int
    verdicts: dict[str, int]
    """Photos per verdict: ``None``, ``dent``, ``scratch``, ``dent+scratch``."""
    damaged: int
    """Photos with at least one damage class."""
    needs_review: int
    errors: int
    """Photos that could not be read; their lines say why."""


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, by suffix), sorted by their path relative to it."""
    if not folder.is_dir():
        raise DataFormatError(f"{folder} is not a folder")
    return sorted((p for p in folder.rglob("*") if p.is_file() and is_image_file(p)), key=lambda p: p.as_posix())


def plan_shards(folder: Location, shard_size: int, *, endpoint_url: str | None = None) -> list[list[str]]:
    """The image files of ``folder`` (a folder, or an ``s3://bucket/prefix`` whose objects are listed) cut into
    lists of at most ``shard_size`` absolute paths or URLs; same folder, same plan.

    Example::

        plan_shards(Path("intake"), 2)  # [["/abs/intake/a.jpg", "/abs/intake/b.jpg"], ["/abs/intake/c.jpg"]]
    """
    if shard_size < 1:
        raise ConfigError(f"shard size must be at least 1, got {shard_size}")
    if _remote(folder):
        store = object_store(str(folder).rstrip("/"), endpoint_url=endpoint_url)
        files = [f"{store.location}/{key}" for key in store.keys("") if is_image_file(Path(key))]
    else:
        files = [str(path.resolve()) for path in list_images(Path(folder))]
    if not files:
        raise DataFormatError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    shards = [files[start : start + shard_size] for start in range(0, len(files), shard_size)]
    logger.info("%s: %d photos in %d shards of up to %d", folder, len(files), len(shards), shard_size)
    return shards


def pin_model(settings: Settings, model: str) -> str:
    """An alias (``champion``) becomes the version number it points to now; files and numbers stay as they are."""
    if is_model_file(model) or model.isdigit():
        return model
    version = get_version(settings, model).version
    logger.info("model %s is version %d for this batch", model, version)
    return str(version)


def shard_name(files: list[str]) -> str:
    """A file name derived from the shard's content: a retry overwrites its own part, never another's."""
    digest = hashlib.sha256("\n".join(files).encode("utf-8")).hexdigest()[:16]
    return f"{SHARD_PREFIX}{digest}.jsonl"


def predict_shard(
    settings: Settings,
    files: list[str],
    *,
    model: str = "champion",
    out_dir: Location,
    detector: Detector | None = None,
) -> str:
    """Predict every file of one shard and write one JSON line per file to ``out_dir``; the part's path or URL.

    ``model`` is what :func:`~autoinspect.pipelines.prediction.load_detector` accepts (pin aliases first with
    :func:`pin_model`); a ``detector`` already loaded is used instead, so a local run loads the model once.
    """
    if detector is None:
        detector = load_detector(settings, model)
    reader = _Stores(settings)
    lines = [BatchLine.from_result(result) for result in predict_files(detector, files, reader.read)]
    target = _join(out_dir, shard_name(files))
    reader.write(target, "".join(line.model_dump_json() + "\n" for line in lines))
    errors = sum(line.error is not None for line in lines)
    logger.info("shard %s: %d photos, %d unreadable", target, len(lines), errors)
    return target


def merge_shards(parts: list[Location], out: Location, settings: Settings | None = None) -> BatchSummary:
    """Concatenate shard files, in the order given, into ``out`` (JSON lines) and count what they hold; parts and
    output may be paths or ``s3://`` URLs (``settings`` names the S3 endpoint)."""
    stores = _Stores(settings)
    verdicts: Counter[str] = Counter()
    files = errors = needs_review = 0
    content: list[str] = []
    for part in parts:
        for raw in stores.read(str(part)).decode("utf-8").splitlines():
            if not raw.strip():
                continue
            line = BatchLine.model_validate_json(raw)
            files += 1
            errors += line.error is not None
            needs_review += bool(line.needs_review)
            if (key := line.verdict_key) is not None:
                verdicts[key] += 1
            content.append(raw + "\n")
    stores.write(str(out), "".join(content))
    summary = BatchSummary(
        output=str(out),
        files=files,
        verdicts=dict(sorted(verdicts.items())),
        damaged=sum(count for key, count in verdicts.items() if key != NONE_VERDICT),
        needs_review=needs_review,
        errors=errors,
    )
    logger.info("batch merged into %s: %s", out, summary.model_dump(exclude={"output"}))
    return summary


def run_batch(
    settings: Settings, folder: Location, *, shard_size: int, out: Path, model: str = "champion"
) -> BatchSummary:
    """The local runner: every shard in this process, one after the other, with the model loaded once; ``folder``
    may be an ``s3://`` prefix.

    Shard files go to a temporary folder beside ``out`` and are removed after the merge.
    """
    shards = plan_shards(folder, shard_size, endpoint_url=settings.storage.s3_endpoint_url)
    pinned = pin_model(settings, model)
    detector = load_detector(settings, pinned)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".batch-parts-", dir=out.parent) as tmp:
        parts: list[Location] = [
            predict_shard(settings, files, model=pinned, out_dir=Path(tmp), detector=detector) for files in shards
        ]
        return merge_shards(parts, out, settings)


def run_folder(settings: Settings, run_id: str) -> Location:
    """Where an orchestrated batch run keeps its parts and merged output: ``<storage.results_url>/<run id>`` in
    object storage (every worker reaches it), else ``<home>/batch/<run id>`` (run ids made safe as names)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
    if settings.storage.results_url:
        return f"{settings.storage.results_url.rstrip('/')}/{name}"
    return settings.home / "batch" / name


def _remote(location: Location) -> bool:
    return str(location).startswith("s3://")


def _join(location: Location, name: str) -> str:
    return f"{str(location).rstrip('/')}/{name}" if _remote(location) else str(Path(location) / name)


class _Stores:
    """Reads and writes paths or ``s3://`` URLs, one S3 client per folder for the whole shard."""

    def __init__(self, settings: Settings | None) -> None:
        self._endpoint = settings.storage.s3_endpoint_url if settings else None
        self._stores: dict[str, ObjectStore] = {}

    def _split(self, url: str) -> tuple[ObjectStore, str]:
        folder, _, key = url.rpartition("/")
        if folder not in self._stores:
            self._stores[folder] = object_store(folder, endpoint_url=self._endpoint)
        return self._stores[folder], key

    def read(self, location: str) -> bytes:
        if not _remote(location):
            return Path(location).read_bytes()
        store, key = self._split(location)
        return store.read(key)

    def write(self, location: str, text: str) -> None:
        """The whole file or nothing: a temporary file renamed over a local path, one PUT to S3."""
        if not _remote(location):
            Path(location).parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(Path(location), text)
            return
        store, key = self._split(location)
        store.update(key, lambda _: text.encode("utf-8"))


def _write_atomic(target: Path, text: str) -> None:
    """Write beside ``target`` then rename over it, so readers see the old file or the whole new one."""
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
