"""Reviews become annotations: the review queue from the command line, and the export of reviews as YOLO batches.

Every review is the full truth for one served photo, so it can go straight into a dataset. :func:`export_reviews`
writes the reviews not exported yet as one new batch in the annotations inbox, in the canonical layout that
:func:`~autoinspect.pipelines.dataset.version_dataset` reads, with a ``provenance.jsonl`` that says who decided
each label and about which model's answer::

    <inbox>/reviews-20250301T120000Z/data.yaml
    <inbox>/reviews-20250301T120000Z/images/train/<sha256>.jpg    the served photo, its real format
    <inbox>/reviews-20250301T120000Z/labels/train/<sha256>.txt    class_id cx cy w h (empty: no damage)
    <inbox>/reviews-20250301T120000Z/provenance.jsonl
    <inbox>/exported.jsonl                                         the ledger: every review exported so far

Why a ledger file in the inbox rather than a column in the store: the store is shared by every replica and its
schema is only ever created, never migrated, so a new column would not reach existing PostgreSQL databases; and
an export is only as good as the folder it wrote, so the record of it belongs beside that folder. Batches leave
the inbox when they are merged into a dataset version, so their ``provenance.jsonl`` cannot be the record on its
own; it still counts, so a crash between writing a batch and appending to the ledger never exports twice.

A batch is written in a staging folder and renamed into place, so a reader never sees half a batch, and one
export runs at a time (a lock file). Reviews that cannot become an annotation (the photo was not kept, a class
outside ``settings.classes``) are reported with the reason at every export until they can; never dropped.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from pydantic import AwareDatetime, BaseModel

from autoinspect.config import Settings
from autoinspect.data.labels import format_yolo_labels
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Split
from autoinspect.errors import ConfigError
from autoinspect.store import (
    ImageStore,
    PredictionEntry,
    Review,
    ReviewDecision,
    ReviewLog,
    open_store,
)
from autoinspect.store.reviews import LabelSpec, checked_labels

logger = logging.getLogger(__name__)

LEDGER = "exported.jsonl"
PROVENANCE = "provenance.jsonl"
BATCH_PREFIX = "reviews-"
STAGING = ".staging"
"""Batches are written under ``<inbox>/.staging/`` and renamed into the inbox when complete."""
LOCK = ".export.lock"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_REVIEWER_LENGTH = 128
"""As long as an API key's name, the reviewer the API records."""
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp"}
"""The file name a photo gets in a batch, by its real encoding (what validation checks the extension against)."""


class Provenance(BaseModel):
    """One line of a batch's ``provenance.jsonl``: where the label of one photo came from."""

    request_id: str
    image_sha256: str
    reviewer: str
    decision: ReviewDecision
    model_version: str
    """The version whose answer was reviewed."""
    reviewed_at: AwareDatetime


class LedgerLine(BaseModel):
    """One line of ``exported.jsonl``: a review that needs no export any more."""

    request_id: str
    image_sha256: str
    batch: str
    labels: str
    """The YOLO label text written for the photo: tells a later review of the same photo whether it agrees."""
    duplicate_of: str | None = None
    """Set when the same photo with the same labels was already exported for this other request."""
    exported_at: AwareDatetime


class SkippedReview(BaseModel):
    request_id: str
    reason: str


class ExportResult(BaseModel):
    """What one export did; ``batch`` is ``None`` when there was nothing new to write."""

    batch: Path | None
    exported: list[Provenance]
    duplicates: list[str]
    """Requests whose photo and labels were already exported for another request: recorded, not written again."""
    skipped: list[SkippedReview]
    """Reviews that cannot become annotations, with the reason; they are reported again by every export."""
    already_exported: int


@dataclass(frozen=True)
class _Photo:
    review: Review
    sha: str
    source: Path
    suffix: str
    labels: str


def pending_reviews(settings: Settings, limit: int) -> list[PredictionEntry]:
    """The review queue: flagged answers nobody has reviewed yet, newest first."""
    with open_store(settings.store_url) as engine:
        return ReviewLog(engine).pending(limit)


