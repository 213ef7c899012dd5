"""Everything one replica holds while it runs, opened at start-up and closed at shutdown in the right order."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.requests import Request

from autoinspect.config import Settings
from autoinspect.serving.inspection import Inspector
from autoinspect.serving.metrics import ServiceMetrics
from autoinspect.serving.replica import ModelLoader, Replica
from autoinspect.serving.review_sampler import ReviewSampler
from autoinspect.store import (
    ApiKeys,
    BackgroundWriter,
    ImageStore,
    InspectionLog,
    PredictionLog,
    ReviewLog,
    create_schema,
    make_engine,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    settings: Settings
    engine: Engine
    api_keys: ApiKeys
    log: PredictionLog
    writer: BackgroundWriter
    replica: Replica
    inspector: Inspector
    metrics: ServiceMetrics
    reviews: ReviewLog
    inspections: InspectionLog
    images: ImageStore | None
    """The stored photos (``None`` when ``store.keep_images`` is off)."""

    def close(self) -> None:
        """Stop following the registry, finish shadows, then flush the log: no answered request goes unlogged."""
        self.replica.stop()
        self.inspector.close()
        stats = self.writer.close()
        self.engine.dispose()
        logger.info("service stopped; prediction log: %s", stats)


def open_service(settings: Settings, *, metrics: ServiceMetrics, loader: ModelLoader | None = None) -> Service:
    """Connect the store, load the champion if there is one, and start following the registry.

    A registry that is empty or down at start-up does not stop the replica: it starts not ready (``/readyz`` says
    why) and picks the champion up on a later poll. A champion that does not load leaves the last version this
    replica served answering meanwhile (see :meth:`Replica.fall_back`).
    """
    engine = make_engine(settings.store_url)
    create_schema(engine)
    log = PredictionLog(engine)
    writer = BackgroundWriter(
        log, queue_size=settings.store.queue_size, batch_size=settings.store.batch_size, spill_path=settings.spill_path
    )
    replica = Replica(settings, loader=loader)
    try:
        replica.refresh()
    except Exception:
        logger.exception("no champion loaded at start-up; retrying every %.0f s", settings.serving.poll_seconds)
        replica.fall_back()
    replica.start_polling()
    metrics.watch(lambda: writer.stats, lambda: replica.stats)
    images = ImageStore.for_settings(settings) if settings.store.keep_images else None
    inspector = Inspector(
        replica,
        writer=writer,
        images=images,
        metrics=metrics,
        settings=settings.serving,
        size_cutoffs=settings.inspections.size_cutoffs,
        quality_gate=settings.quality_gate,
        sampler=ReviewSampler(settings.review_sampling.rules),
    )
    return Service(
        settings,
        engine,
        ApiKeys(engine),
        log,
        writer,
        replica,
        inspector,
        metrics,
        ReviewLog(engine),
        InspectionLog(engine),
        images,
    )


def current_service(request: Request) -> Service:
    """FastAPI dependency: the service the app's lifespan opened."""
    found: Service = request.app.state.service
    return found
