"""The prediction log's table and the write-side record that the service hands to it.

:class:`PredictionEntry` (pydantic, built from plain values, JSON-serialisable) is what the API, the background
writer and its spill file pass around; :class:`PredictionRecord` (the ORM row) never leaves the store, so a
session or lazy attribute can never leak into a request thread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import JSON, DateTime, Dialect, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from autoinspect.domain import NONE_VERDICT, RETAKE_VERDICT, Detection

FeatureValue = float | int | str | None
"""One per-image feature as monitoring computes it (numbers, plus a few categorical strings)."""

_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""JSONB on PostgreSQL so monitoring can index and query inside detections and features; ``None`` is SQL NULL
(not JSON ``null``) so ``features IS NULL`` finds the rows without features."""


class Route(StrEnum):
    """Which model answered: the champion, the challenger of a canary, or a shadow copy never returned."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    SHADOW = "shadow"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back tz-aware.

    SQLite has no time zone type and returns naive values; without this, rows written by PostgreSQL and SQLite
    would compare differently and a naive ``since`` would silently mean local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; pass a tz-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Metadata of every store table, so :func:`~autoinspect.store.database.create_schema` creates them all."""


class PredictionRecord(Base):
    """One answered request as stored; columns mirror :class:`PredictionEntry`."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[Any] = mapped_column(_JSON)
    detections: Mapped[list[dict[str, Any]]] = mapped_column(_JSON)
    needs_review: Mapped[bool] = mapped_column(index=True)
    max_score: Mapped[float]
    latency_ms: Mapped[float]
    features: Mapped[dict[str, Any] | None] = mapped_column(_JSON, nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    vehicle_id: Mapped[str | None] = mapped_column(String(128))
    sampled_for: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PredictionEntry(BaseModel):
    """What the service logs for one request; one JSON line of the writer's spill file.

    Example:
        >>> PredictionEntry(request_id="r1", model_version="3", route="champion", verdict="None",
        ...                 needs_review=False, max_score=0.1, latency_ms=12.0).verdict
        'None'
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    request_id: str = Field(min_length=1, max_length=128)
    """Unique per request: writing the same entry twice (a replayed spill) stores it once."""
    created_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    model_version: str
    route: Route
    verdict: str | list[str]
    """The wire form of :class:`~autoinspect.domain.Verdict`: ``"None"`` or the sorted class names; ``"Retake"``
    for a photo the quality gate refused before the model answered."""
    detections: list[Detection] = Field(default_factory=list)
    needs_review: bool
    """True when the best score fell in the model's review band: the entry joins the review queue."""
    max_score: float
    """Best detection score (0 without detections); drift on it is the cheapest health signal."""
    latency_ms: float
    features: dict[str, FeatureValue] | None = None
    """Per-image features for drift monitoring; ``None`` when the service did not compute them."""
    image_sha256: str | None = None
    """Key of the photo in the :class:`~autoinspect.store.image_store.ImageStore`, when images are kept."""
    vehicle_id: str | None = None
    sampled_for: str | None = None
    """The review-sampling rule that sent this answer to the review queue although the model was sure (see
    :mod:`~autoinspect.serving.review_sampler`); ``None`` for answers the rules did not draw."""

    @property
    def in_review_queue(self) -> bool:
        """Flagged by the model's review band or drawn by a sampling rule (shadows never are)."""
        return self.route is not Route.SHADOW and (self.needs_review or self.sampled_for is not None)

    @field_validator("verdict")
    @classmethod
    def _verdict_wire_form(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str) and value not in (NONE_VERDICT, RETAKE_VERDICT):
            raise ValueError(
                f"verdict must be {NONE_VERDICT!r}, {RETAKE_VERDICT!r} or a list of classes, got {value!r}"
            )
        return value

    @property
    def is_retake(self) -> bool:
        return self.verdict == RETAKE_VERDICT

    @property
    def damaged(self) -> bool:
        """The answer named damage (a retake did not answer)."""
        return isinstance(self.verdict, list) and bool(self.verdict)

    @property
    def verdict_text(self) -> str:
        """``None``, ``Retake`` or the classes joined by commas, for people."""
        return self.verdict if isinstance(self.verdict, str) else ", ".join(self.verdict) or NONE_VERDICT

    def to_row(self) -> dict[str, Any]:
        """Column values for an insert: JSON columns get plain dicts, the timestamp stays a datetime."""
        return {**self.model_dump(mode="json"), "created_at": self.created_at}
