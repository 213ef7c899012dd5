"""Human reviews of served predictions: the ground truth that monitoring scores the model on and retraining learns.

A review either *accepts* the model's detections as they are or *corrects* them (boxes moved, added, removed,
relabelled; an empty list means "no damage"). Either way the review stores the full truth for the photo, so
later readers never need to replay the prediction to know what the photo shows. One review per request: a second
submission for the same request is ignored when identical and refused when different, so a double click or a
retried call can never create two truths.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Engine, String, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from autoinspect.domain import Annotation, Box
from autoinspect.errors import AutoInspectError
from autoinspect.store.prediction_log import PredictionLog
from autoinspect.store.tables import Base, PredictionEntry, PredictionRecord, Route, UTCDateTime

logger = logging.getLogger(__name__)


class ReviewDecision(StrEnum):
    ACCEPTED = "accepted"
    """The model's detections were right, as returned."""
    CORRECTED = "corrected"
    """The reviewer changed them; ``labels`` holds the truth."""


LabelSpec = tuple[str, float, float, float, float]
"""One region as a reviewer gives it: ``(class name, x1, y1, x2, y2)``, corners normalised to the photo."""


class ReviewConflictError(AutoInspectError):
    """The request was already reviewed with a different answer."""


class UnknownRequestError(AutoInspectError):
    """No served answer is logged under this request id (never answered, not written yet, or only a shadow's)."""


class InvalidLabelsError(AutoInspectError):
    """The corrected labels cannot be a photo's truth: an unknown class, or a box outside the photo or without area."""


def checked_labels(specs: Sequence[LabelSpec], classes: Sequence[str]) -> list[Annotation]:
    """The annotations for ``specs``, or every reason they cannot be stored.

    The API and the CLI both go through here, so a truth that would later fail dataset validation (a class the
    model does not know, a box off the photo or without area) is refused when the reviewer can still fix it.

    Example:
        >>> checked_labels([("dent", 0.1, 0.2, 0.3, 0.4)], ["scratch", "dent"])[0].label
        'dent'

    Raises:
        InvalidLabelsError: naming each bad region by its position.
    """
    problems = []
    for index, (label, x1, y1, x2, y2) in enumerate(specs):
        if label not in classes:
            problems.append(f"labels[{index}]: class {label!r} is not one of {list(classes)}")
        if not all(0.0 <= value <= 1.0 for value in (x1, y1, x2, y2)):
            problems.append(f"labels[{index}]: box ({x1}, {y1}, {x2}, {y2}) is not inside [0, 1]")
        elif not (x1 < x2 and y1 < y2):
            problems.append(f"labels[{index}]: box ({x1}, {y1}, {x2}, {y2}) has no area (need x1 < x2 and y1 < y2)")
    if problems:
        raise InvalidLabelsError("; ".join(problems))
    return [Annotation(label=label, box=Box(x1=x1, y1=y1, x2=x2, y2=y2)) for label, x1, y1, x2, y2 in specs]


class ReviewRecord(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))
    labels: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(64))
    image_sha256: Mapped[str | None] = mapped_column(String(64))


class Review(BaseModel):
    """One stored review: the truth for one served photo, with who decided it."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    request_id: str
    reviewed_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    reviewer: str = Field(min_length=1, max_length=128)
    decision: ReviewDecision
    labels: list[Annotation]
    """The damage in the photo (normalised boxes); empty when the photo shows none."""
    model_version: str
    """The version whose answer was reviewed: the override rate is per version."""
    image_sha256: str | None
    """Where the photo is in the image store; ``None`` when images were not kept (cannot be retrained on)."""

    @property
    def overrode(self) -> bool:
        return self.decision is ReviewDecision.CORRECTED


class ReviewLog:
    """Writes and reads reviews; thread-safe like :class:`~autoinspect.store.prediction_log.PredictionLog`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def submit(
        self, request_id: str, *, reviewer: str, labels: Sequence[Annotation] | None, prediction: PredictionEntry
    ) -> Review:
        """Record the truth for ``prediction``: ``labels=None`` accepts its detections, a list corrects them.

        Raises:
            ReviewConflictError: the request already has a different review.
        """
        if labels is None:
            decision, truth = (
                ReviewDecision.ACCEPTED,
                [Annotation(label=d.label, box=d.box) for d in prediction.detections],
            )
        else:
            decision, truth = ReviewDecision.CORRECTED, list(labels)
        review = Review(
            request_id=request_id,
            reviewer=reviewer,
            decision=decision,
            labels=truth,
            model_version=prediction.model_version,
            image_sha256=prediction.image_sha256,
        )
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(ReviewRecord), [review.model_dump(mode="json") | {"reviewed_at": review.reviewed_at}]
                )
        except IntegrityError:
            existing = self.get(request_id)
            if existing is not None and (existing.decision, existing.labels) == (review.decision, review.labels):
                return existing
            raise ReviewConflictError(f"request {request_id} was already reviewed with a different answer") from None
        logger.info("review of %s by %s: %s (%d boxes)", request_id, reviewer, decision.value, len(truth))
        return review

    def target(self, request_id: str) -> PredictionEntry:
        """The served answer a review of ``request_id`` is about.

        A shadow's answer was never returned to anyone, so it has nothing to review.

        Raises:
            UnknownRequestError: no answer is logged under that id, or only a shadow's.
        """
        prediction = PredictionLog(self._engine).get(request_id)
        if prediction is None or prediction.route is Route.SHADOW:
            raise UnknownRequestError(f"no served answer is logged under request id {request_id!r}")
        return prediction

    def get(self, request_id: str) -> Review | None:
        with Session(self._engine) as session:
            record = session.scalars(select(ReviewRecord).where(ReviewRecord.request_id == request_id)).first()
            return Review.model_validate(record) if record is not None else None

    def between(self, since: datetime, until: datetime) -> list[Review]:
        """Reviews made in ``[since, until)``, oldest first."""
        query = (
            select(ReviewRecord)
            .where(ReviewRecord.reviewed_at >= since, ReviewRecord.reviewed_at < until)
            .order_by(ReviewRecord.reviewed_at, ReviewRecord.id)
        )
        with Session(self._engine) as session:
            return [Review.model_validate(record) for record in session.scalars(query)]

    def pending(self, limit: int) -> list[PredictionEntry]:
        """Answers flagged by the review band or drawn by a sampling rule (never shadows) that nobody reviewed yet,
        newest first: the review queue."""
        reviewed = select(ReviewRecord.request_id)
        query = (
            select(PredictionRecord)
            .where(
                or_(PredictionRecord.needs_review.is_(True), PredictionRecord.sampled_for.is_not(None)),
                PredictionRecord.route != "shadow",
                PredictionRecord.request_id.not_in(reviewed),
            )
            .order_by(PredictionRecord.created_at.desc(), PredictionRecord.id.desc())
            .limit(limit)
        )
        with Session(self._engine) as session:
            return [PredictionEntry.model_validate(record) for record in session.scalars(query)]

    def count(self) -> int:
        with self._engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(ReviewRecord)).scalar_one()
