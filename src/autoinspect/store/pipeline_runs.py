"""The record of every pipeline run and each of its steps, kept by the local runner (Airflow keeps its own).

Stored next to the prediction log so the UI and the continuous-training triggers read one database: "when did
training last run, and did it succeed" is a query, not a log search.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import JSON, Engine, String, Text, desc, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from autoinspect.store.tables import Base, UTCDateTime


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Nothing to do (no trigger fired, or a step found no new data); recorded so the "why not" is visible."""


class PipelineRunRecord(Base):
    __tablename__ = "pipeline_runs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(64), index=True)
    trigger: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str] = mapped_column(Text, default="")


class PipelineStepRecord(Base):
    __tablename__ = "pipeline_steps"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(index=True)
    step: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class PipelineStep(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: str
    status: RunStatus
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    output: Any
    error: str | None


class PipelineRun(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    pipeline: str
    trigger: str
    status: RunStatus
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    outcome: str
    steps: list[PipelineStep] = []


class PipelineRuns:
    """Start, update and read run records; every write is its own transaction so a crash leaves a true record."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def start(self, pipeline: str, trigger: str) -> int:
        with self._engine.begin() as connection:
            row = connection.execute(
                insert(PipelineRunRecord).returning(PipelineRunRecord.id),
                {
                    "pipeline": pipeline,
                    "trigger": trigger,
                    "status": RunStatus.RUNNING,
                    "started_at": _now(),
                    "outcome": "",
                },
            )
            return int(row.scalar_one())

    def finish(self, run_id: int, status: RunStatus, outcome: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(PipelineRunRecord)
                .where(PipelineRunRecord.id == run_id)
                .values(status=status, finished_at=_now(), outcome=outcome)
            )

    def start_step(self, run_id: int, step: str) -> int:
        with self._engine.begin() as connection:
            row = connection.execute(
                insert(PipelineStepRecord).returning(PipelineStepRecord.id),
                {"run_id": run_id, "step": step, "status": RunStatus.RUNNING, "started_at": _now()},
            )
            return int(row.scalar_one())

    def finish_step(self, step_id: int, status: RunStatus, *, output: Any = None, error: str | None = None) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                update(PipelineStepRecord)
                .where(PipelineStepRecord.id == step_id)
                .values(status=status, finished_at=_now(), output=output, error=error)
            )

    def recent(self, pipeline: str | None = None, limit: int = 20) -> list[PipelineRun]:
        """Newest first, each with its steps in order."""
        query = select(PipelineRunRecord).order_by(desc(PipelineRunRecord.started_at), desc(PipelineRunRecord.id))
        if pipeline is not None:
            query = query.where(PipelineRunRecord.pipeline == pipeline)
        with Session(self._engine) as session:
            runs = [PipelineRun.model_validate(record) for record in session.scalars(query.limit(limit))]
            for run in runs:
                steps = session.scalars(
                    select(PipelineStepRecord)
                    .where(PipelineStepRecord.run_id == run.id)
                    .order_by(PipelineStepRecord.id)
                )
                run.steps = [PipelineStep.model_validate(step) for step in steps]
        return runs

    def last(self, pipeline: str, status: RunStatus) -> PipelineRun | None:
        """The newest run of ``pipeline`` that ended with ``status``."""
        query = (
            select(PipelineRunRecord)
            .where(PipelineRunRecord.pipeline == pipeline, PipelineRunRecord.status == status)
            .order_by(desc(PipelineRunRecord.started_at), desc(PipelineRunRecord.id))
            .limit(1)
        )
        with Session(self._engine) as session:
            record = session.scalars(query).first()
            return PipelineRun.model_validate(record) if record is not None else None


def _now() -> datetime:
    return datetime.now(UTC)
