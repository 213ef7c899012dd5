"""The prediction log: every answered request, written in batches and read back by monitoring and review."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, Select, func, or_, select
from sqlalchemy.orm import Session

from autoinspect.store.database import insert_ignoring_duplicates
from autoinspect.store.tables import PredictionEntry, PredictionRecord

logger = logging.getLogger(__name__)


class PredictionLog:
    """Reads and writes the ``predictions`` table; thread-safe (each call uses its own connection).

    Example:
        >>> from autoinspect.store.database import create_schema, make_engine
        >>> engine = make_engine("sqlite://")
        >>> create_schema(engine)
        >>> PredictionLog(engine).count()
        0
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert_new = insert_ignoring_duplicates(engine.dialect.name, PredictionRecord.request_id).returning(
            PredictionRecord.request_id
        )

    def write(self, entries: Sequence[PredictionEntry]) -> int:
        """Insert ``entries`` in one transaction and return how many rows were new.

        A ``request_id`` already stored is skipped, not an error: the background writer replays its spill file
        after failures it cannot tell apart from a commit that succeeded but whose reply was lost.
        """
        if not entries:
            return 0
        with self._engine.begin() as connection:
            inserted = len(connection.execute(self._insert_new, [entry.to_row() for entry in entries]).all())
        logger.debug("logged %d predictions (%d already stored)", inserted, len(entries) - inserted)
        return inserted

    def between(self, since: datetime, until: datetime) -> list[PredictionEntry]:
        """Entries created in ``[since, until)``, oldest first: the window a drift or KPI report covers."""
        query = (
            select(PredictionRecord)
            .where(PredictionRecord.created_at >= since, PredictionRecord.created_at < until)
            .order_by(PredictionRecord.created_at, PredictionRecord.id)
        )
        return self._entries(query)

    def needs_review(self, limit: int) -> list[PredictionEntry]:
        """The newest ``limit`` entries flagged for a human look or drawn for review: the head of the review queue."""
        query = (
            select(PredictionRecord)
            .where(or_(PredictionRecord.needs_review.is_(True), PredictionRecord.sampled_for.is_not(None)))
            .order_by(PredictionRecord.created_at.desc(), PredictionRecord.id.desc())
            .limit(limit)
        )
        return self._entries(query)

    def get(self, request_id: str) -> PredictionEntry | None:
        """One logged answer by its request id (what a review refers to)."""
        found = self._entries(select(PredictionRecord).where(PredictionRecord.request_id == request_id))
        return found[0] if found else None

    def count(self) -> int:
        with self._engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(PredictionRecord)).scalar_one()

    def _entries(self, query: Select[PredictionRecord]) -> list[PredictionEntry]:
        with Session(self._engine) as session:
            return [PredictionEntry.model_validate(row) for row in session.scalars(query)]