def submit_review(settings: Settings, request_id: str, *, reviewer: str, labels: Sequence[LabelSpec] | None) -> Review:
    """Accept (``labels=None``) or correct the answer logged under ``request_id``, as the API does.

    Raises:
        UnknownRequestError: no served answer is logged under that id.
        InvalidLabelsError: a class outside ``settings.classes``, or a box outside [0, 1] or without area.
        ReviewConflictError: the request was already reviewed with a different answer.
        ConfigError: ``reviewer`` is blank or too long.
    """
    if not reviewer.strip() or len(reviewer.strip()) > MAX_REVIEWER_LENGTH:
        raise ConfigError(f"a review needs the name of its reviewer, at most {MAX_REVIEWER_LENGTH} characters")
    with open_store(settings.store_url) as engine:
        reviews = ReviewLog(engine)
        prediction = reviews.target(request_id)
        truth = None if labels is None else checked_labels(labels, settings.classes)
        return reviews.submit(request_id, reviewer=reviewer.strip(), labels=truth, prediction=prediction)


def export_reviews(settings: Settings, *, since: datetime | None = None) -> ExportResult:
    """Write every review made since ``since`` (all by default) and not exported yet as a new inbox batch.

    Example::

        result = export_reviews(settings)
        version_dataset(DatasetLayout(result.batch), "car-damage", settings)   # when result.batch is not None

    Raises:
        ValueError: ``since`` is naive (the store keeps UTC; a naive time would silently mean local time).
    """
    if since is not None and since.tzinfo is None:
        raise ValueError(f"since={since.isoformat()} is naive; pass a tz-aware time")
    inbox = settings.annotations_inbox
    inbox.mkdir(parents=True, exist_ok=True)
    with _exclusive(inbox / LOCK), open_store(settings.store_url) as engine:
        shutil.rmtree(inbox / STAGING, ignore_errors=True)  # left by a crash; its reviews were never recorded
        ledger = _read_ledger(inbox)
        reviews = ReviewLog(engine).between(since or EPOCH, datetime.now(UTC))
        fresh = [review for review in reviews if review.request_id not in ledger]
        name = _batch_name(inbox)
        photos, duplicates, skipped = _plan(fresh, ledger, name, settings)
        batch = _write_batch(inbox / name, photos, settings) if photos else None
        _record(inbox, [_ledger_line(photo, name) for photo in photos] + duplicates)
    result = ExportResult(
        batch=batch,
        exported=[_provenance(photo) for photo in photos],
        duplicates=[line.request_id for line in duplicates],
        skipped=skipped,
        already_exported=len(reviews) - len(fresh),
    )
    for skip in skipped:
        logger.warning("review of %s not exported: %s", skip.request_id, skip.reason)
    logger.info(
        "exported %d reviewed photos to %s (%d duplicates, %d skipped, %d exported before)",
        len(result.exported),
        result.batch,
        len(result.duplicates),
        len(result.skipped),
        result.already_exported,
    )
    return result


def _plan(
    reviews: Sequence[Review], ledger: dict[str, LedgerLine], batch: str, settings: Settings
) -> tuple[list[_Photo], list[LedgerLine], list[SkippedReview]]:
    """Which reviews become files of ``batch``, which repeat a photo already exported with the same labels (their
    ledger lines), and which cannot become annotations.

    Two requests can carry the same photo (an intake app that resends it under a new id): its file is written
    once, and a second review that disagrees with the first is reported rather than silently losing to it.
    """
    images = ImageStore.for_settings(settings)
    by_photo = {line.image_sha256: line for line in ledger.values() if line.duplicate_of is None}
    photos: list[_Photo] = []
    duplicates: list[LedgerLine] = []
    skipped: list[SkippedReview] = []
    for review in reviews:
        photo = _photo(review, images, settings)
        if isinstance(photo, str):
            skipped.append(SkippedReview(request_id=review.request_id, reason=photo))
            continue
        earlier = by_photo.get(photo.sha)
        if earlier is None:
            photos.append(photo)
            by_photo[photo.sha] = _ledger_line(photo, batch)
        elif earlier.labels == photo.labels:
            duplicates.append(_ledger_line(photo, earlier.batch, duplicate_of=earlier.request_id))
        else:
            reason = f"the same photo was exported for request {earlier.request_id} with other labels"
            skipped.append(SkippedReview(request_id=review.request_id, reason=reason))
    return photos, duplicates, skipped


