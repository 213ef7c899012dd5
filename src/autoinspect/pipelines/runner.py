"""The in-process runner: runs a pipeline's steps in order and records the run and each step in the store.

On one machine this replaces Airflow (which calls the same step functions as tasks and keeps its own records).
A step that raises marks itself and the run failed and re-raises, so the caller sees the error and nothing after
it runs; whatever the step was about to change (an alias, a deployment) it had not changed yet.

Example::

    runner = LocalRunner(settings)
    with runner.run("continuous_training", trigger="50 new reviews") as run:
        dataset = run.step("merge_annotations", lambda: merge_annotations(settings))
        run.outcome = f"dataset {dataset}"
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.store import PipelineRun, PipelineRuns, RunStatus, create_schema, make_engine

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RunContext:
    """One run in progress: :meth:`step` runs and records a step; set ``outcome`` / ``skipped`` to say how it ended."""

    def __init__(self, runs: PipelineRuns, run_id: int, pipeline: str) -> None:
        self._runs = runs
        self.run_id = run_id
        self.pipeline = pipeline
        self.outcome = ""
        self.skipped = False

    def step(self, name: str, action: Callable[[], T]) -> T:
        step_id = self._runs.start_step(self.run_id, name)
        logger.info("%s #%d: %s ...", self.pipeline, self.run_id, name)
        try:
            result = action()
        except Exception as error:
            self._runs.finish_step(step_id, RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
            raise
        self._runs.finish_step(step_id, RunStatus.SUCCEEDED, output=_summary(result))
        return result


class LocalRunner:
    """Runs pipelines in this process, recording them where the UI and the triggers read them."""

    def __init__(self, settings: Settings) -> None:
        engine = make_engine(settings.store_url)
        create_schema(engine)
        self.runs = PipelineRuns(engine)

    @contextmanager
    def run(self, pipeline: str, trigger: str) -> Iterator[RunContext]:
        context = RunContext(self.runs, self.runs.start(pipeline, trigger), pipeline)
        try:
            yield context
        except BaseException as error:
            self.runs.finish(context.run_id, RunStatus.FAILED, f"{type(error).__name__}: {error}")
            logger.error("%s #%d failed: %s", pipeline, context.run_id, error)
            raise
        status = RunStatus.SKIPPED if context.skipped else RunStatus.SUCCEEDED
        self.runs.finish(context.run_id, status, context.outcome)
        logger.info("%s #%d %s: %s", pipeline, context.run_id, status.value, context.outcome)

    def history(self, pipeline: str | None = None, limit: int = 20) -> list[PipelineRun]:
        return self.runs.recent(pipeline, limit)


def _summary(result: Any) -> Any:
    """What a step returned, as JSON the record can hold (models dumped, paths and the rest as text)."""
    if result is None or isinstance(result, bool | int | float | str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, list | tuple):
        return [_summary(item) for item in result]
    if isinstance(result, dict):
        return {str(key): _summary(value) for key, value in result.items()}
    return str(result)