def _photo(review: Review, images: ImageStore, settings: Settings) -> _Photo | str:
    """The review ready to write, or why it cannot become an annotation."""
    unknown = sorted({a.label for a in review.labels} - set(settings.classes))
    if unknown:
        return f"classes {unknown} are not in settings.classes {settings.classes}"
    if review.image_sha256 is None:
        return "the photo was not kept when it was served (store.keep_images was off)"
    source = images.local_file(review.image_sha256)
    if source is None:
        return f"photo {review.image_sha256} is missing from the image store {images.location}"
    try:
        with Image.open(source) as image:
            encoding = image.format or "unknown"
    except (OSError, UnidentifiedImageError) as error:
        return f"stored photo {review.image_sha256} cannot be read: {error}"
    allowed = [fmt for fmt in SUFFIXES if fmt in settings.validation.allowed_formats]
    if encoding not in allowed:
        return f"the photo is {encoding}; datasets take {', '.join(allowed)}"
    rows = [(settings.classes.index(a.label), a.box) for a in review.labels]
    return _Photo(review, review.image_sha256, source, SUFFIXES[encoding], format_yolo_labels(rows))


def _write_batch(target: Path, photos: Sequence[_Photo], settings: Settings) -> Path:
    """Write the batch under the staging folder and rename it to ``target`` once complete."""
    staged = target.parent / STAGING / target.name
    layout = DatasetLayout.create(staged, settings.classes)
    images, labels = layout.image_dir(Split.TRAIN), staged / "labels" / Split.TRAIN.value
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for photo in photos:
        shutil.copyfile(photo.source, images / f"{photo.sha}{photo.suffix}")
        (labels / f"{photo.sha}.txt").write_text(photo.labels, encoding="utf-8")
    lines = "".join(_provenance(photo).model_dump_json() + "\n" for photo in photos)
    (staged / PROVENANCE).write_text(lines, encoding="utf-8")
    staged.rename(target)
    shutil.rmtree(target.parent / STAGING, ignore_errors=True)
    return target


def _record(inbox: Path, lines: Sequence[LedgerLine]) -> None:
    """Append to the ledger after the batch is in place: a crash in between re-reads the batch's provenance."""
    if not lines:
        return
    with (inbox / LEDGER).open("a", encoding="utf-8") as ledger:
        ledger.writelines(line.model_dump_json() + "\n" for line in lines)
        ledger.flush()
        os.fsync(ledger.fileno())


def _batch_name(inbox: Path) -> str:
    stamp = f"{BATCH_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    name, number = stamp, 1
    while (inbox / name).exists():
        number += 1
        name = f"{stamp}-{number}"
    return name


def _read_ledger(inbox: Path) -> dict[str, LedgerLine]:
    """Every exported request: the ledger, plus the provenance of batches still in the inbox (see the module)."""
    found: dict[str, LedgerLine] = {}
    path = inbox / LEDGER
    if path.is_file():
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                line = LedgerLine.model_validate_json(text)
            except ValueError:
                logger.error("%s line %d is not a ledger entry; ignored: %.80s", path, number, text)
                continue
            found[line.request_id] = line
    for provenance in sorted(inbox.glob(f"{BATCH_PREFIX}*/{PROVENANCE}")):
        batch = provenance.parent
        written = datetime.fromtimestamp(provenance.stat().st_mtime, UTC)
        for text in provenance.read_text(encoding="utf-8").splitlines():
            try:
                entry = Provenance.model_validate_json(text)
            except ValueError:
                logger.error("%s has a line that is not provenance; ignored: %.80s", provenance, text)
                continue
            if entry.request_id not in found:
                label = batch / "labels" / Split.TRAIN.value / f"{entry.image_sha256}.txt"
                found[entry.request_id] = LedgerLine(
                    request_id=entry.request_id,
                    image_sha256=entry.image_sha256,
                    batch=batch.name,
                    labels=label.read_text(encoding="utf-8") if label.is_file() else "",
                    exported_at=written,
                )
    return found


def _provenance(photo: _Photo) -> Provenance:
    review = photo.review
    return Provenance(
        request_id=review.request_id,
        image_sha256=photo.sha,
        reviewer=review.reviewer,
        decision=review.decision,
        model_version=review.model_version,
        reviewed_at=review.reviewed_at,
    )


def _ledger_line(photo: _Photo, batch: str, *, duplicate_of: str | None = None) -> LedgerLine:
    return LedgerLine(
        request_id=photo.review.request_id,
        image_sha256=photo.sha,
        batch=batch,
        labels=photo.labels,
        duplicate_of=duplicate_of,
        exported_at=datetime.now(UTC),
    )


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One export at a time per inbox (two would read the same ledger and write the same reviews twice)."""
    with lock_path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
